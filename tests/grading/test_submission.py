"""Reading submissions: every way a notebook can be broken becomes a Problem, never a crash."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from conftest import GRADED, NOTEBOOK_OF, cell_by_grade_id, stub_answered

from autograder import notebooks
from autograder.grading.grader import manual_items
from autograder.grading.scoring import MANUAL
from autograder.grading.submission import (
    Answer,
    Problem,
    edited_locked_cells,
    find_answer,
    read_notebook,
)
from autograder.paths import RELEASE_DIR

NB1 = NOTEBOOK_OF["corr2d_multi_in"]


def release(name: str = NB1) -> nbformat.NotebookNode:
    return notebooks.read(RELEASE_DIR / name)


def saved(tmp_path: Path, nb: nbformat.NotebookNode, name: str = NB1) -> Path:
    notebooks.write(nb, tmp_path / name)
    return tmp_path / name


@pytest.mark.parametrize("name", GRADED)
def test_untouched_release_yields_the_stub_as_answer_and_no_problems(tmp_path, name):
    nb = read_notebook(saved(tmp_path, release(NOTEBOOK_OF[name]), NOTEBOOK_OF[name]))
    answer = find_answer(nb, name)
    assert isinstance(answer, Answer)
    assert "raise NotImplementedError()" in answer.source
    assert edited_locked_cells(nb, release(NOTEBOOK_OF[name])) == []


def test_answer_typed_by_a_student_is_returned_verbatim(tmp_path):
    nb = release()
    typed = stub_answered("corr2d_multi_in", "    return X.sum() * K.sum()")
    cell_by_grade_id(nb, "corr2d_multi_in").source = typed
    assert (
        find_answer(read_notebook(saved(tmp_path, nb)), "corr2d_multi_in").source
        == typed
    )


@pytest.mark.parametrize(
    ("content", "status"),
    [
        (b"", "not-a-notebook"),
        (b"def corr2d_multi_in(X, K): ...", "not-a-notebook"),
        (b"\xff\xfe\x00garbage", "not-a-notebook"),
        (b"[" * 200_000, "malformed-notebook"),
        (b"[1, 2, 3]", "wrong-format"),
        (json.dumps({"nbformat": 3, "worksheets": []}).encode(), "wrong-format"),
        (json.dumps({"nbformat": 4, "cells": "none"}).encode(), "wrong-format"),
    ],
    ids=[
        "empty",
        "python-source",
        "binary",
        "deeply-nested",
        "json-list",
        "nbformat-3",
        "invalid-schema",
    ],
)
def test_broken_files_are_problems_with_a_status(tmp_path, content, status):
    path = tmp_path / NB1
    path.write_bytes(content)
    problem = read_notebook(path)
    assert isinstance(problem, Problem) and problem.status == status
    assert NB1 in problem.message


def test_missing_file_is_a_problem(tmp_path):
    assert read_notebook(tmp_path / NB1).status == "missing-notebook"


def test_deleted_answer_cell_is_a_problem_naming_the_cell():
    nb = release()
    nb.cells = [
        c
        for c in nb.cells
        if c.metadata.get("nbgrader", {}).get("grade_id") != GRADED[0]
    ]
    problem = find_answer(nb, "corr2d_multi_in")
    assert problem == Problem(
        "missing-cell",
        "the answer cell 'corr2d_multi_in' was deleted; restore it from the course site",
    )


def test_duplicated_answer_cell_is_a_problem():
    nb = release()
    nb.cells.append(
        nbformat.from_dict(json.loads(json.dumps(cell_by_grade_id(nb, GRADED[0]))))
    )
    assert find_answer(nb, "corr2d_multi_in").status == "duplicated-cell"


def test_answer_cell_turned_into_markdown_is_a_problem():
    nb = release()
    cell = cell_by_grade_id(nb, "corr2d_multi_in")
    cell.cell_type = "markdown"
    del cell["outputs"], cell["execution_count"]
    assert find_answer(nb, "corr2d_multi_in").status == "changed-cell"


def test_edited_deleted_and_repointed_test_cells_are_reported():
    nb = release()
    cell_by_grade_id(nb, "test_corr2d_multi_in_example").source = "pass"
    cell_by_grade_id(nb, "test_corr2d_multi_in_hidden").metadata.nbgrader["points"] = (
        200
    )
    nb.cells = [
        c
        for c in nb.cells
        if c.metadata.get("nbgrader", {}).get("grade_id") != "setup_imports"
    ]
    messages = sorted(p.message for p in edited_locked_cells(nb, release()))
    assert messages == [
        "locked cell 'setup_imports' was deleted",
        "locked cell 'test_corr2d_multi_in_example' was edited",
        "locked cell 'test_corr2d_multi_in_hidden' was edited",
    ]


# Written answers (nbgrader "manually graded answer" cells) of the exercises chapter.
EXERCISES_NB = NOTEBOOK_OF["compose_kernels"]


def written_statuses(nb: nbformat.NotebookNode) -> dict[str, str]:
    return {item.cell: item.status for item in manual_items(release(EXERCISES_NB), nb)}


def test_a_written_answer_left_as_released_scores_zero_without_a_grader():
    statuses = written_statuses(release(EXERCISES_NB))
    assert statuses and set(statuses.values()) == {"no-answer"}


def test_a_written_answer_waits_for_the_instructor():
    nb = release(EXERCISES_NB)
    cell_by_grade_id(nb, "answer_grouped").source = "Cheaper by a factor b, but ..."
    statuses = written_statuses(nb)
    assert statuses.pop("answer_grouped") == MANUAL
    assert set(statuses.values()) == {"no-answer"}


def test_a_deleted_written_answer_is_reported():
    nb = release(EXERCISES_NB)
    nb.cells.remove(cell_by_grade_id(nb, "answer_backward"))
    assert written_statuses(nb)["answer_backward"] == "missing-cell"
