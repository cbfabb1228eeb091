"""Shared fixtures: the repository's real notebooks, and submissions built from them."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest

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
    matches = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id]
    assert len(matches) == 1, f"expected one cell with grade_id {grade_id!r}, found {len(matches)}"
    return matches[0]


def namespace_of(grade_id: str, solution_source: str | None = None) -> dict:
    """Run a notebook's setup cell and a (possibly replaced) solution cell in a fresh namespace."""
    ns: dict = {}
    nb = notebooks.read(SOURCE_DIR / NOTEBOOK_OF[grade_id])
    for setup_id in ("setup_imports", "stand_in_corr2d_multi_in"):
        if any(c.metadata.get("nbgrader", {}).get("grade_id") == setup_id for c in nb.cells):
            exec(cell_by_grade_id(nb, setup_id).source, ns)
    exec(solution_source if solution_source is not None else cell_by_grade_id(nb, grade_id).source, ns)
    return ns


@pytest.fixture
def make_submission(tmp_path: Path) -> Callable[..., Path]:
    """Build ``submitted/<student>/channels/`` from the release, with some answer cells replaced.

    ``make_submission("alice", corr2d_multi_in="def corr2d_multi_in(X, K): ...")`` copies the
    student release and writes the given source into the cells with those grade_ids, as a student
    typing in Jupyter would. ``from_solutions=True`` submits the instructor's solutions instead.
    """

    def build(student: str, from_solutions: bool = False, **answers: str) -> Path:
        dest = tmp_path / "submitted" / student / ASSIGNMENT
        dest.mkdir(parents=True)
        for path in sorted(RELEASE_DIR.glob("*.ipynb")):
            nb = notebooks.read(path)
            for grade_id, source in answers.items():
                if path.name == NOTEBOOK_OF[grade_id]:
                    cell_by_grade_id(nb, grade_id).source = source
            if from_solutions:
                source_nb = notebooks.read(SOURCE_DIR / path.name)
                for cell in nb.cells:
                    meta = cell.metadata.get("nbgrader", {})
                    if meta.get("solution"):
                        cell.source = cell_by_grade_id(source_nb, meta["grade_id"]).source
            notebooks.write(nb, dest / path.name)
        return dest

    return build


@pytest.fixture
def course_dir(tmp_path: Path) -> Path:
    """A scratch nbgrader course: this repository's config and sources, nothing else."""
    shutil.copy(ROOT / "nbgrader_config.py", tmp_path)
    shutil.copytree(ROOT / "solutions", tmp_path / "solutions")
    return tmp_path
