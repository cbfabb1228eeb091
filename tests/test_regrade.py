"""Regrades after a rubric change: nothing changed is byte for byte nothing; a change shows
exactly the changed items, can be kept from lowering a score, and reaches the gradebook and
the exports; every regrade is logged.

One course graded once by the grade command; each test regrades a copy of its output. The
rubric change is the one an instructor makes in ``autograder/grading/exercises.py``: the
"channels" item of ``corr2d_multi_in`` made worth 1 point, "untouched" 0.125 (the rubric's own
points, whatever they are, before).
"""

from __future__ import annotations

import csv
import dataclasses
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import build_course, readme_blocks, rubric_points, run_block
from corpus import CORPUS, solved, typed
from nbgrader.api import Gradebook

from autograder.__main__ import main as autograder_main
from autograder.grading.exercises import EXERCISES
from autograder.paths import ASSIGNMENT, ROOT
from autograder.regrade import read_log
from autograder.sandbox.runner import Limits, Sandbox

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]

STUDENTS = {"solutions": solved(), "flipped": typed(CORPUS["mistake_flipped_kernel"])}
FUNCTION = "corr2d_multi_in"
HIDDEN = f"test_{FUNCTION}_hidden"
NEW_POINTS = {"channels": 1.0, "untouched": 0.125}
OLD_POINTS = {tag: rubric_points(FUNCTION, tag) for tag in NEW_POINTS}
(REGRADE,) = readme_blocks("tests/test_regrade.py")
# A result names a rubric item by its description.
CHANNELS, UNTOUCHED = (
    next(i.description for i in EXERCISES[FUNCTION].rubric if i.tag == tag)
    for tag in NEW_POINTS
)


@pytest.fixture(scope="module")
def course(tmp_path_factory, warm_sandbox) -> Path:
    course = tmp_path_factory.mktemp("regrade")
    build_course(course, STUDENTS)
    (course / ".venv").symlink_to(ROOT / ".venv")
    code = autograder_main(
        ["grade", "--submitted", str(course / "submitted"), "--out",
         str(course / "grades"), "--course", str(course), "--wall-seconds", "5"],
        sandbox_for=warm_sandbox,
    )  # fmt: skip
    assert code == 0
    return course


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def rubric_changed(monkeypatch):
    ex = EXERCISES[FUNCTION]
    rubric = tuple(
        dataclasses.replace(i, points=NEW_POINTS[i.tag])
        if i.cell == HIDDEN and i.tag in NEW_POINTS
        else i
        for i in ex.rubric
    )
    monkeypatch.setitem(EXERCISES, FUNCTION, dataclasses.replace(ex, rubric=rubric))


def copy_course(course: Path, tmp_path: Path) -> Path:
    """The course's configuration, secret and gradebook, and a copy of its grades, so that each
    test regrades and logs on its own."""
    copy = tmp_path / "course"
    copy.mkdir()
    for name in ("nbgrader_config.py", ".autograder-secret", "gradebook.db"):
        if (course / name).exists():
            shutil.copy2(course / name, copy / name)
    shutil.copytree(course / "grades", copy / "grades")
    return copy


def regrade_cli(warm: Callable, course: Path, copy: Path, *options: str) -> int:
    """The command, in this process, on the test process's warm sandbox (``warm``)."""
    return autograder_main(
        ["regrade", "--submitted", str(course / "submitted"), "--out",
         str(copy / "grades"), "--course", str(copy), "--wall-seconds", "5", *options],
        sandbox_for=warm,
    )  # fmt: skip


def table(path: Path) -> dict[tuple[str, str, str], tuple[str, str]]:
    """The regrade table: (student, cell, item) -> (old score, new score)."""
    with path.open(newline="") as f:
        return {
            (r["student"], r["cell"], r["item"]): (r["old_score"], r["new_score"])
            for r in csv.DictReader(f)
        }


def only_table(copy: Path) -> Path:
    (path,) = (copy / "grades").glob("regrade-*.csv")
    return path


def test_regrading_with_nothing_changed_leaves_every_file_byte_identical(
    course, tmp_path
):
    copy = copy_course(course, tmp_path)
    (copy / ".venv").symlink_to(ROOT / ".venv")
    shutil.copytree(course / "submitted", copy / "submitted")
    before = snapshot(copy / "grades")
    output = run_block(REGRADE, copy)  # the README's command, as written
    assert "nothing changed" in output
    assert snapshot(copy / "grades") == before
    (entry,) = read_log(copy)
    assert entry["why"] == "reference fix for corr2d_multi_in (issue 26)"
    assert entry["who"] and entry["when"] and entry["changed_items"] == 0


def test_a_rubric_change_shows_exactly_the_changed_items_of_the_one_student(
    course, tmp_path, rubric_changed, warm_sandbox
):
    copy = copy_course(course, tmp_path)
    before = snapshot(copy / "grades")
    code = regrade_cli(
        warm_sandbox, course, copy,
        "--student", "solutions", "--item", FUNCTION, "--reason", "rubric",
    )  # fmt: skip
    assert code == 0
    assert table(only_table(copy)) == {
        ("solutions", HIDDEN, CHANNELS): (str(OLD_POINTS["channels"]), "1.0"),
        ("solutions", HIDDEN, UNTOUCHED): (str(OLD_POINTS["untouched"]), "0.125"),
    }
    after = snapshot(copy / "grades")
    assert after["results/flipped.json"] == before["results/flipped.json"]
    assert after["results/solutions.json"] != before["results/solutions.json"]
    with Gradebook(f"sqlite:///{copy / 'grades' / 'gradebook.db'}") as gb:
        grade = gb.find_grade(
            HIDDEN, "01-multiple-input-channels", ASSIGNMENT, "solutions"
        )
        # The changed rubric (the fixture's) in full: the solution passes every item.
        changed = sum(i.points for i in EXERCISES[FUNCTION].rubric if i.cell == HIDDEN)
        assert grade.auto_score == pytest.approx(changed)
    moved = sum(NEW_POINTS.values()) - sum(OLD_POINTS.values())
    assert exported_total(copy, before, "solutions") == pytest.approx(moved)
    (entry,) = read_log(copy)
    assert entry["changed_students"] == ["solutions"] and entry["changed_items"] == 2


def exported_total(copy: Path, before: dict[str, bytes], student: str) -> float:
    """How much the student's total in canvas.csv moved."""

    def total(text: str) -> float:
        rows = csv.DictReader(text.splitlines())
        return next(float(r[ASSIGNMENT]) for r in rows if r["SIS Login ID"] == student)

    new = (copy / "grades" / "canvas.csv").read_text()
    return total(new) - total(before["canvas.csv"].decode())


def test_never_lower_keeps_the_old_result_of_an_item_the_change_would_lower(
    course, tmp_path, rubric_changed, warm_sandbox
):
    copy = copy_course(course, tmp_path)
    code = regrade_cli(
        warm_sandbox, course, copy,
        "--student", "solutions", "--never-lower", "--reason", "rubric",
    )  # fmt: skip
    assert code == 0
    assert table(only_table(copy)) == {
        ("solutions", HIDDEN, CHANNELS): (str(OLD_POINTS["channels"]), "1.0")
    }


def test_regrading_everyone_lists_each_students_changed_items_only(
    course, tmp_path, rubric_changed, warm_sandbox
):
    copy = copy_course(course, tmp_path)
    assert regrade_cli(warm_sandbox, course, copy, "--reason", "rubric") == 0
    changed = table(only_table(copy))
    assert set(changed) == {
        (student, HIDDEN, item)
        for student in STUDENTS
        for item in (CHANNELS, UNTOUCHED)
    }
    # The student whose channels item failed keeps 0 points of a larger maximum.
    assert changed["flipped", HIDDEN, CHANNELS] == ("0.0", "0.0")


def test_a_regrade_without_a_reason_is_refused(course, tmp_path, capsys, warm_sandbox):
    copy = copy_course(course, tmp_path)
    assert regrade_cli(warm_sandbox, course, copy, "--reason", " ") == 2
    assert "say why" in capsys.readouterr().err
    assert read_log(copy) == []


def test_a_lent_sandbox_grades_the_command_s_students_and_stays_running(
    course, tmp_path, warm_sandbox
):
    """``main(sandbox_for=...)``: the command asks for a sandbox of the limits it settled on
    (its options over the course's), grades in it, and leaves it to its lender."""
    lent = []

    def sandbox_for(limits: Limits) -> Sandbox:
        lent.append(warm_sandbox(limits))
        return lent[-1]

    copy = copy_course(course, tmp_path)
    assert regrade_cli(sandbox_for, course, copy, "--reason", "same again") == 0
    (box,) = lent
    assert box.limits.wall_seconds == 5
    assert box._proc is not None and box._proc.poll() is None
    (entry,) = read_log(copy)
    assert entry["changed_items"] == 0
