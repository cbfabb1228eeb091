"""Per-student extensions: a CSV file the instructor edits, with a reason for each.

``extensions.csv`` at the course root (``c.CourseCalendar.extensions_file``)::

    student,days,hours,reason
    bitdiddle,2,,medical note (dean's office, 2026-11-30)
    hacker,,36,LMS outage

The file is the record of extensions with their reasons; nbgrader's gradebook, which has no
reason column, gets each one through its own API (``Gradebook.grant_extension``'s field,
``SubmittedAssignment.extension``) when a submission is graded. A student the file does not
name keeps whatever extension nbgrader's API gave (``nbgrader``'s gradebook is read too).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

COLUMNS = ("student", "days", "hours", "reason")
MAX_DAYS = 366


class ExtensionsError(ValueError):
    """The extensions file cannot be read as it is: grading must not guess."""


@dataclass(frozen=True)
class Extension:
    """How much later a student's calendar runs, why, and where that was recorded."""

    length: timedelta
    reason: str = ""
    origin: str = "file"  # "file" (extensions.csv) or "gradebook" (nbgrader's API)


def read_extensions(path: Path) -> dict[str, Extension]:
    """The file's extensions by student (none if there is no file); an error names the line."""
    if not path.is_file():
        return {}
    found: dict[str, Extension] = {}
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = {"student", "reason"} - set(reader.fieldnames or ())
        if missing or not {"days", "hours"} & set(reader.fieldnames or ()):
            raise ExtensionsError(
                f"{path}: the header must be {','.join(COLUMNS)} (days or hours, or both)"
            )
        for row in reader:
            line = reader.line_num
            student = (row.get("student") or "").strip()
            if not student:
                raise ExtensionsError(f"{path}, line {line}: no student")
            if student in found:
                raise ExtensionsError(
                    f"{path}, line {line}: {student} has a second extension; keep one line"
                )
            days = _number(row.get("days"), path, line, "days")
            hours = _number(row.get("hours"), path, line, "hours")
            if days + hours / 24 > MAX_DAYS:
                raise ExtensionsError(
                    f"{path}, line {line}: over {MAX_DAYS} days; is that a typo?"
                )
            found[student] = Extension(
                timedelta(days=days, hours=hours), (row.get("reason") or "").strip()
            )
    return found


def _number(text: str | None, path: Path, line: int, column: str) -> float:
    text = (text or "").strip()
    if not text:
        return 0.0
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise ExtensionsError(
            f"{path}, line {line}: {column} must be a number of at least 0, not {text!r}"
        )
    return value
