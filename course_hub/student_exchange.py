"""nbgrader's exchange as a student's server runs it on the hub: the same files, plainer failures.

Configured in every student server (``etc/student/nbgrader_config.py``, written by
``course_hub/provision.py``, which copies this file into ``etc/student/python/course_hub/``: a
student's view has no checkout). It imports nbgrader and the standard library only, and it runs
as the student: it protects students from their own mistakes, not the course from students (the
course's side is ``course_hub/collect.py`` and the receipts).

* **Fetch** (``AtomicFetch``) copies the release into a hidden folder beside its destination and
  renames it into place when the copy is complete. nbgrader's own fetch copies straight into
  ``<course>/<assignment>/``: a server stopped mid-fetch left a folder with some notebooks, which
  the Assignments tab lists as fetched (no Fetch button) and which was then submitted without
  the rest. Here an interrupted fetch leaves the assignment unfetched, and the next Fetch
  clears the leftover copy.
* **Submit** (``CheckedSubmit``) refuses, with a message that says what to do, a folder that is
  not the release's notebooks: a released notebook deleted (a fresh copy is put back), renamed
  (its cells are in a notebook of another name), or duplicated (a notebook of another name
  carries the same cells, so which one holds the answers is ambiguous); and it asks once before
  a submission after the due date replaces an earlier one made in time. nbgrader submits all
  of these silently (a warning in the server's log); then the course grades a missing notebook
  as zero and never looks at the renamed one. JupyterLab's Assignments tab shows a refused
  submission's message in its "Invalid Submission" dialog.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from datetime import datetime

from nbgrader.exchange.default.fetch_assignment import ExchangeFetchAssignment
from nbgrader.exchange.default.submit import ExchangeSubmit
from nbgrader.utils import find_all_files, parse_utc

# Beside the destination, hidden in JupyterLab: <course>/.<assignment>.fetching-<pid>
FETCHING = ".{}.fetching-"
# The course's due dates, published by its receipts service (course_hub/receipts.py) in the
# course's exchange folder, which only the course's members can read.
CALENDAR = "calendar.json"
# A late resubmission goes through when Submit is pressed again within this many seconds.
CONFIRM_SECONDS = 600
CONFIRM_MARK = ".late-resubmission-{}"
# A student's notebook is read for its cell ids only; one larger than this is left unread.
MAX_READ_BYTES = 20_000_000


class AtomicFetch(ExchangeFetchAssignment):
    """nbgrader's fetch, made whole or not at all (see the module's docstring)."""

    def do_copy(self, src: str, dest: str) -> None:
        if os.path.isdir(
            self.dest_path
        ):  # --replace: nbgrader fills in the missing files
            super().do_copy(src, dest)
            return
        parent, name = os.path.split(os.path.abspath(dest))
        os.makedirs(parent, exist_ok=True)
        prefix = FETCHING.format(name)
        for entry in os.scandir(parent):  # what an interrupted fetch left
            if entry.name.startswith(prefix) and entry.is_dir(follow_symlinks=False):
                self.log.warning("Removing an interrupted fetch: %s", entry.path)
                shutil.rmtree(entry.path, ignore_errors=True)
        partial = os.path.join(parent, f"{prefix}{os.getpid()}")
        super().do_copy(src, partial)
        os.rename(partial, dest)


def grade_ids(path: str) -> set[str]:
    """The nbgrader ids of a notebook's cells (empty if it cannot be read as one)."""
    try:
        if os.path.getsize(path) > MAX_READ_BYTES:
            return set()
        with open(path, encoding="utf-8") as f:
            nb = json.load(f)
        cells = nb.get("cells", []) if isinstance(nb, dict) else []
        ids = set()
        for cell in cells:
            meta = cell.get("metadata", {}) if isinstance(cell, dict) else {}
            nbgrader = meta.get("nbgrader", {}) if isinstance(meta, dict) else {}
            grade_id = nbgrader.get("grade_id") if isinstance(nbgrader, dict) else None
            if isinstance(grade_id, str) and grade_id:
                ids.add(grade_id)
        return ids
    except (OSError, ValueError, RecursionError):
        return set()


def notebook_problems(
    release: str, folder: str, ignore: list[str]
) -> tuple[list[str], list[str]]:
    """What keeps ``folder`` from being the release's notebooks, in words for the student, and
    the released notebooks missing from it that no other notebook there stands for."""

    def notebooks(root: str) -> list[str]:
        found = find_all_files(root, ignore)
        return sorted(os.path.relpath(p, root) for p in found if p.endswith(".ipynb"))

    released = notebooks(release)
    submitted = notebooks(folder)
    every = {nb: grade_ids(os.path.join(release, nb)) for nb in released}
    # Each notebook by the ids no other released notebook has (the kit's set-up cells are in
    # every one of them).
    ids = {
        nb: every[nb].difference(*(every[o] for o in released if o != nb))
        for nb in released
    }
    problems, renamed = [], set()
    for extra in (nb for nb in submitted if nb not in released):
        carried = grade_ids(os.path.join(folder, extra))
        for original in (nb for nb in released if ids[nb] & carried):
            if original in submitted:
                problems.append(
                    f"{extra} is a copy of {original}, and only {original} is graded. If "
                    f"your answers are in {extra}, copy them into {original}; then delete "
                    f"{extra} (or move it out of this folder)."
                )
            else:
                renamed.add(original)
                problems.append(
                    f"{original} is missing, and {extra} has its cells: rename {extra} "
                    f"back to {original} (the course grades that name only)."
                )
    missing = [nb for nb in released if nb not in submitted and nb not in renamed]
    return problems, missing


def submissions_before(cache: str, student: str, assignment: str) -> list[datetime]:
    """The times of the student's earlier submissions of ``assignment`` (their own cache)."""
    times = []
    prefix = f"{student}+{assignment}+"
    try:
        entries = os.listdir(cache)
    except OSError:
        return []
    for name in entries:
        if name.startswith(prefix):
            try:
                times.append(parse_utc(name[len(prefix) :].split("+")[0]))
            except (ValueError, OverflowError):
                continue
    return sorted(times)


class CheckedSubmit(ExchangeSubmit):
    """nbgrader's submit, refusing what would be graded otherwise than the student meant."""

    def check_filename_diff(self) -> None:
        problems, missing = notebook_problems(
            self.release_path, self.src_path, list(self.coursedir.ignore)
        )
        for (
            name
        ) in missing:  # put a fresh copy back, as nbgrader's fetch --replace would
            dest = os.path.join(self.src_path, name)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            shutil.copy(os.path.join(self.release_path, name), dest)
            problems.append(
                f"{name} was missing from your folder: a fresh copy of it from the release "
                "is back. Answer it (or leave it as it is)."
            )
        if problems:
            where = os.path.relpath(self.src_path, os.path.abspath(self.assignment_dir))
            self.fail(
                f"Nothing was submitted. In {where}:\n- "
                + "\n- ".join(problems)
                + "\nThen press Submit again."
            )
        self.confirm_if_late()

    def confirm_if_late(self) -> None:
        """Ask once before a submission after the due date replaces one made in time."""
        due = self.due_date()
        now = parse_utc(self.timestamp)
        if due is None or now <= due:
            return
        student = self.assignment_filename.split("+")[0]
        assignment = self.coursedir.assignment_id
        earlier = [
            t
            for t in submissions_before(self.cache_path, student, assignment)
            if t <= due
        ]
        if not earlier:
            return
        mark = os.path.join(self.cache_path, CONFIRM_MARK.format(assignment))
        try:
            asked = os.path.getmtime(mark)
        except OSError:
            asked = None
        if asked is not None and time.time() - asked < CONFIRM_SECONDS:
            os.unlink(mark)
            self.log.warning("Late resubmission confirmed: %s", assignment)
            return
        os.makedirs(self.cache_path, exist_ok=True)
        with open(mark, "w") as f:
            f.write(self.timestamp)
        self.fail(
            f"Nothing was submitted yet: the due date ({due:%Y-%m-%d %H:%M} UTC) has passed, "
            f"and your submission of {earlier[-1]:%Y-%m-%d %H:%M} UTC was in time.\n"
            "Submitting now replaces it: the course grades your latest submission, and the "
            "late rule applies to it (unless you have an extension).\n"
            f"To submit anyway, press Submit again within {CONFIRM_SECONDS // 60} minutes."
        )

    def due_date(self) -> datetime | None:
        """The assignment's due date as the course published it (``None``: none known)."""
        path = os.path.join(self.root, self.coursedir.course_id, CALENDAR)
        try:
            with open(path, encoding="utf-8") as f:
                due = json.load(f).get(self.coursedir.assignment_id)
            return parse_utc(due) if isinstance(due, str) and due else None
        except (OSError, ValueError, AttributeError, OverflowError):
            return None
