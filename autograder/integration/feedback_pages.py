"""``nbgrader generate_feedback``'s pages (``c.GenerateFeedback.exporter_class``): the student's
notebook without the release's setup cells, its math typeset as it is written (nbgrader's
template would ask a CDN for MathJax), its student content through ``safe_pages``' filters
(``c.HTMLExporter.filters``), and a Content-Security-Policy that forbids every script and
request. Apart from the autograde step (``plugin.py``) so that the command loads no torch."""

from __future__ import annotations

import copy
from pathlib import Path

import nbformat
from nbconvert.exporters import HTMLExporter, TemplateExporter
from nbconvert.filters.highlight import Highlight2HTML
from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter

from autograder.grading.submission import release_notebook
from autograder.integration import safe_pages
from autograder.notebooks import SETUP_CELLS, nbgrader_meta
from autograder.paths import RELEASE_DIR
from autograder.untrusted import with_csp

# nbgrader's feedback template, made to pass WCAG 2.2 AA (tests/test_site.py runs axe on it):
# its code colours and links on the grey code background fall short of 4.5:1.
FEEDBACK_CSS = (Path(__file__).with_name("feedback.css")).read_text()


def _without_setup_cells(nb, resources) -> nbformat.NotebookNode:
    """The notebook without the release's setup cells (60 kB of the kit's zip and the install
    code, the same for everyone): those nbgrader restored by their id, and, in a notebook whose
    cells lost their ids, those whose source is still exactly the release's."""
    name = f"{(resources or {}).get('nbgrader', {}).get('notebook')}.ipynb"
    release = release_notebook(name).cells if (RELEASE_DIR / name).exists() else []
    # Compared with ==, never hashed: a submission's grade_id may be a list.
    setup_sources = [
        cell.source
        for cell in release
        if nbgrader_meta(cell).get("grade_id") in SETUP_CELLS
    ]
    shown = copy.copy(nb)
    shown.cells = [
        cell
        for cell in nb.cells
        if nbgrader_meta(cell).get("grade_id") not in SETUP_CELLS
        and cell.source not in setup_sources
    ]
    return shown


class TypesetFeedbackExporter(HTMLExporter):
    """The feedback page of one notebook, typeset and inert."""

    def from_notebook_node(self, nb, resources=None, **kw):
        output, resources = self._render(
            _without_setup_cells(nb, resources),
            safe_pages.typeset_as_a_page(resources),
            **kw,
        )
        page = safe_pages.typesetter().typeset(output, FEEDBACK_CSS, "en")
        return with_csp(page), resources

    def _render(self, nb, resources, **kw):
        """``HTMLExporter.from_notebook_node`` (nbconvert 7.17) without its last step, which
        parses the whole page again with BeautifulSoup's pure-Python parser: without it
        ``nbgrader generate_feedback`` wrote 114 pages in 18 s instead of 33-36 s (2026-12-07,
        this 2-core machine); a MOOC's 6,000 pages, 15 minutes less. That step gives each
        ``<img>`` without one a placeholder alt, which the typesetter now does while it has the
        page parsed anyway (``typeset_math.mjs``), and makes the cells of JupyterLab's template
        focusable, of which nbgrader's feedback template (the classic one) has none. The pages
        are otherwise the same, tag for tag and attribute for attribute."""
        langinfo = nb.metadata.get("language_info", {})
        lexer = langinfo.get("pygments_lexer", langinfo.get("name", None))
        highlight = self.filters.get(
            "highlight_code", Highlight2HTML(pygments_lexer=lexer, parent=self)
        )
        resources = self._init_resources(resources)
        data_type = WidgetsDataTypeFilter(
            notebook_metadata=self._nb_metadata, parent=self, resources=resources
        )
        self.register_filter("highlight_code", highlight)
        self.register_filter("filter_data_type", data_type)
        return TemplateExporter.from_notebook_node(self, nb, resources, **kw)
