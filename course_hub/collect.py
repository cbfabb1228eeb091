"""nbgrader's collect on the hub: each student's latest submission by the time it *arrived*.

nbgrader's ``ExchangeCollect`` picks a student's latest submission by the time in its inbox
folder's name, which the student's own process writes (the hub test sets it to 2020), and
copies the student's ``timestamp.txt`` as the submission's time. Configured for every course of
the hub (``c.ExchangeFactory.collect`` in the course's ``nbgrader_config.py``, written by
``course_hub/provision.py``), this collect instead:

* takes a receipt of every complete folder not yet received (``receipts.take_receipts``: the
  receipts service may not have polled yet) and orders each student's submissions by their
  receipts, so "the later submission counts" and ``--before-duedate`` hold for the times the
  course saw;
* leaves out a folder without a receipt (still being copied in: the next collect takes it) and
  one that its named student does not own (another account's submission under their name);
* writes the receipt's time into the collected copy's ``timestamp.txt`` (the student's claim
  stays in ``receipts.csv``), so that nbgrader's own pages and ``--update`` read that time too;
* records each collected submission's receipt time in ``hub/<assignment>/times.csv``, the
  course calendar's ``hub`` source (``autograder.deadlines.times``), which decides lateness
  when ``c.CourseCalendar.time_source = "hub"`` (provision sets it for every hub course).
"""

from __future__ import annotations

import os
import pwd
from datetime import datetime
from pathlib import Path

from nbgrader.exchange.default.collect import ExchangeCollect

from autograder.deadlines.rule import utc
from autograder.deadlines.times import (
    SubmissionTime,
    read_times,
    record_path,
    write_times,
)
from course_hub.receipts import read_receipts, take_receipts

# nbgrader's own timestamp format (Exchange.timestamp_format), as timestamp.txt holds it.
STAMP = "%Y-%m-%d %H:%M:%S.%f UTC"
SECRET = (
    "submission_secret.txt"  # nbgrader submit writes a fresh one into every submission
)


def owner(path: str) -> str | None:
    """The account that owns ``path`` itself (a link is never followed)."""
    try:
        return pwd.getpwuid(os.lstat(path).st_uid).pw_name
    except (OSError, KeyError):
        return None


def same_submission(a: str, b: str) -> bool:
    """Whether two folders hold the same submission (nbgrader's per-submission secret)."""
    try:
        with open(os.path.join(a, SECRET), "rb") as fa:
            with open(os.path.join(b, SECRET), "rb") as fb:
                secret = fa.read(4096)
                return bool(secret) and secret == fb.read(4096)
    except OSError:
        return False


class ReceiptCollect(ExchangeCollect):
    """``nbgrader collect`` that orders and dates submissions by their receipts."""

    def init_src(self) -> None:
        inbound = os.path.join(self.root, self.coursedir.course_id, "inbound")
        course = Path(self.coursedir.root)
        if os.path.isdir(inbound):
            take_receipts(Path(inbound), course)
        self._received: dict[str, datetime] = {}
        for receipt in read_receipts(course):  # the first receipt of a folder counts
            self._received.setdefault(
                receipt["folder"], utc(datetime.fromisoformat(receipt["received_at"]))
            )
        super().init_src()
        self.src_records = [r for r in self.src_records if not r["refused"]]

    def _path_to_record(self, path: str) -> dict:
        record = super()._path_to_record(path)
        record["claimed"] = record["timestamp"]
        received = self._received.get(record["filename"])
        why = None
        if received is None:
            why = "no receipt yet (still being copied in, or not a folder)"
        elif owner(path) != record["username"]:
            why = f"owned by {owner(path)}, not by {record['username']}"
        if why:
            self.log.warning("Not collected: %s: %s", record["filename"], why)
        record["timestamp"] = received or datetime.min
        record["refused"] = why is not None
        return record

    def _sort_by_timestamp(self, records: list[dict]) -> list[dict]:
        """Latest receipt first; a refused folder is never chosen over a received one (and is
        dropped once chosen: a student with only refused folders is not collected)."""
        kept = [r for r in records if not r["refused"]] or records
        return super()._sort_by_timestamp(kept)

    def copy_files(self) -> None:
        super().copy_files()
        course = Path(self.coursedir.root)
        assignment = self.coursedir.assignment_id
        path = record_path(course, assignment, "hub")
        times = read_times(path, "hub")
        for rec in self.src_records:
            student = rec["username"]
            dest = self.coursedir.format_path(
                self.coursedir.submitted_directory, student, assignment
            )
            src = os.path.join(self.inbound_path, rec["filename"])
            if not same_submission(src, dest):
                continue  # an earlier collect's copy stands (no --update): its time too
            with open(os.path.join(dest, "timestamp.txt"), "w") as f:
                f.write(rec["timestamp"].strftime(STAMP))
            times[student] = SubmissionTime(rec["timestamp"], "hub")
            self.log.info(
                "%s: received %s (claimed %s)",
                student,
                rec["timestamp"],
                rec["claimed"],
            )
        write_times(path, times)
