"""When a student submitted: from a record the student cannot write, through one function.

``submission_time`` is the only way any part of the package learns a submission's time. Each
source is named:

- ``lms``: the LMS's own submission time, from its "download all submissions" zip, recorded by
  ``python -m autograder intake`` in ``intake/<assignment>/times.csv`` (the LMS's late flag too).
- ``hub``: the course hub's instructor-side time, in ``hub/<assignment>/times.csv`` (same
  columns; the hub's collector writes it with ``write_times``). This is where the hub plugs in.
- ``exchange``: nbgrader's own, the ``timestamp.txt`` that ``nbgrader collect`` copies from the
  exchange into ``submitted/<student>/<assignment>/``. nbgrader's stock exchange is a shared
  folder the student's own ``nbgrader submit`` writes, so this source is only as trustworthy as
  the exchange: use it with an exchange the student cannot write (the hub's).

A file inside a student's submission is never a source for ``lms`` or ``hub``: the records live
at the course root, outside ``submitted/``, written by instructor-side tools only.
"""

from __future__ import annotations

import csv
import os
import stat
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from autograder.deadlines.rule import utc

SOURCES = ("lms", "hub", "exchange")
RECORD_FILES = {
    "lms": "intake/{assignment}/times.csv",
    "hub": "hub/{assignment}/times.csv",
}
RECORD_COLUMNS = ("student", "submitted_at", "lms_late")
TIMESTAMP_FILE = "timestamp.txt"  # nbgrader's, in submitted/<student>/<assignment>/
TIMESTAMP_BYTES = 100


@dataclass(frozen=True)
class SubmissionTime:
    """A submission's time (naive UTC, ``None``: unknown) and where it came from."""

    at: datetime | None
    source: str
    lms_late: bool | None = None  # the LMS's own late flag, where it has one


def parse_time(text: str) -> datetime:
    """A time as nbgrader parses one (``nbgrader.utils.parse_utc``): naive UTC."""
    from nbgrader.utils import parse_utc  # nbgrader only where a time is read

    return utc(parse_utc(text))


def format_time(moment: datetime) -> str:
    return f"{utc(moment):%Y-%m-%d %H:%M:%S} UTC"


def record_path(course: Path, assignment: str, source: str) -> Path:
    return Path(course) / RECORD_FILES[source].format(assignment=assignment)


def read_times(path: Path, source: str) -> dict[str, SubmissionTime]:
    """A record's times by student; a missing record is empty (every time unknown)."""
    if not path.is_file():
        return {}
    times = {}
    with path.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            when = (row.get("submitted_at") or "").strip()
            flag = (row.get("lms_late") or "").strip().lower()
            times[row["student"]] = SubmissionTime(
                at=parse_time(when) if when else None,
                source=source,
                lms_late={"true": True, "false": False}.get(flag),
            )
    return times


def write_times(path: Path, times: dict[str, SubmissionTime]) -> Path:
    """Write a record whole or not at all (the intake's, or the hub's collector's)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        "w", newline="", encoding="utf-8", dir=path.parent, delete=False
    ) as f:
        writer = csv.writer(f)
        writer.writerow(RECORD_COLUMNS)
        for student in sorted(times):
            t = times[student]
            flag = "" if t.lms_late is None else str(t.lms_late).lower()
            writer.writerow([student, format_time(t.at) if t.at else "", flag])
    os.replace(f.name, path)
    return path


def submission_time(
    course: Path,
    assignment: str,
    student: str,
    source: str,
    record: dict[str, SubmissionTime] | None = None,
) -> SubmissionTime:
    """The time that decides whether ``student`` was late, from ``source`` only.

    ``record``: the source's record already read (a batch reads it once).
    """
    if source not in SOURCES:
        raise ValueError(f"unknown submission-time source {source!r}: one of {SOURCES}")
    if source == "exchange":
        folder = Path(course) / "submitted" / student / assignment
        return SubmissionTime(exchange_timestamp(folder), source)
    if record is None:
        record = read_times(record_path(course, assignment, source), source)
    return record.get(student, SubmissionTime(None, source))


def exchange_timestamp(folder: Path) -> datetime | None:
    """nbgrader's ``timestamp.txt`` in ``folder``, read as nbgrader's own ``get_existing_timestamp``
    but never through a link, FIFO or device, and at most 100 bytes."""
    path = folder / TIMESTAMP_FILE
    if any(p.is_symlink() for p in (folder, folder.parent)):
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            return None
        text = f.read(TIMESTAMP_BYTES + 1)
    if len(text) > TIMESTAMP_BYTES:
        return None
    try:
        return parse_time(text.decode("utf-8").strip())
    except (ValueError, OverflowError, UnicodeDecodeError):
        return None
