"""The calendar's inputs: the extensions file, the submission-time sources, the course's settings
and nbgrader's due date, each read the way both grading paths read them."""

from __future__ import annotations

import os
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from nbgrader.api import Gradebook

from autograder.deadlines.extensions import ExtensionsError, read_extensions
from autograder.deadlines.schedule import load_calendar
from autograder.deadlines.times import (
    SubmissionTime,
    record_path,
    submission_time,
    write_times,
)
from autograder.paths import ASSIGNMENT, ROOT

DUE = datetime(2026, 12, 4, 17, 0)


def test_extensions_file_gives_lengths_and_reasons(tmp_path):
    path = tmp_path / "extensions.csv"
    path.write_text(
        "student,days,hours,reason\n"
        'bitdiddle,2,,"medical note (dean\'s office, 2026-11-30)"\n'
        "hacker,,36,LMS outage\n"
    )
    found = read_extensions(path)
    assert found["bitdiddle"].length == timedelta(days=2)
    assert found["bitdiddle"].reason == "medical note (dean's office, 2026-11-30)"
    assert found["hacker"].length == timedelta(hours=36)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("student,weeks,reason\nx,1,\n", "header"),
        ("student,days,hours,reason\n,1,,\n", "line 2: no student"),
        ("student,days,hours,reason\nx,two,,\n", "line 2: days"),
        ("student,days,hours,reason\nx,-1,,\n", "line 2: days"),
        ("student,days,hours,reason\nx,nan,,\n", "line 2: days"),
        ("student,days,hours,reason\nx,1,,\nx,2,,\n", "line 3: x has a second"),
        ("student,days,hours,reason\nx,1000,,\n", "typo"),
    ],
)
def test_a_broken_extensions_file_names_its_line(tmp_path, body, says):
    path = tmp_path / "extensions.csv"
    path.write_text(body)
    with pytest.raises(ExtensionsError, match=says):
        read_extensions(path)


def test_no_extensions_file_means_no_extensions(tmp_path):
    assert read_extensions(tmp_path / "extensions.csv") == {}


def course_with(tmp_path: Path, **settings: str) -> Path:
    shutil.copy(ROOT / "nbgrader_config.py", tmp_path)
    with (tmp_path / "nbgrader_config.py").open("a") as f:
        for key, value in settings.items():
            f.write(f"c.CourseCalendar.{key} = {value!r}\n")
    return tmp_path


def submitted_folder(course: Path, student: str) -> Path:
    folder = course / "submitted" / student / ASSIGNMENT
    folder.mkdir(parents=True)
    return folder


def test_the_lms_source_ignores_the_timestamp_file_a_student_put_in_the_submission(
    tmp_path,
):
    course = course_with(tmp_path)
    (submitted_folder(course, "mallory") / "timestamp.txt").write_text(
        "2026-12-01 00:00:00 UTC"
    )
    write_times(
        record_path(course, ASSIGNMENT, "lms"),
        {"mallory": SubmissionTime(DUE + timedelta(days=1), "lms", True)},
    )
    found = submission_time(course, ASSIGNMENT, "mallory", "lms")
    assert found == SubmissionTime(DUE + timedelta(days=1), "lms", True)
    assert submission_time(course, ASSIGNMENT, "nobody", "lms").at is None


def test_the_hub_source_reads_the_hubs_record_only(tmp_path):
    course = course_with(tmp_path)
    write_times(
        record_path(course, ASSIGNMENT, "hub"),
        {"alyssa": SubmissionTime(DUE, "hub")},
    )
    assert submission_time(course, ASSIGNMENT, "alyssa", "hub").at == DUE
    assert submission_time(course, ASSIGNMENT, "alyssa", "lms").at is None


def test_the_exchange_source_reads_nbgraders_timestamp_never_through_a_link(tmp_path):
    course = course_with(tmp_path)
    (submitted_folder(course, "ben") / "timestamp.txt").write_text(
        "2026-12-05 09:30:00.123456 UTC\n"
    )
    assert submission_time(course, ASSIGNMENT, "ben", "exchange").at == datetime(
        2026, 12, 5, 9, 30, 0, 123456
    )
    linked = submitted_folder(course, "eve")
    os.symlink(
        course / "submitted" / "ben" / ASSIGNMENT / "timestamp.txt",
        linked / "timestamp.txt",
    )
    fifo = submitted_folder(course, "fifo")
    os.mkfifo(fifo / "timestamp.txt")
    huge = submitted_folder(course, "huge")
    (huge / "timestamp.txt").write_text("2026-12-05 " + " " * 200)
    for student in ("eve", "fifo", "huge", "absent"):
        assert submission_time(course, ASSIGNMENT, student, "exchange").at is None


def test_the_calendar_takes_nbgraders_due_date_and_extensions_and_the_file_over_them(
    tmp_path,
):
    course = course_with(tmp_path, percent_per_day=10.0, zero_after="due")
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        gb.update_or_create_assignment(ASSIGNMENT, duedate=DUE)
        for student in ("api_only", "both"):
            gb.add_student(student)
            with (
                gb.db.no_autoflush
            ):  # nbgrader's own add warns otherwise (SQLAlchemy 2)
                gb.add_submission(ASSIGNMENT, student)
            gb.grant_extension(ASSIGNMENT, student, days=1)
    (course / "extensions.csv").write_text(
        "student,days,hours,reason\nboth,3,,illness\nfile_only,,12,outage\n"
    )
    calendar = load_calendar(course, ASSIGNMENT)
    assert calendar.due == DUE
    assert calendar.rule.zero_when_late
    lengths = {
        s: (e.length, e.reason, e.origin) for s, e in calendar.extensions.items()
    }
    assert lengths == {
        "api_only": (timedelta(days=1), "", "gradebook"),
        "both": (timedelta(days=3), "illness", "file"),
        "file_only": (timedelta(hours=12), "outage", "file"),
    }


def test_without_a_gradebook_nobody_is_late(tmp_path):
    course = course_with(tmp_path, percent_per_day=50.0)
    write_times(
        record_path(course, ASSIGNMENT, "lms"),
        {"x": SubmissionTime(DUE + timedelta(days=30), "lms")},
    )
    lateness = load_calendar(course, ASSIGNMENT).lateness("x")
    assert lateness.fraction == 0 and not lateness.late
