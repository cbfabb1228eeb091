"""The roster: which nbgrader student id each LMS identity is.

``roster.csv``, one line per student::

    student,lms_id,name
    bitdiddle,123456,Ben Bitdiddle

``lms_id`` is the LMS's own number in the zip's file names (Canvas: the user id; Moodle: the
participant id of the assignment, the "Identifier" column of its grading worksheet without
"Participant "). A row without one is matched by ``name`` (exactly, ignoring case and repeated
spaces), and only if no other row has that name.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from autograder.untrusted import plain_name


class RosterError(ValueError):
    """The roster cannot be used as it is."""


@dataclass(frozen=True)
class Roster:
    by_id: dict[str, str]
    by_name: dict[str, str | None]  # None: more than one student has the name

    def student(self, lms_id: str, name: str) -> str | None:
        """The nbgrader id for an LMS identity, or None (unknown, or an ambiguous name)."""
        if lms_id in self.by_id:
            return self.by_id[lms_id]
        return self.by_name.get(_name_key(name))


def _name_key(name: str) -> str:
    return " ".join(name.split()).casefold()


def read_roster(path: Path) -> Roster:
    by_id: dict[str, str] = {}
    by_name: dict[str, str | None] = {}
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not {"student", "lms_id"} <= set(reader.fieldnames or ()):
            raise RosterError(f"{path}: the header must be student,lms_id,name")
        for row in reader:
            student = (row.get("student") or "").strip()
            lms_id = (row.get("lms_id") or "").strip()
            if not plain_name(student):
                raise RosterError(
                    f"{path}, line {reader.line_num}: {student!r} is not an nbgrader id "
                    "(letters, digits and . _ @ + - only)"
                )
            if lms_id:
                if lms_id in by_id:
                    raise RosterError(
                        f"{path}, line {reader.line_num}: lms_id {lms_id} appears twice"
                    )
                by_id[lms_id] = student
            else:
                key = _name_key(row.get("name") or "")
                if key:
                    by_name[key] = None if key in by_name else student
    return Roster(by_id, by_name)
