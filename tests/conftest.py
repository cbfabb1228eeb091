"""Shared fixtures: the repository's real notebooks, and submissions built from them."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat

from autograder import notebooks
from autograder.release import ASSIGNMENT, RELEASE_DIR, ROOT, SOURCE_DIR

GRADED = ("corr2d_multi_in", "corr2d_multi_in_out", "corr2d_multi_in_out_1x1")
# Which notebook holds each graded function.
NOTEBOOK_OF = {
    "corr2d_multi_in": "01-multiple-input-channels.ipynb",
    "corr2d_multi_in_out": "02-multiple-output-channels.ipynb",
    "corr2d_multi_in_out_1x1": "03-1x1-convolution.ipynb",
}


def cell_by_grade_id(nb: nbformat.NotebookNode, grade_id: str) -> nbformat.NotebookNode:
    matches = [
        c
        for c in nb.cells
        if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id
    ]
    assert len(matches) == 1, (
        f"expected one cell with grade_id {grade_id!r}, found {len(matches)}"
    )
    return matches[0]


def namespace_of(grade_id: str, solution_source: str | None = None) -> dict:
    """Run a notebook's setup cell and a (possibly replaced) solution cell in a fresh namespace."""
    ns: dict = {}
    nb = notebooks.read(SOURCE_DIR / NOTEBOOK_OF[grade_id])
    for setup_id in ("setup_imports", "stand_in_corr2d_multi_in"):
        if any(
            c.metadata.get("nbgrader", {}).get("grade_id") == setup_id for c in nb.cells
        ):
            exec(cell_by_grade_id(nb, setup_id).source, ns)
    exec(
        solution_source
        if solution_source is not None
        else cell_by_grade_id(nb, grade_id).source,
        ns,
    )
    return ns


def solution_source(grade_id: str) -> str:
    """The instructor's answer cell for a graded function, as a student would type it."""
    return cell_by_grade_id(
        notebooks.read(SOURCE_DIR / NOTEBOOK_OF[grade_id]), grade_id
    ).source


def stub_answered(grade_id: str, body: str) -> str:
    """The release's answer cell with ``body`` typed in place of the stub's last two lines."""
    stub = cell_by_grade_id(
        notebooks.read(RELEASE_DIR / NOTEBOOK_OF[grade_id]), grade_id
    ).source
    marker = "    # YOUR CODE HERE\n    raise NotImplementedError()"
    assert marker in stub
    return stub.replace(marker, body.strip("\n"))


def write_submission(course: Path, student: str, answers: dict[str, str]) -> Path:
    """Write ``submitted/<student>/channels/`` from the release, with some answer cells replaced.

    The notebooks are the real release; only the cells whose grade_id is in ``answers`` change,
    as when a student types into them in Jupyter.
    """
    dest = course / "submitted" / student / ASSIGNMENT
    dest.mkdir(parents=True)
    for path in sorted(RELEASE_DIR.glob("*.ipynb")):
        nb = notebooks.read(path)
        for grade_id, source in answers.items():
            if path.name == NOTEBOOK_OF[grade_id]:
                cell_by_grade_id(nb, grade_id).source = source
        notebooks.write(nb, dest / path.name)
    return dest


def build_course(course: Path, students: dict[str, dict[str, str]]) -> None:
    """A scratch nbgrader course: this repository's config and sources, plus submissions."""
    shutil.copy(ROOT / "nbgrader_config.py", course)
    shutil.copytree(ROOT / "solutions", course / "solutions")
    for student, answers in students.items():
        write_submission(course, student, answers)
