"""Accessible names that say what the controls show (WCAG 2.2 success criterion 2.5.3).

axe-core's ``label-content-name-mismatch`` fails every page of the stock theme: a screen reader
user who says "click Show code cell source" or "click Search Control K" (what a sighted reader
sees) finds no control of that name, because the theme and myst-nb name them otherwise. The
code-cell toggles are fixed in the HTML; the theme's buttons exist only where JavaScript runs, so
``static/accessible-names.js`` fixes those when the page loads. tests/test_site.py runs axe-core
on every page to keep it so.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from sphinx.application import Sphinx

# myst-nb names every hide-input toggle "Toggle hidden content" while it shows "Show code cell
# source": with no aria-label, the name is the text it shows.
TOGGLE = '<summary aria-label="Toggle hidden content">'
SCRIPT = Path(__file__).parent / "static" / "accessible-names.js"


def _name_toggles_by_their_text(app, pagename, templatename, context, doctree) -> None:
    if "body" in context:
        context["body"] = context["body"].replace(TOGGLE, "<summary>")


def _copy_the_script(app: Sphinx, exception: Exception | None) -> None:
    # At the end of every build, as offline_mathjax does: Sphinx copies html_static_path only
    # when some page was rebuilt, so an edit of the script alone would never reach the site.
    if exception is None and app.builder.format == "html":
        shutil.copy2(SCRIPT, Path(app.outdir) / "_static" / SCRIPT.name)


def setup(app: Sphinx) -> dict[str, object]:
    app.connect("build-finished", _copy_the_script)
    app.add_js_file("accessible-names.js", loading_method="defer")
    app.connect("html-page-context", _name_toggles_by_their_text)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
