"""Text, HTML and JSON that a student controls, made safe to show and to parse.

Imports nothing of the package: the sandbox's reply parser, the submission reader and the pages
the instructor opens all use it, and the pages must not import the sandbox to get it.
"""

from __future__ import annotations

import itertools
import re
import unicodedata

import nh3
from pygments.token import STANDARD_TYPES


def clean_text(value: object, limit: int) -> str:
    """Printable text of at most ``limit`` characters: no lone surrogates, no control characters
    (but newline and tab), whatever ``value`` was."""
    text = value if isinstance(value, str) else repr(value)
    text = text[: limit * 2].encode("utf-8", "replace").decode("utf-8")
    kept = (
        ch if ch in "\n\t" or unicodedata.category(ch)[0] != "C" else "\ufffd"
        for ch in text
    )
    return "".join(kept)[:limit]


# A JSON string; an unclosed one runs to the end, so that no match fails and backtracks.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_NESTING = {"[": 1, "{": 1, "]": -1, "}": -1}


def json_depth(text: str) -> int:
    """How deep JSON text nests arrays and objects, counted without parsing or recursion.

    Strings (which may hold brackets) are cut out first; every pass is linear, so a file of five
    million ``[`` costs half a second, not a RecursionError deep in a parser.
    """
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    return max(itertools.accumulate(map(_NESTING.__getitem__, brackets)), default=0)


_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}")


def plain_name(name: str) -> bool:
    """Whether a student id is plain (letters, digits, ``. _ @ + -``): nothing a page that
    prints it unescaped, or a path that holds it, could read as markup or a folder."""
    return bool(_PLAIN_NAME.fullmatch(name))


# What a page the project writes may load: its own inline styles, data: images and fonts (and
# fonts beside the file: nbgrader's feedback styles name Bootstrap's), nothing else; no script at
# all, so an event handler that slipped through would not run either.
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data: 'self'; "
    "base-uri 'none'; form-action 'none'"
)
CSP_META = f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
_HEAD = re.compile(r"<head\b[^>]*>", re.IGNORECASE)
_HTML = re.compile(r"<html\b[^>]*>", re.IGNORECASE)


def with_csp(page: str) -> str:
    """``page`` with :data:`CSP` as the first thing its ``<head>`` holds (a policy applies only
    to what comes after it, so it goes before every style, script and student string)."""
    for tag in (_HEAD, _HTML):
        found = tag.search(page)
        if found:
            return page[: found.end()] + CSP_META + page[found.end() :]
    return CSP_META + page


# The allow-list for student HTML (markdown, raw cells, HTML/SVG/markdown outputs, attachments):
# ammonia's default tags (text, lists, tables, headings, images), no SVG, MathML, form, frame,
# style or script; attributes that cannot run or fetch anything; ids prefixed, so that an answer
# cannot take the id of a control on the grader's page.
_IMAGE = re.compile(
    r"data:image/(png|jpeg|gif|webp);base64,[A-Za-z0-9+/=\s]*", re.IGNORECASE
)
_LINK_SCHEMES = ("http:", "https:", "mailto:")
_ATTRIBUTES = {
    "*": {"id", "title", "lang", "dir"},
    "a": {"href"},
    "img": {"src", "alt", "width", "height"},
    "ol": {"start"},
    "td": {"colspan", "rowspan", "align"},
    "th": {"colspan", "rowspan", "align", "scope"},
}


def _attribute(tag: str, name: str, value: str) -> str | None:
    """Only an embedded raster image may be a ``src`` (nothing is fetched: attachments and plots
    are data: URLs); a link goes to the web or mail, never to the server the page came from."""
    if name == "src":
        return value if _IMAGE.fullmatch(value.strip()) else None
    if name == "href":
        kept = value.strip().lower().startswith(_LINK_SCHEMES) or value.startswith("#")
        return value if kept else None
    return value


_CLEANER = nh3.Cleaner(
    tags=nh3.ALLOWED_TAGS - {"area", "map"},
    attributes=_ATTRIBUTES,
    attribute_filter=_attribute,
    url_schemes={"http", "https", "mailto", "data"},
    url_relative=lambda url: url if url.startswith("#") else None,
    # Code keeps its colours: the classes Pygments highlights with, and no other.
    allowed_classes={
        "span": {name for name in STANDARD_TYPES.values() if name},
        "div": {"highlight"},
    },
    id_prefix="user-content-",
    link_rel="noopener noreferrer nofollow",
)


def clean_html(value: object) -> str:
    """Student HTML cut down to the allow-list above: text, structure and embedded images stay,
    nothing that runs, fetches, restyles the page or posts a form does."""
    if isinstance(value, bytes):  # nbconvert's templates hand SVG over encoded
        value = value.decode("utf-8", "replace")
    return _CLEANER.clean(value if isinstance(value, str) else str(value))
