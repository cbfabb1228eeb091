"""When each submission reached the course: a time the student cannot set (issue 26's lateness).

nbgrader's exchange dates a submission by the student's own process: the folder name
``<student>+<assignment>+<timestamp>+<random>`` and ``timestamp.txt`` inside it, both written by
the student, who owns that folder afterwards too (nbgrader leaves it mode 0777). The hub test
shows that a student who rewrites them is collected and graded with the time they chose.

This process runs as the course's grading account (a JupyterHub service, started by the hub,
not by any student), watches the course's inbox and appends one line per new submission folder
to ``receipts.csv`` in the course folder, which only that account can write: the time the
folder was first seen, the time the student claims and the sha256 of every file as it arrived.
Lateness reads ``received_at`` (``read_receipts``); a file changed after arrival shows as a digest
that no longer matches.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import time
from datetime import UTC, datetime
from pathlib import Path

RECEIPTS = "receipts.csv"
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


def take_receipts(inbound: Path, course_dir: Path) -> int:
    """Write a receipt for each folder of ``inbound`` that has none yet; how many were new."""
    seen = {r["folder"] for r in read_receipts(course_dir)}
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
        path = course_dir / RECEIPTS
        fresh = not path.exists()
        with open(path, "a", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            if fresh:
                writer.writerow(FIELDS)
            writer.writerows(new)
    return len(new)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inbound", type=Path, required=True)
    parser.add_argument("--course-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    while True:
        if args.inbound.is_dir():
            take_receipts(args.inbound, args.course_dir)
        time.sleep(POLL_SECONDS)


if __name__ == "__main__":
    main()
