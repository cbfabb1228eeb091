"""The hub's roster and receipts, with the inputs an attacker would write (no hub started)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from course_hub.receipts import read_receipts, received_at, take_receipts
from course_hub.roster import DEMO_ROSTER, RosterError, read_roster


def test_the_demo_roster_has_two_instructors_a_ta_of_one_course_and_three_students():
    roster = read_roster(DEMO_ROSTER)
    a, b = roster.courses
    assert (a.instructors, a.tas, b.tas) == (("ada",), ("tomas",), ())
    assert {s for c in roster.courses for s in c.students} == {"alice", "bilal", "chen"}
    assert "chen" in a.students and "chen" in b.students


@pytest.mark.parametrize(
    "row",
    [
        "../../etc,channels-a,student",  # a path, not a name
        "root; rm -rf /,channels-a,student",  # a command
        "Alice,channels-a,student",  # useradd refuses capitals
        "grader-channels-a,channels-a,student",  # the course's own grading account
        "mallory,../exchange,student",  # a course id that is a path
        "mallory,channels-a,admin",  # a role the hub does not have
        "alice,channels-a,ta",  # alice twice in one course (she is a student there)
    ],
)
def test_a_roster_row_that_is_not_a_safe_name_course_and_role_is_refused(tmp_path, row):
    roster = tmp_path / "roster.csv"
    roster.write_text(DEMO_ROSTER.read_text() + row + "\n")
    with pytest.raises(RosterError, match=r"roster.csv:\d+"):
        read_roster(roster)


def submission(inbound: Path, name: str, complete: bool = True) -> Path:
    folder = inbound / name
    folder.mkdir(parents=True)
    (folder / "01.ipynb").write_text("{}")
    if complete:
        (folder / "timestamp.txt").write_text(name.split("+")[2])
    return folder


def test_a_receipt_is_taken_once_per_complete_submission_with_the_receivers_time(
    tmp_path,
):
    inbound, course = tmp_path / "inbound", tmp_path / "course"
    course.mkdir()
    submission(inbound, "chen+channels+2020-01-01 00:00:00.000000 UTC+abc")
    submission(inbound, "alice+channels+2026-12-06 10:00:00.000000 UTC+def", False)
    (inbound / "not-a-submission").mkdir()
    os.symlink("/etc", inbound / "bilal+channels+2020-01-01 00:00:00 UTC+ghi")
    assert take_receipts(inbound, course) == 1
    assert take_receipts(inbound, course) == 0  # once per folder
    (receipt,) = read_receipts(course)
    assert receipt["claimed"].startswith("2020") and len(receipt["sha256"]) == 64
    assert received_at(course, "chen", "channels").year >= 2026
    (
        inbound / "alice+channels+2026-12-06 10:00:00.000000 UTC+def" / "timestamp.txt"
    ).write_text("x")
    assert take_receipts(inbound, course) == 1  # alice's, now that nbgrader finished it
    assert received_at(course, "bilal", "channels") is None
