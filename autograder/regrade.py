"""Regrade after a rubric or reference change: one student, one item, or everyone.

The selected students are graded again from their submitted files, and each rubric item's new
result replaces the old one only where it is selected (``items``), and, with ``never_lower``,
only where it does not lower the score. Nothing changed: no file is written, so every output is
byte for byte what it was. Something changed: the results, grades.csv, feedback, the gradebook,
the exports and the class report are written again from the results, and the instructor gets a
table, per student and rubric item, of the old and new score and status. Every regrade, changed
or not, is logged (who, when, why, what was selected, what changed) in ``regrades.log`` at the
course root, outside the grade command's output.
"""

from __future__ import annotations

import csv
import getpass
import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from autograder.course_build.release import assignment_gradebook
from autograder.deadlines.schedule import Calendar
from autograder.grading.grader import Policy, grade_student
from autograder.integration.gradebook import write_gradebook
from autograder.outputs import report
from autograder.paths import ASSIGNMENT
from autograder.sandbox.runner import Limits, Sandbox, lent_or_own

LOG_FILE = "regrades.log"
TABLE_COLUMNS = (
    "student",
    "notebook",
    "cell",
    "item",
    "old_score",
    "new_score",
    "old_max",
    "new_max",
    "old_status",
    "new_status",
)


@dataclass(frozen=True)
class Change:
    """One rubric item of one student whose result the regrade changed."""

    student: str
    notebook: str
    cell: str
    item: str
    old_score: float | None
    new_score: float | None
    old_max: float | None
    new_max: float | None
    old_status: str
    new_status: str


def _key(notebook: str, item: dict) -> tuple[str, str, str]:
    return notebook, item["cell"], item["item"]


def _selected(item: dict, items: frozenset[str]) -> bool:
    """Whether a rubric item is one the regrade was asked for: every item if none was named;
    else a test cell (``test_corr2d_multi_in_hidden``) or a function (``corr2d_multi_in``)."""
    if not items:
        return True
    cell = item["cell"]
    function = (
        cell.removeprefix("test_").removesuffix("_example").removesuffix("_hidden")
    )
    return cell in items or function in items


def merge(
    old: dict | None, new: dict, items: frozenset[str], never_lower: bool
) -> dict:
    """The student's result after the regrade: the new one, but with the old item wherever the
    item was not selected, or (``never_lower``) where the new score is lower."""
    if old is None:
        return new
    before = {
        _key(nb["notebook"], item): item
        for nb in old["notebooks"]
        for item in nb["items"]
    }
    merged = json.loads(json.dumps(new))
    for nb, old_nb in zip(merged["notebooks"], _aligned(old, merged), strict=True):
        kept = []
        for item in nb["items"]:
            was = before.get(_key(nb["notebook"], item))
            if was is not None and (
                not _selected(item, items)
                or (never_lower and item["score"] < was["score"])
            ):
                item = was
            kept.append(item)
        nb["items"] = kept
        if items and old_nb is not None:  # a partial regrade keeps the rest as it was
            nb["notes"], nb["inputs"] = old_nb["notes"], old_nb["inputs"]
    return merged


def _aligned(old: dict, new: dict) -> list[dict | None]:
    by_name = {nb["notebook"]: nb for nb in old["notebooks"]}
    return [by_name.get(nb["notebook"]) for nb in new["notebooks"]]


def changes(old: dict | None, new: dict) -> list[Change]:
    """Every rubric item whose score, status or message differs, in the new result's order."""
    before = (
        {_key(nb["notebook"], i): i for nb in old["notebooks"] for i in nb["items"]}
        if old
        else {}
    )
    found = []
    for nb in new["notebooks"]:
        for item in nb["items"]:
            was = before.get(_key(nb["notebook"], item))
            if was is not None and all(
                was[k] == item[k] for k in ("score", "max_score", "status", "message")
            ):
                continue
            found.append(
                Change(
                    new["student"],
                    nb["notebook"],
                    item["cell"],
                    item["item"],
                    was["score"] if was else None,
                    item["score"],
                    was["max_score"] if was else None,
                    item["max_score"],
                    was["status"] if was else "",
                    item["status"],
                )
            )
    return found


def regrade(
    submitted: Path,
    out: Path,
    *,
    reason: str,
    students: Iterable[str] = (),
    items: Iterable[str] = (),
    never_lower: bool = False,
    policy: Policy = Policy(),
    limits: Limits | None = None,
    unsafe: bool = False,
    calendar: Calendar | None = None,
    course: Path = Path("."),
    sandbox: Sandbox | None = None,
) -> tuple[list[Change], Path | None]:
    """Regrade ``students`` (everyone graded in ``out``, if none) on ``items`` (every item, if
    none); return the changes and the table written (``None``: nothing changed, nothing
    written). Logged in ``course/regrades.log`` either way. As in ``grade_batch``, a caller
    that grades again and again in one process may pass its own warm ``sandbox``."""
    if not reason.strip():
        raise ValueError("say why you regrade (--reason): the log keeps it")
    old = {r["student"]: r for r in report.load_results(out)}
    chosen = sorted(set(students)) or sorted(old)
    missing = [s for s in chosen if not (submitted / s / ASSIGNMENT).exists()]
    if missing:
        raise ValueError(f"no submission in {submitted} for {', '.join(missing)}")
    wanted = frozenset(items)
    merged: dict[str, dict] = {}
    with lent_or_own(sandbox, limits or Limits(), unsafe=unsafe) as box:
        for student in chosen:
            fresh = grade_student(submitted / student / ASSIGNMENT, box, policy)
            merged[student] = merge(old.get(student), fresh, wanted, never_lower)
    changed = {s: r for s, r in merged.items() if r != old.get(s)}
    found = [c for s in sorted(changed) for c in changes(old.get(s), changed[s])]
    table = None
    if changed:
        for result in changed.values():
            report.save_result(out, result)
        results = report.load_results(out)
        report.write_grades_csv(out, results)
        report.write_feedback(out, results, calendar)
        write_gradebook(out, results, assignment_gradebook(), calendar)
        table = _write_table(out, found)
    _log(
        course,
        why=reason,
        students=list(students) or "everyone",
        items=sorted(wanted) or "every item",
        never_lower=never_lower,
        changed_students=sorted(changed),
        changed_items=len(found),
        table=str(table) if table else None,
    )
    return found, table


def _write_table(out: Path, found: list[Change]) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    path = out / f"regrade-{stamp}.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(TABLE_COLUMNS)
        for change in found:
            writer.writerow(asdict(change).values())
    return path


def who() -> str:
    """The person regrading: the login behind sudo, else this process's user."""
    return os.environ.get("SUDO_USER") or getpass.getuser()


def _log(course: Path, **entry: object) -> None:
    record = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "who": who(),
        **entry,
    }
    with (Path(course) / LOG_FILE).open("a", encoding="utf-8") as f:
        f.write(json.dumps(record, sort_keys=True) + "\n")


def read_log(course: Path) -> list[dict]:
    path = Path(course) / LOG_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]
