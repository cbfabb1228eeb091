"""What the stock theme lacks for WCAG 2.2 AA and for readers: names, focus, readable search.

Names (success criterion 2.5.3, Label in Name): axe-core's ``label-content-name-mismatch`` fails
every page of the stock theme. A screen reader user who says "click Show code cell source" or
"click Search Control K" (what a sighted reader sees) finds no control of that name, because the
theme and myst-nb name them otherwise. The code-cell toggles are fixed in the HTML; the theme's
buttons exist only where JavaScript runs, so ``static/accessibility.js`` fixes those when the
page loads.

Search: the results quote each page's text, where inline math is still TeX; the script quotes
it as readable text instead (a multiplication sign, not "\\times").

Reflow (1.4.10): on a phone, long identifiers in the text wrap, and code or tables that scroll
sideways inside their box show a shadow on the side that hides more; on a laptop, a narrower
contents column leaves code cells room for the 88 characters a line of the course's code.

Focus (2.4.7, Focus Visible): two of the theme's buttons, the sidebar toggle and the download
menu, show no focus ring; ``static/accessibility.css`` gives them one. tests/test_site.py checks
every page with axe-core and walks it with the Tab key.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from sphinx.application import Sphinx

# myst-nb names every hide-input toggle "Toggle hidden content" while it shows "Show code cell
# source": with no aria-label, the name is the text it shows.
TOGGLE = '<summary aria-label="Toggle hidden content">'
STATIC = Path(__file__).parent / "static"
FILES = ("accessibility.js", "accessibility.css")


def _name_toggles_by_their_text(app, pagename, templatename, context, doctree) -> None:
    if "body" in context:
        context["body"] = context["body"].replace(TOGGLE, "<summary>")


def _copy_the_files(app: Sphinx, exception: Exception | None) -> None:
    # At the end of every build, as offline_mathjax does: Sphinx copies html_static_path only
    # when some page was rebuilt, so an edit of these files alone would never reach the site.
    if exception is None and app.builder.format == "html":
        for name in FILES:
            shutil.copy2(STATIC / name, Path(app.outdir) / "_static" / name)


def setup(app: Sphinx) -> dict[str, object]:
    app.connect("build-finished", _copy_the_files)
    app.add_js_file("accessibility.js", loading_method="defer")
    app.add_css_file("accessibility.css")
    app.connect("html-page-context", _name_toggles_by_their_text)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
