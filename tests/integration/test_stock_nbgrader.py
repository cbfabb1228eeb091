"""Stock nbgrader on this course: generate_assignment, autograde, export, as instructors do."""

from __future__ import annotations

import copy
import csv
from pathlib import Path

import pytest
from conftest import (
    GRADED,
    NOTEBOOK_OF,
    build_course,
    cell_by_grade_id,
    full_marks,
    gradebook_view,
    nbgrader,
    rubric_points,
)
from corpus import BROKEN_FILES, CORPUS, LOST_IDENTITY, MULTI_IN, solved, typed
from nbgrader.api import Gradebook

from autograder import notebooks
from autograder.batch import grade_batch
from autograder.course_build.release import differences
from autograder.outputs import report
from autograder.paths import ASSIGNMENT, RELEASE_DIR
from autograder.sandbox.runner import Limits

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]

SOLVED = solved()


def answered(entry: str) -> dict[str, str]:
    """Only the answer cells that the corpus entry typed or wrote whole (tests/corpus.py)."""
    mine = CORPUS[entry].answers.keys() | CORPUS[entry].whole_cells.keys()
    return {k: v for k, v in typed(CORPUS[entry]).items() if k in mine}


MARKS = full_marks()
# Points of the visible and the hidden test cell of each function, from the rubric.
FULL = {
    name: (MARKS[f"test_{name}_example"][0], MARKS[f"test_{name}_hidden"][0])
    for name in GRADED
}

# student -> (answer cells, expected (visible, hidden) score per graded function)
STUDENTS = {
    "solutions": (SOLVED, FULL),
    "untouched": ({}, dict.fromkeys(GRADED, (0, 0))),
    "flipped_kernel": (
        {**SOLVED, **answered("mistake_flipped_kernel")},
        {**FULL, "corr2d_multi_in": (0, 0)},
    ),
    "book_d2l_and_squeeze": (
        {**SOLVED, **answered("honest_book_d2l"), **answered("mistake_squeeze_1x1")},
        # The trusted rubric: squeeze() is right when neither c_i nor c_o is 1, so the
        # hidden cell keeps its "random inputs" and "inputs unchanged" items.
        {
            **FULL,
            "corr2d_multi_in_out_1x1": (
                rubric_points("corr2d_multi_in_out_1x1", "example"),
                rubric_points("corr2d_multi_in_out_1x1", "random", "untouched"),
            ),
        },
    ),
    # Notebook 01 replaced by a file that is not JSON (tests/corpus.py BROKEN_FILES): only its
    # function loses its points; stock nbgrader alone would drop the whole submission.
    "not_a_notebook": (SOLVED, {**FULL, "corr2d_multi_in": (0, 0)}),
    # The answer cell of 01 copied in Jupyter (metadata and all): that answer is
    # duplicated-cell, as in the grade command; nbgrader alone would fail the whole submission.
    "duplicated_cell": (SOLVED, {**FULL, "corr2d_multi_in": (0, 0)}),
    # Changed the visible test of 01 to `pass`: the test runs as released anyway (full marks),
    # and the feedback says once that the cell was edited.
    "edited_locked_cell": (SOLVED, FULL),
}
# The policy evaded through the harness and through a d2l model's layer (tests/corpus.py): the
# sandbox under stock nbgrader refuses the convolution at run time, as the grade command does.
STUDENTS |= {
    name: ({**SOLVED, **answered(name)}, {**FULL, MULTI_IN: (0, 0)})
    for name in ("policy_evasion_through_the_harness", "policy_evasion_model_layer")
}
# Every honest style of the corpus: full marks, and no note about cells they never touched.
HONEST = sorted(name for name in CORPUS if name.startswith("honest_"))
STUDENTS |= {name: ({**SOLVED, **answered(name)}, FULL) for name in HONEST}
EDITED_CELL = f"test_{MULTI_IN}_example"
# Notebooks whose cells lost their nbgrader ids (issue 27), every notebook of the student
# changed as tests/corpus.py's LOST_IDENTITY says: graded from the cells that define the
# functions (recovered-cell), with the release's test cells, exactly as the grade command does.
LOST = {
    "lost_stripped_solutions": ("stripped", SOLVED, FULL),
    "lost_pasted_real_styles": (
        "pasted",
        {**SOLVED, **answered("honest_real_cs231n_naive")},
        FULL,
    ),
    "lost_merged_flipped_kernel": (
        "merged",
        {**SOLVED, **answered("mistake_flipped_kernel")},
        {**FULL, "corr2d_multi_in": (0, 0)},
    ),
}
STUDENTS |= {name: (answers, cells) for name, (_, answers, cells) in LOST.items()}


@pytest.fixture(scope="module")
def graded_course(tmp_path_factory, warm_sandbox) -> Path:
    """One course, four students, graded once by stock nbgrader for all the tests below."""
    course = tmp_path_factory.mktemp("course")
    build_course(course, {name: answers for name, (answers, _) in STUDENTS.items()})
    broken = (
        course / "submitted" / "not_a_notebook" / ASSIGNMENT / NOTEBOOK_OF[MULTI_IN]
    )
    broken.write_bytes(BROKEN_FILES["broken_not_json"][0])
    copied = (
        course / "submitted" / "duplicated_cell" / ASSIGNMENT / NOTEBOOK_OF[MULTI_IN]
    )
    nb = notebooks.read(copied)
    answer = cell_by_grade_id(nb, MULTI_IN)
    twin = copy.deepcopy(answer)
    twin.id = "copied"
    nb.cells.insert(nb.cells.index(answer) + 1, twin)
    notebooks.write(nb, copied)
    edited = (
        course / "submitted" / "edited_locked_cell" / ASSIGNMENT / NOTEBOOK_OF[MULTI_IN]
    )
    nb = notebooks.read(edited)
    cell_by_grade_id(nb, EDITED_CELL).source = "pass"
    notebooks.write(nb, edited)
    for student, (how, _, _) in LOST.items():
        for path in sorted(
            (course / "submitted" / student / ASSIGNMENT).glob("*.ipynb")
        ):
            nb = LOST_IDENTITY[how](notebooks.read(path), set(GRADED))
            notebooks.write(nb, path)
    nbgrader(course, "generate_assignment", ASSIGNMENT, "--force")
    nbgrader(course, "autograde", ASSIGNMENT)
    nbgrader(course, "export")
    nbgrader(course, "generate_feedback", ASSIGNMENT)
    # The limits of the course's nbgrader_config.py, as autograde had: its warm sandbox.
    grade_batch(
        course / "submitted", course / "trusted", sandbox=warm_sandbox(Limits())
    )
    return course


@pytest.mark.parametrize("student", sorted(STUDENTS))
def test_autograde_scores_each_test_cell_exactly(graded_course, student):
    expected = STUDENTS[student][1]
    with Gradebook(f"sqlite:///{graded_course / 'gradebook.db'}") as gb:
        submission = gb.find_submission(ASSIGNMENT, student)
        scores = {
            grade.name: grade.score
            for nb in submission.notebooks
            for grade in nb.grades
        }
    for name, (visible, hidden) in expected.items():
        assert (scores[f"test_{name}_example"], scores[f"test_{name}_hidden"]) == (
            visible,
            hidden,
        ), name


def test_export_writes_one_total_per_student(graded_course):
    with open(graded_course / "grades.csv", newline="") as f:
        totals = {row["student_id"]: float(row["score"]) for row in csv.DictReader(f)}
    assert totals == {
        student: float(sum(map(sum, cells.values())))
        for student, (_, cells) in STUDENTS.items()
    }
    assert totals["solutions"] == sum(
        map(sum, FULL.values())
    )  # written answers: not yet
    assert totals["untouched"] == 0.0


def test_stock_generate_assignment_writes_exactly_the_committed_release(graded_course):
    assert differences(graded_course / "chapters" / ASSIGNMENT, RELEASE_DIR) == []


def test_stock_autograde_and_the_grade_command_agree_cell_by_cell(graded_course):
    with Gradebook(f"sqlite:///{graded_course / 'gradebook.db'}") as gb:
        stock = {
            (student, grade.name): (grade.score, grade.needs_manual_grade)
            for student in STUDENTS
            for nb in gb.find_submission(ASSIGNMENT, student).notebooks
            for grade in nb.grades
        }
    ours = {
        (result["student"], item): view
        for result in report.load_results(graded_course / "trusted")
        for item, view in gradebook_view(report.rows(result)).items()
    }
    assert stock == ours


def test_feedback_shows_the_trusted_status_and_no_hidden_test(graded_course):
    pages = sorted((graded_course / "feedback").glob(f"*/{ASSIGNMENT}/*.html"))
    assert len(pages) == len(list(RELEASE_DIR.glob("*.ipynb"))) * len(STUDENTS)
    for page in pages:
        text = page.read_text()
        assert (
            "BEGIN HIDDEN TESTS" not in text
            and "from autograder import check" not in text
        )
        # The setup cells are the release's, the same for everyone: the kit's zip is not shown.
        assert "check kit: run it" not in text and "zipped into this cell" not in text
        assert "installs what is miss" not in text
    flipped = (graded_course / "feedback" / "flipped_kernel" / ASSIGNMENT).glob(
        "01-*.html"
    )
    assert "kernel is flipped" in next(flipped).read_text()


def edit_notes(course: Path, student: str) -> list[str]:
    """The "locked cell ... edited" notes on a student's stock feedback pages."""
    return [
        line
        for page in sorted((course / "feedback" / student / ASSIGNMENT).glob("*.html"))
        for line in page.read_text().splitlines()
        if "note: locked cell" in line
    ]


@pytest.mark.parametrize("student", ["solutions", *HONEST])
def test_feedback_notes_no_edited_cell_that_the_student_left_alone(
    graded_course, student
):
    assert edit_notes(graded_course, student) == []


def test_feedback_notes_a_really_edited_locked_cell_once(graded_course):
    notes = edit_notes(graded_course, "edited_locked_cell")
    assert len(notes) == 1 and f"{EDITED_CELL!r} was edited" in notes[0], notes


def test_a_file_that_is_not_a_notebook_costs_only_its_own_points(graded_course):
    page = graded_course / "feedback" / "not_a_notebook" / ASSIGNMENT
    text = (page / NOTEBOOK_OF[MULTI_IN].replace(".ipynb", ".html")).read_text()
    assert "not-a-notebook" in text and "is not valid notebook JSON" in text


@pytest.mark.parametrize("student", sorted(LOST))
def test_feedback_of_a_recovered_answer_says_so_with_the_releases_tests(
    graded_course, student
):
    pages = graded_course / "feedback" / student / ASSIGNMENT
    first = (pages / "01-multiple-input-channels.html").read_text()
    assert "lost its nbgrader id" in first
    assert "Hidden tests run here when your notebook is graded." in first
    assert "recovered-cell" in (pages / "02-multiple-output-channels.html").read_text()


def test_written_answers_whose_cells_lost_their_ids_reach_formgrader_with_a_note(
    graded_course,
):
    """Stripped of its metadata, each written answer is found after its question: in the
    autograded notebook it is the answer cell (the student's text, the release's id), the
    gradebook waits for a grader, and the comment says where the answer was found."""
    student = "lost_stripped_solutions"
    written = {g: s for g, s in SOLVED.items() if g.startswith("answer_")}
    name = "05-exercises.ipynb"
    nb = notebooks.read(graded_course / "autograded" / student / ASSIGNMENT / name)
    cells = {
        c.metadata["nbgrader"]["grade_id"]: c
        for c in nb.cells
        if c.metadata.get("nbgrader", {}).get("grade_id") in written
    }
    assert {g: c.source for g, c in cells.items()} == written
    assert sum("YOUR ANSWER HERE" in c.source for c in nb.cells) == 0
    with Gradebook(f"sqlite:///{graded_course / 'gradebook.db'}") as gb:
        submitted = gb.find_submission_notebook(name[:-6], ASSIGNMENT, student)
        grades = {g.name: g for g in submitted.grades if g.name in written}
        comments = {c.name: c for c in submitted.comments if c.name in written}
        assert all(g.needs_manual_grade for g in grades.values())
        assert len(grades) == len(written) == 7
        assert all(
            "lost its nbgrader id" in comments[g].auto_comment
            and "check that it is the whole answer" in comments[g].auto_comment
            for g in written
        )
