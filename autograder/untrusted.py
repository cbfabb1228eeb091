"""Text and JSON that a student controls, made safe to show and to parse.

Imports nothing of the package: the sandbox's reply parser, the submission reader and the pages
the instructor opens all use it, and the pages must not import the sandbox to get it.
"""

from __future__ import annotations

import itertools
import re
import unicodedata


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
