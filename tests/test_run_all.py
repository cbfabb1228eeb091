"""Run All, as students run the notebooks: at every stage of the work it goes as far as it should.

Each release notebook runs top to bottom in a Jupyter kernel, driven by nbclient as Jupyter
drives it, stopping at the first cell that raises (``force_raise_errors``: whatever the cell's
tags say, as a front end that ignores ``raises-exception`` does). Half done, a notebook stops
at the visible test of the function that is written and wrong. Untouched, every notebook
reaches its last cell, each visible test and each cell that shows a function at work saying in
one line that the function is not written yet: the site's build runs exactly that, each
release notebook in a fresh kernel, and tests/test_site.py checks it there (one run of each
notebook for both). Under nbgrader (``NBGRADER_EXECUTION``, set by ``autograde``
and ``validate``) the visible test of a function not written yet fails, so that stock
nbgrader's own execution of the notebook scores it 0, as the course's grader does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from conftest import (
    NOT_WRITTEN,
    build_course,
    cell_by_grade_id,
    full_marks,
    nbgrader,
    solution_source,
    stub_answered,
    visible_not_written,
)
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbgrader.api import Gradebook

from autograder import notebooks
from autograder.course_build.release import nbgrader_env
from autograder.paths import ASSIGNMENT, RELEASE_DIR

pytestmark = pytest.mark.slow

EXERCISES_NB = "05-exercises.ipynb"


def run_all(
    nb: nbformat.NotebookNode, folder: Path, env: dict[str, str] | None = None
) -> int | None:
    """Run All in the course's kernel, in ``folder``, stopping at the first error; the index
    of the cell that raised (None: it reached the last cell). ``nb`` keeps the outputs."""
    folder.mkdir(parents=True, exist_ok=True)
    environment = {k: v for k, v in os.environ.items() if k != "NBGRADER_EXECUTION"}
    client = NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        force_raise_errors=True,
        record_timing=False,
        resources={"metadata": {"path": str(folder)}},
    )
    try:
        client.execute(env={**environment, **(env or {})})
    except CellExecutionError:
        failed = [i for i, c in enumerate(nb.cells) if errors(c)]
        assert len(failed) == 1, failed
        return failed[0]
    return None


def errors(cell: nbformat.NotebookNode) -> list[str]:
    return [
        f"{o.ename}: {o.evalue}"
        for o in cell.get("outputs", [])
        if o.output_type == "error"
    ]


def printed(cell: nbformat.NotebookNode) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []))


def shown(cell: nbformat.NotebookNode) -> str:
    """What a cell printed and displayed, as text."""
    return printed(cell) + "".join(
        o.get("data", {}).get("text/plain", "") for o in cell.get("outputs", [])
    )


def code_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [c for c in nb.cells if c.cell_type == "code"]


def with_answers(name: str, answers: dict[str, str]) -> nbformat.NotebookNode:
    nb = notebooks.read(RELEASE_DIR / name)
    for grade_id, source in answers.items():
        cell_by_grade_id(nb, grade_id).source = source
    return nb


def test_run_all_stops_at_the_visible_test_of_a_function_written_wrong(tmp_path):
    """Exercise 1 written with the kernel flipped: its cell that shows it at work shows the
    wrong numbers, and Run All stops at its visible test, with the diagnosis; the helper that
    Exercise 2 gives was defined before."""
    wrong = stub_answered(
        "corr2d_multi_in_out_matmul",
        """
    c_o, c_i, k_h, k_w = K.shape
    h_out, w_out = X.shape[1] - k_h + 1, X.shape[2] - k_w + 1
    windows = X.unfold(1, k_h, 1).unfold(2, k_w, 1)  # (c_i, h_out, w_out, k_h, k_w)
    P = windows.permute(0, 3, 4, 1, 2).reshape(c_i * k_h * k_w, h_out * w_out)
    W = K.flip(-1, -2).reshape(c_o, -1)  # the kernel flipped: a convolution
    return (W @ P).reshape(c_o, h_out, w_out)""",
    )
    nb = with_answers(EXERCISES_NB, {"corr2d_multi_in_out_matmul": wrong})
    stopped = run_all(nb, tmp_path)
    visible = cell_by_grade_id(nb, "test_corr2d_multi_in_out_matmul_example")
    assert stopped == nb.cells.index(visible)
    assert "It looks like the kernel is flipped" in errors(visible)[0]
    given = cell_by_grade_id(nb, "given_conv2d_output_size")
    assert nb.cells.index(given) < stopped and given.execution_count
    at_work = next(c for c in nb.cells if 'if written("corr2d_multi_in_out' in c.source)
    assert shown(at_work).startswith("tensor([[[") and NOT_WRITTEN not in shown(at_work)
    assert not any(
        c.execution_count for c in code_cells(nb) if nb.cells.index(c) > stopped
    )


def test_a_student_who_starts_with_exercise_2_runs_all_to_the_end(tmp_path):
    """Exercise 2's conv2d_multiplications written (it calls the given conv2d_output_size),
    Exercise 1 untouched: no NameError, its visible test passes, and the cell that compares
    layers with it prints the ratios."""
    nb = with_answers(
        EXERCISES_NB,
        {"conv2d_multiplications": solution_source("conv2d_multiplications")},
    )
    assert "conv2d_output_size(" in solution_source("conv2d_multiplications")
    assert run_all(nb, tmp_path) is None
    visible = cell_by_grade_id(nb, "test_conv2d_multiplications_example")
    assert "Visible tests pass." in printed(visible)
    compared = next(
        c for c in nb.cells if 'if written("conv2d_multiplications")' in c.source
    )
    assert (
        "(a) twice the channels, stride 2: 1.000 times the multiplications"
        in printed(compared)
    )


def test_every_helper_a_task_gives_is_defined_before_the_students_first_code():
    """Locked helpers (``given_*``) and stand-ins for earlier sections come before every answer
    cell, so that nothing the student wrote can stop Run All before they are defined."""
    for path in sorted(RELEASE_DIR.glob("*.ipynb")):
        meta = [c.metadata.get("nbgrader", {}) for c in notebooks.read(path).cells]
        answers = [i for i, m in enumerate(meta) if m.get("solution")]
        helpers = [
            i
            for i, m in enumerate(meta)
            if m.get("grade_id", "").startswith(("given_", "stand_in_"))
        ]
        if answers and helpers:
            assert max(helpers) < min(answers), path.name


def test_under_nbgrader_the_visible_test_of_an_unwritten_function_fails(tmp_path):
    """What ``nbgrader autograde`` and ``validate`` set while they run a notebook."""
    nb = notebooks.read(RELEASE_DIR / "01-multiple-input-channels.ipynb")
    stopped = run_all(nb, tmp_path, env={"NBGRADER_EXECUTION": "autograde"})
    visible = cell_by_grade_id(nb, "test_corr2d_multi_in_example")
    assert stopped == nb.cells.index(visible)
    assert errors(visible) == [
        "AssertionError: " + visible_not_written("corr2d_multi_in")
    ]


def test_nbgrader_validate_flags_the_visible_test_of_an_unwritten_function(tmp_path):
    """The assignment list's Validate button (``nbgrader validate``) says the notebook would
    not get full credit, and names the visible test."""
    shutil.copy(RELEASE_DIR / "01-multiple-input-channels.ipynb", tmp_path)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "nbgrader",
            "validate",
            "01-multiple-input-channels.ipynb",
        ],
        cwd=tmp_path,
        env={k: v for k, v in nbgrader_env().items() if k != "NBGRADER_EXECUTION"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert "VALIDATION FAILED ON 1 CELL(S)!" in done.stdout, done.stdout + done.stderr
    assert 'visible_test("corr2d_multi_in", device)' in done.stdout
    # (nbgrader cuts the lines of the error at 90 characters)
    assert (
        "AssertionError: corr2d_multi_in, visible tests: not written yet" in done.stdout
    )


# Stock nbgrader with its own Execute step (the course replaces it with the sandboxed grader,
# nbgrader_config.py; an instructor might not): the notebook runs in a kernel, and a test cell
# scores its points unless it raises.
STOCK_CONFIG = """\
c = get_config()  # noqa: F821
c.CourseDirectory.course_id = "d2l-7.4-channels"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "chapters"
"""


def test_stock_nbgrader_s_own_execution_scores_an_unwritten_function_0(tmp_path):
    course = tmp_path / "course"
    course.mkdir()
    build_course(
        course,
        {
            "untouched": {},
            "solved": {"corr2d_multi_in": solution_source("corr2d_multi_in")},
        },
    )
    (course / "nbgrader_config.py").write_text(STOCK_CONFIG)
    for student in ("untouched", "solved"):  # one notebook each: a kernel per notebook
        for path in (course / "submitted" / student / ASSIGNMENT).glob("*.ipynb"):
            if not path.name.startswith("01-"):
                path.unlink()
    nbgrader(course, "generate_assignment", ASSIGNMENT, "--force")
    nbgrader(course, "autograde", ASSIGNMENT)
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        scores = {
            student: {
                grade.cell.name: grade.score
                for grade in gb.find_submission_notebook(
                    "01-multiple-input-channels", ASSIGNMENT, student
                ).grades
                if grade.cell.name.startswith("test_")
            }
            for student in ("untouched", "solved")
        }
    assert scores["untouched"] == {
        "test_corr2d_multi_in_example": 0.0,
        "test_corr2d_multi_in_hidden": 0.0,
    }
    assert scores["solved"] == {
        cell: full_marks()[cell][0]
        for cell in ("test_corr2d_multi_in_example", "test_corr2d_multi_in_hidden")
    }
