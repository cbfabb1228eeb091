"""nbconvert's filters for the pages nbgrader renders from a submission (formgrader's submission
view, ``generate_feedback``), set in ``nbgrader_config.py`` as ``c.HTMLExporter.filters``.

Formgrader builds its ``HTMLExporter`` from the course's configuration, but its template renders
a markdown cell as ``cell.source | markdown2html``, without nbconvert's ``clean_html`` even when
``sanitize_html`` is on: replacing the two filters is what reaches every markdown cell, output
and raw cell of both pages. Student markdown is rendered, cut down to ``untrusted.clean_html``'s
allow-list, and its math typeset here by the project's MathJax with the safe settings (the
page's own MathJax would come from a CDN, which the server's policy forbids).
"""

from __future__ import annotations

import atexit
import functools
from typing import Any

from jinja2 import pass_context
from markupsafe import Markup
from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

from autograder import untrusted
from autograder.outputs.typeset import Typesetter


@functools.cache
def typesetter() -> Typesetter:
    """The process's one MathJax (a Node.js process), for formgrader's cells and whole pages."""
    typesetter = Typesetter()
    atexit.register(typesetter.close)
    return typesetter


# Set in a page's nbconvert resources by an exporter that typesets the whole page once it is
# written (the feedback pages): the cells then leave their TeX for that pass, which typesets it
# with the same safe settings and one glyph cache for the page, instead of a round trip to MathJax
# per cell and a copy of every glyph in every formula. Math never spans two cells either way:
# MathJax ends a formula's text at every element.
TYPESET_AS_A_PAGE = "autograder_typeset_as_a_page"


def typeset_as_a_page(resources: dict[str, Any] | None) -> dict[str, Any]:
    """``resources`` for a page whose math the exporter typesets whole, after rendering."""
    return {**(resources or {}), TYPESET_AS_A_PAGE: True}


@pass_context
def markdown2html(context, source: str) -> Markup:
    """A markdown cell (or output) as HTML with nothing that runs or fetches, math typeset.

    As nbconvert's own filter, attachments included (as data: images), then sanitised. On a page
    that is typeset whole afterwards (``typeset_as_a_page``), the TeX stays for that pass.
    """
    cell = context.get("cell", {})
    renderer = IPythonRenderer(
        escape=False,
        attachments=cell.get("attachments", {}) if hasattr(cell, "get") else {},
        embed_images=False,
        path=context.get("resources", {}).get("metadata", {}).get("path", ""),
        anchor_link_text="¶",
        exclude_anchor_links=True,
    )
    page = untrusted.clean_html(MarkdownWithMath(renderer=renderer).render(source))
    if context.get("resources", {}).get(TYPESET_AS_A_PAGE):
        return Markup(page)
    return Markup(typesetter().typeset(page, fragment=True))


def clean_html(element: str | bytes) -> Markup:
    """nbconvert's ``clean_html`` (HTML, SVG and markdown outputs, raw cells, highlighted code)
    with the project's allow-list."""
    return Markup(untrusted.clean_html(element))
