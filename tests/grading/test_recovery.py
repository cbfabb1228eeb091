"""Answers whose cell lost its identity (issue 27): found by the code that defines them.

The unit tests read real release notebooks changed as editors and students change them; the
last tests grade corpus entries in the sandbox, each beside its intact twin: a notebook
stripped of its nbgrader metadata, merged, reordered or pasted into a new notebook scores
exactly what the twin scores, ``recovered-cell`` where the twin's item passed.
"""

from __future__ import annotations

import ast
import copy

import nbformat
import pytest
from conftest import NOTEBOOK_OF, cell_by_grade_id, full_marks
from corpus import (
    CORPUS,
    LOST_IDENTITY,
    MATMUL,
    MULTI_IN,
    MULTS,
    solved,
    stripped,
    write_entry,
    write_lost_identity,
)

from autograder import notebooks
from autograder.batch import grade_batch
from autograder.grading.grader import GRADED_NAMES, manual_items
from autograder.grading.recovery import (
    NEEDS_REVIEW,
    Recovered,
    WrittenAnswer,
    recover_answer,
    recover_written_answer,
    recovered_sources,
)
from autograder.grading.scoring import MANUAL, MANUAL_MESSAGE
from autograder.grading.submission import Problem, release_notebook
from autograder.outputs import report
from autograder.paths import RELEASE_DIR
from autograder.sandbox.runner import Limits

SOLVED = solved()
FLIPPED = (
    f"def {MULTI_IN}(X, K):\n"
    "    return sum(d2l.corr2d(x, k.flip(0, 1)) for x, k in zip(X, K))\n"
)


def solved_notebook(function: str) -> nbformat.NotebookNode:
    """The release notebook of ``function`` with the instructor's answers typed in."""
    nb = notebooks.read(RELEASE_DIR / NOTEBOOK_OF[function])
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in SOLVED and cell.cell_type == "code":
            cell.source = SOLVED[grade_id]
    return nb


def recover(nb, function: str = MULTI_IN) -> Recovered | Problem:
    release = release_notebook(NOTEBOOK_OF[function])
    return recover_answer(nb, release, function, GRADED_NAMES)


def test_a_stripped_answer_is_recovered_from_the_cell_that_defines_it():
    found = recover(stripped(solved_notebook(MULTI_IN)))
    assert isinstance(found, Recovered)
    assert found.answer.source == SOLVED[MULTI_IN]
    assert found.cells == [
        SOLVED[MULTI_IN]
    ]  # no release cell, no stub of another notebook
    assert "lost its nbgrader id" in found.note and "code cell 8" in found.note


def test_release_statements_merged_into_the_answer_are_left_out_line_for_line():
    nb = LOST_IDENTITY["merged"](solved_notebook(MULTI_IN), set(GRADED_NAMES))
    merged = next(c.source for c in nb.cells if f"def {MULTI_IN}" in c.source)
    assert "visible_test(" in merged
    found = recover(nb)
    assert isinstance(found, Recovered)
    assert "visible_test(" not in found.answer.source
    assert found.answer.source.count("\n") == merged.count("\n")  # line numbers kept
    assert found.answer.source.startswith(SOLVED[MULTI_IN])


def test_a_helper_copied_from_the_book_into_the_answer_cell_stays_with_it():
    """Release definitions and imports in a cell of the student's own run with it (as in an
    intact answer cell); a cell of release statements only is the release's."""
    nb = stripped(solved_notebook(MULTI_IN))
    prose = next(c.source for c in nb.cells if c.source.startswith("def book_corr2d"))
    book = ast.get_source_segment(prose, ast.parse(prose).body[0])
    answer = next(c for c in nb.cells if c.source == SOLVED[MULTI_IN])
    answer.source = (
        f"{book}\n\n\ndef {MULTI_IN}(X, K):\n    return book_corr2d_multi_in(X, K)\n"
    )
    found = recover(nb)
    assert isinstance(found, Recovered)
    assert found.answer.source == answer.source
    assert found.cells == [answer.source]  # the book's own cell is not the student's


def test_each_function_of_a_stripped_exercises_notebook_gets_its_own_cell():
    nb = stripped(solved_notebook(MATMUL))
    for function in (MATMUL, MULTS):
        found = recover(nb, function)
        assert isinstance(found, Recovered), function
        assert found.answer.source == SOLVED[function]
        # The other answers define graded functions: they are not run with this one.
        assert found.cells == [SOLVED[function]]


def test_two_definitions_need_review():
    nb = stripped(solved_notebook(MULTI_IN))
    nb.cells.append(nbformat.v4.new_code_cell(FLIPPED))
    found = recover(nb)
    assert isinstance(found, Problem) and found.status == NEEDS_REVIEW
    assert "2 cells or statements define" in found.message


def test_a_definition_beside_another_graded_function_needs_review():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(SOLVED[MATMUL] + "\n\n" + SOLVED[MULTS])]
    found = recover(nb, MATMUL)
    assert isinstance(found, Problem) and found.status == NEEDS_REVIEW
    assert "also defines conv2d_multiplications" in found.message


def test_the_released_stub_beside_a_written_definition_does_not_count():
    """A student who pasted an answer below the untouched stub: the answer is graded."""
    nb = stripped(notebooks.read(RELEASE_DIR / NOTEBOOK_OF[MULTI_IN]))
    nb.cells.append(nbformat.v4.new_code_cell(SOLVED[MULTI_IN]))
    found = recover(nb)
    assert isinstance(found, Recovered) and found.answer.source == SOLVED[MULTI_IN]


def test_a_test_cell_that_holds_the_answer_is_never_the_students():
    nb = solved_notebook(MULTI_IN)
    answer = cell_by_grade_id(nb, MULTI_IN)
    cell_by_grade_id(nb, f"test_{MULTI_IN}_example").source = answer.source
    nb.cells.remove(answer)
    found = recover(nb)
    assert isinstance(found, Problem) and found.status == "missing-cell"


def test_a_cell_that_does_not_parse_is_recovered_as_written_for_its_syntax_error():
    broken = SOLVED[MULTI_IN].replace("return", "return (", 1)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(broken)]
    found = recover(nb)
    assert isinstance(found, Recovered) and found.answer.source == broken


def test_the_policy_reads_every_cell_the_student_wrote_but_the_releases_own():
    nb = stripped(solved_notebook(MULTI_IN))
    scratch = "import torch.nn.functional as G\nG.conv2d"
    nb.cells.append(nbformat.v4.new_code_cell(scratch))
    sources = recovered_sources(
        nb, release_notebook(NOTEBOOK_OF[MULTI_IN]), GRADED_NAMES
    )
    assert sources == [SOLVED[MULTI_IN], scratch]


def test_hostile_cells_never_raise():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("(" * 100_000),
        nbformat.v4.new_code_cell("x = " + " + ".join(["1"] * 50_000)),
        nbformat.from_dict({"cell_type": "code", "source": 5, "metadata": {}}),
        nbformat.v4.new_code_cell(f"def {MULTI_IN}(X, K):\n    return X"),
    ]
    found = recover(nb)
    assert isinstance(found, Recovered)
    assert found.answer.source == f"def {MULTI_IN}(X, K):\n    return X"


# Written answers whose cell lost its id: found by the question they follow, for the grader.
EXERCISES_NB = NOTEBOOK_OF[MULTS]
WRITTEN = "answer_grouped"


def answered_notebook() -> nbformat.NotebookNode:
    """The exercises' release with every written answer written (as tests/corpus.py types
    them), one of them in the student's own words."""
    nb = notebooks.read(RELEASE_DIR / EXERCISES_NB)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.cell_type == "markdown" and grade_id in SOLVED:
            cell.source = SOLVED[grade_id]
    cell_by_grade_id(
        nb, WRITTEN
    ).source = "Cheaper by a factor $b$; shuffle the groups."
    return nb


def recover_written(nb, grade_id: str = WRITTEN):
    return recover_written_answer(nb, release_notebook(EXERCISES_NB), grade_id)


def written_items(nb) -> dict[str, tuple[str, str]]:
    return {
        item.cell: (item.status, item.message)
        for item in manual_items(release_notebook(EXERCISES_NB), nb)
    }


def test_a_stripped_written_answer_is_found_after_its_question_for_the_grader():
    nb = stripped(answered_notebook())
    found = recover_written(nb)
    assert isinstance(found, WrittenAnswer)
    assert found.text == "Cheaper by a factor $b$; shuffle the groups."
    assert [nb.cells[i].source for i in found.cells] == [found.text]
    assert f"cell {found.cells[0] + 1} of the notebook" in found.note
    items = written_items(nb)
    assert set(items) == {g for g in SOLVED if g.startswith("answer_")}
    status, message = items[WRITTEN]
    assert status == MANUAL and message == found.note
    assert (
        "lost its nbgrader id" in message
        and "check that it is the whole answer" in message
    )
    assert all(status == MANUAL for status, _ in items.values())


def test_an_intact_written_answer_keeps_the_plain_message():
    assert written_items(answered_notebook())[WRITTEN] == (MANUAL, MANUAL_MESSAGE)


def test_a_written_answer_over_several_cells_is_taken_whole_up_to_the_next_release_cell():
    nb = stripped(answered_notebook())
    found = recover_written(nb)
    at = found.cells[0]
    nb.cells[at + 1 : at + 1] = [
        nbformat.v4.new_markdown_cell(""),
        nbformat.v4.new_markdown_cell("Second thought: channel shuffle."),
    ]
    again = recover_written(nb)
    assert again.cells == (at, at + 2)
    assert again.text == f"{found.text}\n\nSecond thought: channel shuffle."
    assert f"cells {at + 1} to {at + 3}" in again.note


def test_the_answer_ends_at_a_code_cell_the_student_added():
    nb = stripped(answered_notebook())
    at = recover_written(nb).cells[0]
    nb.cells.insert(at + 1, nbformat.v4.new_code_cell("print('scratch')"))
    nb.cells.insert(at + 2, nbformat.v4.new_markdown_cell("Not the answer."))
    assert recover_written(nb).text == "Cheaper by a factor $b$; shuffle the groups."


def test_a_stripped_written_answer_left_as_released_is_no_answer():
    nb = stripped(notebooks.read(RELEASE_DIR / EXERCISES_NB))
    found = recover_written(nb)
    assert isinstance(found, Problem) and found.status == "no-answer"
    assert set(s for s, _ in written_items(nb).values()) == {"no-answer"}


def test_a_question_with_nothing_after_it_has_nothing_to_grade():
    nb = stripped(answered_notebook())
    del nb.cells[recover_written(nb).cells[0]]
    found = recover_written(nb)
    assert isinstance(found, Problem) and found.status == "missing-cell"


def test_a_pasted_notebook_without_the_question_has_nothing_to_grade():
    nb = LOST_IDENTITY["pasted"](answered_notebook(), set(GRADED_NAMES))
    assert {s for s, _ in written_items(nb).values()} == {"missing-cell"}


def test_a_question_found_twice_needs_review():
    nb = stripped(answered_notebook())
    at = recover_written(nb).cells[0]
    nb.cells.append(copy.deepcopy(nb.cells[at - 1]))
    nb.cells.append(nbformat.v4.new_markdown_cell("Another answer."))
    found = recover_written(nb)
    assert isinstance(found, Problem) and found.status == NEEDS_REVIEW
    assert "its question appears 2 times" in found.message


def test_an_edited_reflowed_question_is_still_found():
    """Only the spacing: an editor that rewraps lines or changes line endings."""
    nb = stripped(answered_notebook())
    question = nb.cells[recover_written(nb).cells[0] - 1]
    question.source = question.source.replace("\n", " \r\n  ")
    assert isinstance(recover_written(nb), WrittenAnswer)


def test_hostile_text_cells_never_raise():
    nb = stripped(answered_notebook())
    at = recover_written(nb).cells[0]
    nb.cells[at + 1 : at + 1] = [
        nbformat.from_dict({"cell_type": "markdown", "source": 5, "metadata": {}}),
        nbformat.from_dict({"cell_type": "raw", "source": ["a"], "metadata": 3}),
    ]
    assert isinstance(recover_written(nb), WrittenAnswer)
    nb.cells.insert(0, nbformat.from_dict({"cell_type": 7, "source": None}))
    assert isinstance(recover_written(nb), WrittenAnswer)


# The sandboxed grader on lost-identity twins of corpus entries: honest, mistaken, the policy
# (forbidden through a recovered cell, and through an added cell), a syntax error.
TWINS = {
    "stripped": [
        "honest_loops",
        "honest_real_im2col_scripts",
        "mistake_flipped_kernel",
        "mistake_hard_coded",
        "mistake_modifies_input",
        "mistake_syntax_error",
        "policy_builtin_conv",
        "policy_evasion_dead_store",
    ],
    "merged": ["honest_real_cs231n_naive", "mistake_count_as_float"],
    "reordered": ["honest_einsum_unfold", "policy_library_im2col"],
    "pasted": ["honest_real_im2col_scripts", "mistake_flipped_kernel"],
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory, warm_sandbox) -> dict[str, dict]:
    course = tmp_path_factory.mktemp("lost")
    for twin in sorted({t for twins in TWINS.values() for t in twins}):
        write_entry(course, twin)
    for how, twins in TWINS.items():
        for twin in twins:
            write_lost_identity(course, f"{how}-{twin}", twin, how)
    results = grade_batch(
        course / "submitted",
        course / "out",
        sandbox=warm_sandbox(Limits(wall_seconds=3.0, cpu_seconds=3)),
    )
    return {r["student"]: r for r in results}


def graded_functions(result: dict) -> dict[str, tuple[float, str]]:
    """(score, status) of each test cell of a graded function (written answers apart)."""
    return {
        row["item"]: (row["score"], row["status"])
        for row in report.rows(result)
        if row["item"].startswith("test_")
    }


@pytest.mark.slow
@pytest.mark.sandbox
@pytest.mark.parametrize(
    ("how", "twin"), [(how, twin) for how, twins in TWINS.items() for twin in twins]
)
def test_a_notebook_that_lost_its_ids_scores_exactly_what_its_twin_scores(
    graded, how, twin
):
    intact = graded_functions(graded[twin])
    assert intact == {
        cell: marks
        for cell, marks in (full_marks() | CORPUS[twin].expected).items()
        if cell.startswith("test_")
    }
    expected = {
        cell: (score, "recovered-cell" if status == "passed" else status)
        for cell, (score, status) in intact.items()
    }
    assert graded_functions(graded[f"{how}-{twin}"]) == expected


@pytest.mark.slow
@pytest.mark.sandbox
def test_the_instructor_is_told_where_each_answer_was_found(graded):
    notebooks_of = graded["stripped-honest_loops"]["notebooks"]
    notes = [n for nb in notebooks_of for n in nb["notes"]]
    assert sum("lost its nbgrader id" in n for n in notes) == len(GRADED_NAMES)
    with_functions = {NOTEBOOK_OF[name] for name in GRADED_NAMES}
    for nb in notebooks_of:  # one line for all the locked cells, not one per cell
        released = sum("taken from the release" in n for n in nb["notes"])
        assert released == (nb["notebook"] in with_functions), nb["notebook"]
