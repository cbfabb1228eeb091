"""The class report's late and extended students, from a calendar and plain results."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from autograder.deadlines.extensions import Extension
from autograder.deadlines.rule import LateRule
from autograder.deadlines.schedule import Calendar
from autograder.deadlines.times import SubmissionTime
from autograder.outputs.class_report import late_rows, report_html

DUE = datetime(2026, 12, 4, 17, 0)


def result(student: str, scores: dict[str, float]) -> dict:
    return {
        "student": student,
        "assignment": "channels",
        "notebooks": [
            {
                "notebook": nb,
                "items": [
                    {"cell": "c", "item": "i", "score": score, "max_score": 3.0,
                     "status": "passed", "message": ""}
                ],
                "notes": [],
                "inputs": {},
            }
            for nb, score in scores.items()
        ],
        "unrecognised_files": [],
    }  # fmt: skip


CALENDAR = Calendar(
    "channels",
    Path("."),
    due=DUE,
    rule=LateRule(percent_per_day=25),
    times={
        "late": SubmissionTime(DUE + timedelta(hours=30), "lms", True),
        "early": SubmissionTime(DUE - timedelta(hours=1), "lms", False),
        "extended": SubmissionTime(DUE + timedelta(hours=2), "lms", True),
    },
    extensions={"extended": Extension(timedelta(days=1), "flu")},
)
RESULTS = [
    result(s, {"a.ipynb": 2.0, "b.ipynb": 2.0})
    for s in ("early", "extended", "late", "no_time")
]


def test_late_extended_and_unknown_times_are_listed_on_time_ones_are_not():
    rows = {row.lateness.student: row for row in late_rows(RESULTS, CALENDAR)}
    assert sorted(rows) == ["extended", "late", "no_time"]
    assert rows["late"].penalty == 2.0  # 50% of 4 points, notebook by notebook
    assert rows["extended"].penalty == 0.0 and rows["no_time"].penalty == 0.0


def test_the_section_names_the_rule_the_source_and_the_unknown_time():
    page = report_html(RESULTS, calendar=CALENDAR)
    section = page.split("id='late'", 1)[1]
    assert "25% of the score per started day late" in section
    assert "unknown (no lms time)" in section
    assert "flu" in section and "<td>2 of 4</td>" in section


def test_without_a_calendar_the_section_says_so():
    assert "No course calendar given." in report_html(RESULTS)
