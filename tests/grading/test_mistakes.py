"""Messages a student can act on, for the mistakes real students make before any output."""

from __future__ import annotations

import pytest
from conftest import solution_source
from corpus import CORPUS, MULTI_IN, MULTI_OUT, typed

from autograder import EXERCISES, notebooks
from autograder.grading.grader import grade_notebook_node
from autograder.grading.mistakes import defined_names, missing_function, syntax_problem
from autograder.grading.submission import release_notebook
from autograder.paths import RELEASE_DIR
from autograder.sandbox.runner import Limits, Sandbox

# Misspellings of the kind found in 4 of 27 public implementations of this section.
MISSPELLED = ["corr2d_muli_in", "corr2d_multiin", "corr2d_mutli_in", "Corr2d_multi_in"]


@pytest.mark.parametrize("typo", MISSPELLED)
def test_a_misspelled_function_is_named_with_the_closest_name_the_student_wrote(typo):
    source = solution_source(MULTI_IN).replace("def corr2d_multi_in(", f"def {typo}(")
    problem = missing_function(MULTI_IN, ["X = 1", source])
    assert problem.status == "missing-function"
    assert problem.message.startswith(
        f"{MULTI_IN}: no function named `{MULTI_IN}` was defined; did you mean `{typo}`?"
    )


def test_a_function_that_is_simply_missing_gets_no_guess():
    problem = missing_function(MULTI_IN, ["def plot_it():\n    pass", "Y = 2"])
    assert "did you mean" not in problem.message
    assert "keep the name of the stub" in problem.message


def test_a_syntax_error_shows_its_line_and_a_caret():
    cell = "def corr2d_multi_in(X, K):\n    return sum(d2l.corr2d(x, k) for x, k in zip(X, K)\n"
    problem = syntax_problem(MULTI_IN, cell)
    assert problem is not None and problem.status == "syntax-error"
    head, line, caret = problem.message.split("\n")
    assert head.startswith(f"{MULTI_IN}: the answer cell is not valid Python (line 2: ")
    assert "was never closed" in head
    assert line == "        return sum(d2l.corr2d(x, k) for x, k in zip(X, K)"
    assert line[caret.index("^")] == "("  # under the bracket that was never closed


def test_hostile_text_is_a_syntax_error_not_a_crash():
    for text in ("x = (" * 500, "a\x00b", "def f(:\n" * 1000):
        problem = syntax_problem(MULTI_IN, text)
        assert problem is not None and problem.status == "syntax-error"
    assert syntax_problem(MULTI_IN, solution_source(MULTI_IN)) is None


def test_defined_names_reads_top_level_definitions_only():
    names = defined_names(
        ["def a():\n    b = 1\nc = 2", "class D: pass", "not python ("]
    )
    assert names == ["a", "c", "D"]


def graded(box: Sandbox, entry: str, function: str) -> list:
    """The items of ``function`` for one corpus student's notebook, graded in the sandbox."""
    name = EXERCISES[function].notebook
    nb = notebooks.read(RELEASE_DIR / name)
    answers = typed(CORPUS[entry])
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers and cell.cell_type == "code":
            cell.source = answers[grade_id]
    assert release_notebook(name) is not None
    result = grade_notebook_node(nb, name, box)
    return [i for i in result.items if i.cell.startswith(f"test_{function}_")]


@pytest.mark.slow
@pytest.mark.sandbox
def test_the_grader_says_missing_function_for_a_misspelled_name(warm_sandbox):
    items = graded(warm_sandbox(Limits()), "mistake_misspelled_name", MULTI_IN)
    assert {i.status for i in items} == {"missing-function"}
    assert "did you mean `corr2d_muli_in`?" in items[0].message


@pytest.mark.slow
@pytest.mark.sandbox
def test_the_grader_says_syntax_error_with_the_line(warm_sandbox):
    items = graded(warm_sandbox(Limits()), "mistake_syntax_error", MULTI_IN)
    assert {i.status for i in items} == {"syntax-error"}
    assert "line 8: '(' was never closed" in items[0].message


@pytest.mark.slow
@pytest.mark.sandbox
def test_a_wrong_call_of_a_stand_in_names_the_courses_version_not_a_private_one(
    warm_sandbox,
):
    items = graded(warm_sandbox(Limits()), "mistake_stand_in_arguments", MULTI_OUT)
    message = items[0].message
    # The grader quotes no message from the sandbox (it could carry hidden inputs), so the
    # class and the student's own line say what went wrong, and the hint says why.
    assert (
        "raised TypeError at line 8: "
        "`return torch.stack([corr2d_multi_in(X, k, 1, 0) for k in K])`" in message
    )
    assert (
        "In this notebook `corr2d_multi_in` is the course's two-argument version `(X, K)`"
        in message
    )
    assert "_stand_in" not in message
    untouched = next(i for i in items if i.item == "inputs left unchanged")
    assert untouched.status == "not-checked"
    assert untouched.message.endswith(
        "not checked: no input was computed correctly yet"
    )
