"""The source notebooks: solutions match the reference; tests are wired as nbgrader expects."""

from __future__ import annotations

import pytest
from conftest import GRADED, NOTEBOOK_OF, cell_by_grade_id, namespace_of

from autograder import EXERCISES, check, notebooks
from autograder.paths import SOURCE_DIR


@pytest.mark.parametrize("name", GRADED)
def test_solution_cell_passes_every_hidden_case(name, capsys):
    check(name, namespace_of(name)[name])
    assert "Note:" not in capsys.readouterr().out, (
        "the solution must keep dtype and device"
    )


@pytest.mark.parametrize("name", [n for n in GRADED if EXERCISES[n].kind != "count"])
def test_solution_cell_rejects_a_batched_input(name):
    fn = namespace_of(name)[name]
    X, K = EXERCISES[name].cases[0].inputs()
    with pytest.raises(ValueError, match=f"expected {EXERCISES[name].arg_names[0]} "):
        fn(X[None], K)


@pytest.mark.parametrize("name", GRADED)
def test_each_graded_function_has_a_solution_cell_a_visible_and_a_hidden_test(name):
    nb = notebooks.read(SOURCE_DIR / NOTEBOOK_OF[name])
    solution = cell_by_grade_id(nb, name)
    assert (
        solution.metadata.nbgrader["solution"]
        and not solution.metadata.nbgrader["grade"]
    )
    assert (
        "### BEGIN SOLUTION" in solution.source
        and "### END SOLUTION" in solution.source
    )
    visible = cell_by_grade_id(nb, f"test_{name}_example")
    hidden = cell_by_grade_id(nb, f"test_{name}_hidden")
    rubric = {
        cell: sum(i.points for i in EXERCISES[name].rubric if i.cell == cell)
        for cell in (
            visible.metadata.nbgrader["grade_id"],
            hidden.metadata.nbgrader["grade_id"],
        )
    }
    assert [
        visible.metadata.nbgrader["points"],
        hidden.metadata.nbgrader["points"],
    ] == list(rubric.values()), "the test cells' points must be the rubric's"
    assert f'check("{name}", {name}, device)' in hidden.source
    assert "### BEGIN HIDDEN TESTS" in hidden.source


def test_grade_ids_are_unique_within_each_notebook():
    for path in sorted(SOURCE_DIR.glob("*.ipynb")):
        ids = [
            c.metadata["nbgrader"]["grade_id"]
            for c in notebooks.read(path).cells
            if "nbgrader" in c.metadata
        ]
        assert len(ids) == len(set(ids)), path.name


def test_solutions_store_outputs_of_a_complete_run():
    """nbval compares against these outputs, so every code cell must have been run, in order."""
    for path in sorted(SOURCE_DIR.glob("*.ipynb")):
        counts = [
            c.execution_count
            for c in notebooks.read(path).cells
            if c.cell_type == "code"
        ]
        assert counts == list(range(1, len(counts) + 1)), (
            f"{path.name}: run `make solutions` to refresh"
        )
