"""The course calendar applied by both grading paths and the exports, on LMS downloads.

One course, graded once for every test here, by the README's calendar blocks as written: a
Canvas zip and a Moodle zip built as the LMSs name their files, taken in by ``python -m
autograder intake`` with a roster, a due date set with nbgrader's own command, one extension
from ``extensions.csv`` and one through nbgrader's API, then graded by the grade command and by
stock ``nbgrader autograde``, and exported by the Canvas export plugin. Every student submits the
reference answers, so each penalty is the rule's share of a known score.
"""

from __future__ import annotations

import csv
import zipfile
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from conftest import build_course, nbgrader, readme_blocks, run_block, write_submission
from corpus import solved
from nbgrader.api import Gradebook

from autograder.__main__ import main as autograder_main
from autograder.paths import ASSIGNMENT, RELEASE_DIR, ROOT

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]

DUE = datetime(2026, 12, 4, 17, 0)  # UTC
RULE = {
    "percent_per_day": 10.0,
    "cap_percent": 30.0,
    "zero_after": "2026-12-11 17:00 UTC",
}
PARIS = ZoneInfo("Europe/Paris")  # the Moodle server's zone: its stamps are local time


# student -> (LMS, LMS id, full name, submitted (UTC), share of the score the rule takes)
STUDENTS = {
    "punctual": ("canvas", "51001", "Ada Lovelace", DUE - timedelta(hours=1), 0.0),
    # LMS record: 1 d 1 h late (2 started days); the student's own timestamp.txt says early.
    "forger": (
        "canvas",
        "51002",
        "Mallory Forge",
        DUE + timedelta(days=1, hours=1),
        0.2,
    ),
    "capped": ("canvas", "51003", "Cap Stone", DUE + timedelta(days=6), 0.3),
    "past_zero": ("canvas", "51004", "Zed Last", DUE + timedelta(days=8), 1.0),
    # 2 days late, 3 days' extension in extensions.csv: on time.
    "extended": ("moodle", "9001", "Grace Hopper", DUE + timedelta(days=2), 0.0),
    # 3 d 20 h late, 3 days through nbgrader's API: 20 h late, one started day.
    "api_extended": (
        "moodle",
        "9002",
        "Alan Turing",
        DUE + timedelta(days=3, hours=20),
        0.1,
    ),
}


def canvas_name(name: str, lms_id: str, late: bool, file: str, n: int) -> str:
    sortable = "".join(reversed(name.lower().split()))
    return f"{sortable}_{'LATE_' if late else ''}{lms_id}_{7000000 + n}_{file}"


def moodle_name(name: str, lms_id: str, file: str) -> str:
    return f"{name}_{lms_id}_assignsubmission_file_{file}"


def lms_zip(course: Path, lms: str) -> Path:
    """The LMS's download: every release notebook of each of its students, named and stamped
    as the LMS does (Canvas in UTC, Moodle in the server's local time)."""
    scratch = course / "scratch"
    path = course / f"{lms}-submissions.zip"  # the README's names
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for n, (student, (which, lms_id, name, when, _)) in enumerate(STUDENTS.items()):
            if which != lms:
                continue
            folder = write_submission(scratch, student, solved())
            for file in sorted(p.name for p in folder.glob("*.ipynb")):
                if lms == "canvas":
                    entry = canvas_name(name, lms_id, when > DUE, file, n)
                    stamp = when
                else:
                    entry = moodle_name(name, lms_id, file)
                    stamp = when.replace(tzinfo=ZoneInfo("UTC")).astimezone(PARIS)
                info = zipfile.ZipInfo(entry, date_time=stamp.timetuple()[:6])
                zf.writestr(info, (folder / file).read_bytes(), zipfile.ZIP_DEFLATED)
    return path


INTAKE, DUE_DATE, BOTH_PATHS = readme_blocks("tests/integration/test_late_penalties.py")


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    """The README's calendar blocks, as written, on a course with both LMSs' downloads."""
    course = tmp_path_factory.mktemp("calendar")
    build_course(course, {})
    (course / ".venv").symlink_to(ROOT / ".venv")
    with (course / "nbgrader_config.py").open("a") as f:
        f.writelines(f"c.CourseCalendar.{k} = {v!r}\n" for k, v in RULE.items())
    (course / "roster.csv").write_text(
        "student,lms_id,name\n"
        + "".join(f"{s},{i},{n}\n" for s, (_, i, n, _, _) in STUDENTS.items())
    )
    lms_zip(course, "canvas")
    lms_zip(course, "moodle")
    run_block(INTAKE, course)
    # What a stock exchange would have copied in: a time the student wrote.
    forged = course / "submitted" / "forger" / ASSIGNMENT / "timestamp.txt"
    forged.write_text("2026-12-01 09:00:00 UTC\n")
    (course / "extensions.csv").write_text(
        "student,days,hours,reason\nextended,3,,medical note (dean's office)\n"
    )
    run_block(DUE_DATE, course)
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        gb.add_student("api_extended")
        with gb.db.no_autoflush:  # nbgrader's own add warns otherwise (SQLAlchemy 2)
            gb.add_submission(ASSIGNMENT, "api_extended")
        gb.grant_extension(ASSIGNMENT, "api_extended", days=3)
    run_block(BOTH_PATHS, course)
    nbgrader(course, "export")  # nbgrader's own grades.csv
    return course


def test_the_readme_blocks_are_the_calendars():
    assert "autograder intake" in INTAKE and "--duedate" in DUE_DATE
    assert "autograder grade" in BOTH_PATHS and "nbgrader autograde" in BOTH_PATHS


def recorded(gradebook: Path) -> dict:
    """What nbgrader's gradebook says per student and notebook: time, extension, score,
    penalty."""
    with Gradebook(f"sqlite:///{gradebook}") as gb:
        return {
            (s.student_id, nb.name): (
                s.timestamp,
                s.extension,
                nb.score,
                nb.late_submission_penalty or 0.0,
            )
            for s in gb.find_assignment(ASSIGNMENT).submissions
            for nb in s.notebooks
        }


def test_intake_collected_every_notebook_of_both_zips(course):
    rows = []
    for lms in ("canvas", "moodle"):
        with (
            course / "intake" / ASSIGNMENT / f"{lms}-submissions.report.csv"
        ).open() as f:
            rows += list(csv.DictReader(f))
    notebooks = len(list(RELEASE_DIR.glob("*.ipynb")))
    assert {r["status"] for r in rows} == {"collected"}
    assert len(rows) == notebooks * len(STUDENTS)
    for student in STUDENTS:
        assert len(
            list((course / "submitted" / student / ASSIGNMENT).glob("*.ipynb"))
        ) == (notebooks)


def test_stock_autograde_takes_the_rules_share_of_each_notebook(course):
    stock = recorded(course / "gradebook.db")
    for (student, _), (when, _, score, penalty) in stock.items():
        _, _, _, submitted, share = STUDENTS[student]
        assert when == submitted, student  # the LMS's time, never the student's file
        assert penalty == pytest.approx(score * share), student
    assert any(score for _, _, score, _ in stock.values())


def test_the_grade_command_records_exactly_what_stock_autograde_records(course):
    assert recorded(course / "grades" / "gradebook.db") == recorded(
        course / "gradebook.db"
    )


def totals(path: Path, id_column: str, total_column: str) -> dict[str, float]:
    with path.open(newline="") as f:
        return {
            row[id_column]: float(row[total_column])
            for row in csv.DictReader(f)
            if row[id_column]
        }


def raw_totals(course: Path) -> dict[str, float]:
    raw = dict.fromkeys(STUDENTS, 0.0)
    for (student, _), (_, _, score, _) in recorded(course / "gradebook.db").items():
        raw[student] += score
    return raw


def test_every_export_takes_the_same_penalties_off(course):
    raw = raw_totals(course)
    expected = {s: pytest.approx(raw[s] * (1 - STUDENTS[s][4])) for s in STUDENTS}
    assert totals(course / "grades.csv", "student_id", "score") == expected
    assert totals(course / "canvas.csv", "SIS Login ID", ASSIGNMENT) == expected
    assert (
        totals(course / "grades" / "canvas.csv", "SIS Login ID", ASSIGNMENT) == expected
    )
    assert totals(
        course / "grades" / "moodle.csv", "Username", f"{ASSIGNMENT} (Real)"
    ) == (expected)
    # The stock export plugin and the grade command's export write the same file.
    assert (course / "canvas.csv").read_bytes() == (
        course / "grades" / "canvas.csv"
    ).read_bytes()


def test_the_class_report_lists_the_late_and_extended_students_with_their_penalty(
    course,
):
    page = (course / "grades" / "report.html").read_text()
    section = page.split("id='late'", 1)[1]
    listed = {s for s in STUDENTS if f">{s}</a>" in section}
    assert listed == set(STUDENTS) - {"punctual"}
    assert "medical note (dean&#x27;s office)" in section
    assert "10% of the score per started day late, at most 30%" in section
    capped = section.split(">capped</a>", 1)[1].split("</tr>", 1)[0]
    assert "(the LMS marked it late)" in capped  # Canvas's _LATE_, kept by the intake
    for student, percent in (
        ("forger", "20%"),
        ("capped", "30%"),
        ("past_zero", "100%"),
    ):
        row = section.split(f">{student}</a>", 1)[1].split("</tr>", 1)[0]
        assert f"<td>{percent}</td>" in row, row


def test_a_moved_due_date_counts_at_the_next_export_without_regrading(course, tmp_path):
    moved = tmp_path / "course"
    moved.mkdir()
    for name in ("nbgrader_config.py", "extensions.csv", "gradebook.db"):
        (moved / name).write_bytes((course / name).read_bytes())
    (moved / "intake").symlink_to(course / "intake")
    nbgrader(
        moved,
        "db",
        "assignment",
        "add",
        ASSIGNMENT,
        "--duedate",
        f"{DUE + timedelta(days=30)} UTC",
    )
    assert autograder_main(
        ["export", "--gradebook", str(course / "grades" / "gradebook.db"),
         "--out", str(tmp_path), "--course", str(moved)]
    ) == 0  # fmt: skip
    after = totals(tmp_path / "canvas.csv", "SIS Login ID", ASSIGNMENT)
    # Nobody is late any more: a submission on time is never penalised, whatever the rule's
    # zero-after date says.
    assert after == raw_totals(course)
    # nbgrader's own stored penalties (formgrader, nbgrader export) follow on request.
    assert any(penalty for *_, penalty in recorded(moved / "gradebook.db").values())
    assert autograder_main(["penalties", "--course", str(moved),
                            "--gradebook", str(moved / "gradebook.db")]) == 0  # fmt: skip
    assert not any(penalty for *_, penalty in recorded(moved / "gradebook.db").values())


def test_each_students_feedback_says_when_they_submitted_and_what_the_rule_took(course):
    def page(student: str) -> str:
        return (course / "grades" / "feedback" / f"{student}.html").read_text()

    assert "late" not in page("punctual").split("<h2>", 1)[0]
    capped = page("capped")
    assert "Submitted 2026-12-10 17:00 UTC; 6 d 0 h 0 min late" in capped
    assert "takes 30% of the score" in capped
    assert "extension of 3 d 0 h 0 min." in page("extended")
