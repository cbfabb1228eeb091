"""When each submission reached the course: a time the student cannot set (issue 26's lateness).

nbgrader's exchange dates a submission by the student's own process: the folder name
``<student>+<assignment>+<timestamp>+<random>`` and ``timestamp.txt`` inside it, both written by
the student, who owns that folder afterwards too (nbgrader leaves it mode 0777). The hub test
shows that a student who rewrites them is collected by stock nbgrader with the time they chose.

This process runs as the course's grading account (a JupyterHub service, started by the hub,
not by any student), watches the course's inbox and appends one line per new submission folder
to ``receipts.csv`` in the course folder, which only that account can write: the time the
folder was first seen, the time the student claims and the sha256 of every file as it arrived.
Lateness reads ``received_at``: ``course_hub/collect.py`` collects each student's latest
submission by it and records its time for the course calendar's ``hub`` source; a file changed
after arrival shows as a digest that no longer matches.

The same process publishes the course's due dates from its gradebook to ``calendar.json`` in the
course's exchange folder (readable by the course's members only), so that a student's server can
say when a resubmission would be late (``course_hub/student_exchange.py``). Extensions are not
published: they are each student's own business.
"""

from __future__ import annotations

import argparse
import csv
import fcntl
import hashlib
import json
import os
import sqlite3
import tempfile
import time
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

RECEIPTS = "receipts.csv"
CALENDAR = (
    "calendar.json"  # in the course's exchange folder (student_exchange.CALENDAR)
)
GRADEBOOK = "gradebook.db"
FIELDS = ("folder", "student", "assignment", "received_at", "claimed", "sha256")
# How often the inbox is read; a submission is dated to within this (and the hub's clock).
POLL_SECONDS = 1.0
MAX_FILES = (
    200  # per submission folder: what a receipt hashes (the release has a dozen files)
)


def digest(folder: Path) -> str:
    """sha256 over the names and contents of a submission's regular files (links never)."""
    h = hashlib.sha256()
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink())
    for path in files[:MAX_FILES]:
        h.update(str(path.relative_to(folder)).encode("utf-8", "replace") + b"\0")
        with open(path, "rb") as f:
            h.update(hashlib.sha256(f.read(64 << 20)).digest())
    return h.hexdigest()


def read_receipts(course_dir: Path | str) -> list[dict[str, str]]:
    """Every receipt of the course, oldest first: what lateness is decided on."""
    path = Path(course_dir) / RECEIPTS
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def received_at(
    course_dir: Path | str, student: str, assignment: str
) -> datetime | None:
    """When the student's latest submission of ``assignment`` reached the inbox (UTC)."""
    times = [
        datetime.fromisoformat(r["received_at"])
        for r in read_receipts(course_dir)
        if r["student"] == student and r["assignment"] == assignment
    ]
    return max(times, default=None)


def receipt_of(course_dir: Path | str, folder: str) -> dict[str, str] | None:
    """The receipt of one inbox folder (the first, should two processes have taken one)."""
    return next((r for r in read_receipts(course_dir) if r["folder"] == folder), None)


def take_receipts(inbound: Path, course_dir: Path) -> int:
    """Write a receipt for each folder of ``inbound`` that has none yet; how many were new.

    The receipts service and ``nbgrader collect`` (``course_hub/collect.py``) both call this,
    as the course's grading account: the file is locked while it is read and appended to.
    """
    with open(Path(course_dir) / RECEIPTS, "a+", newline="", encoding="utf-8") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        seen = {r["folder"] for r in csv.DictReader(f)}
        new = []
        for entry in sorted(os.scandir(inbound), key=lambda e: e.name):
            if entry.name in seen or not entry.is_dir(follow_symlinks=False):
                continue
            parts = entry.name.split("+")
            if len(parts) < 3:
                continue  # not a submission nbgrader made; collect ignores it as well
            if not os.path.exists(os.path.join(entry.path, "timestamp.txt")):
                continue  # nbgrader writes it after the notebooks: still being copied in
            try:
                sha = digest(Path(entry.path))
            except OSError:
                continue  # still being copied in, or unreadable: the next poll tries again
            now = datetime.now(UTC).isoformat(timespec="microseconds")
            new.append([entry.name, parts[0], parts[1], now, parts[2], sha])
        if new:
            writer = csv.writer(f)
            if os.fstat(f.fileno()).st_size == 0:
                writer.writerow(FIELDS)
            writer.writerows(new)
    return len(new)


def due_dates(gradebook: Path) -> dict[str, str]:
    """Each assignment's due date in the gradebook (nbgrader's naive UTC), read-only."""
    uri = f"{Path(gradebook).resolve().as_uri()}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True)) as db:
        rows = db.execute("SELECT name, duedate FROM assignment").fetchall()
    return {name: f"{str(due)[:19]} UTC" for name, due in rows if due}


def publish_calendar(course_dir: Path, exchange_course: Path) -> bool:
    """Write ``calendar.json`` (the due dates) into the course's exchange folder, whole or not
    at all; whether it could be read and written."""
    try:
        dates = due_dates(Path(course_dir) / GRADEBOOK)
    except (sqlite3.Error, OSError):
        return False  # no gradebook yet, or locked: the next poll tries again
    with tempfile.NamedTemporaryFile(
        "w", dir=exchange_course, prefix=".calendar-", delete=False
    ) as f:
        json.dump(dates, f, sort_keys=True)
    os.chmod(f.name, 0o644)  # the folder itself is open to the course's members only
    os.replace(f.name, Path(exchange_course) / CALENDAR)
    return True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inbound", type=Path, required=True)
    parser.add_argument("--course-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    gradebook = args.course_dir / GRADEBOOK
    published = None  # the gradebook's mtime when the calendar was last published
    while True:
        if args.inbound.is_dir():
            take_receipts(args.inbound, args.course_dir)
        try:
            changed = gradebook.stat().st_mtime_ns
        except OSError:
            changed = None
        if changed is not None and changed != published:
            if publish_calendar(args.course_dir, args.inbound.parent):
                published = changed
        time.sleep(POLL_SECONDS)


if __name__ == "__main__":
    main()
