"""Stock nbgrader's feedback pages (``autograder/integration/feedback_pages.py``) render what
nbconvert's own ``HTMLExporter`` renders, less its second parse of the page, whose one effect
on them (an alt for undescribed images) the typesetter has (tests/integration/test_inert_pages.py).
Should a new nbconvert do more in that step, this fails and says where."""

from __future__ import annotations

import copy
import re
from html.parser import HTMLParser

from nbconvert.exporters import HTMLExporter
from traitlets.config import Config

from autograder import notebooks
from autograder.integration.feedback_pages import TypesetFeedbackExporter
from autograder.paths import SOURCE_DIR

# Elements without an end tag, which BeautifulSoup writes as <br/> and the templates as <br>.
VOID = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "source",
}
NO_ALT = "No description has been provided for this image"  # nbconvert's placeholder


class _Tokens(HTMLParser):
    """A page as tags (attributes sorted, class lists normalised) and text (spaces collapsed):
    what a reader gets, whatever the serialiser's spacing and attribute order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tokens: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        kept = sorted(
            (name, " ".join((value or "").split()) if name == "class" else value or "")
            for name, value in attrs
            if not (tag == "img" and name == "alt" and value == NO_ALT)
        )
        self.tokens.append(f"<{tag} {kept}>")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)  # <br/> and <br> alike

    def handle_endtag(self, tag: str) -> None:
        if tag not in VOID:
            self.tokens.append(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        if text := re.sub(r"\s+", " ", data).strip():
            self.tokens.append(text)


def tokens(page: str) -> list[str]:
    parser = _Tokens()
    parser.feed(page)
    return parser.tokens


def test_the_feedback_exporter_renders_what_nbconverts_html_exporter_renders():
    # A solved notebook with a figure among its outputs; the classic template, on which
    # nbgrader's feedback template is built (the feedback one needs a gradebook's scores).
    nb = notebooks.read(SOURCE_DIR / "01-multiple-input-channels.ipynb")
    config = Config()
    config.HTMLExporter.template_name = "classic"
    ours, _ = TypesetFeedbackExporter(config=config)._render(copy.deepcopy(nb), {})
    stock, _ = HTMLExporter(config=config).from_notebook_node(copy.deepcopy(nb))
    assert "<img" in ours and NO_ALT in stock and NO_ALT not in ours
    assert tokens(ours) == tokens(stock)
