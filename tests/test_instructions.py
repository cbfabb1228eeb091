"""Every rule a task is graded by is stated where the student works on it.

A student reads the released notebook, not the grader: each rubric item of a graded function and
each name the course policy forbids in it must appear in that task's instructions (the Markdown
from the task's heading to its visible test), and the visible test says the rule again.
"""

from __future__ import annotations

import re

import pytest

from autograder import EXERCISES, notebooks
from autograder.paths import RELEASE_DIR, SOURCE_DIR


def grade_id(cell) -> str:
    return cell.metadata.get("nbgrader", {}).get("grade_id", "")


def instructions(name: str) -> str:
    """The Markdown a student reads for ``name``: from the last heading before its answer cell
    to its visible test cell."""
    cells = notebooks.read(RELEASE_DIR / EXERCISES[name].notebook).cells
    answer = next(i for i, c in enumerate(cells) if grade_id(c) == name)
    test = next(i for i, c in enumerate(cells) if grade_id(c) == f"test_{name}_example")
    start = max(
        i
        for i, c in enumerate(cells[: answer + 1])
        if c.cell_type == "markdown" and re.search(r"^#+ ", c.source, re.M)
    )
    first = cells[start].source  # a cell may hold two sections: keep the task's
    first = first[list(re.finditer(r"^#+ ", first, re.M))[-1].start() :]
    rest = [c.source for c in cells[start + 1 : test] if c.cell_type == "markdown"]
    return "\n".join([first, *rest])


def visible_test(name: str) -> str:
    cells = notebooks.read(RELEASE_DIR / EXERCISES[name].notebook).cells
    return next(c.source for c in cells if grade_id(c) == f"test_{name}_example")


def stated(pattern: str, text: str) -> bool:
    """Whether the instructions state a forbidden pattern: a name by name, a family
    (``*conv*``) by its word in backticks, a module attribute (``*.unfold``) as ``F.unfold``."""
    if pattern.startswith("*."):
        return f"`F.{pattern[2:]}`" in text
    if "*" in pattern:
        return f"`{pattern.strip('*')}`" in text
    return pattern in text


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_every_rubric_item_is_stated_in_the_tasks_instructions(name):
    text = " ".join(instructions(name).split())
    missing = [
        item.description
        for item in EXERCISES[name].rubric
        if item.description not in text
    ]
    assert missing == [], (
        f"{name}: rubric items the instructions do not state: {missing}"
    )


@pytest.mark.parametrize(
    "name", sorted(n for n, ex in EXERCISES.items() if ex.forbidden)
)
def test_every_forbidden_name_is_stated_in_the_tasks_instructions(name):
    text = instructions(name)
    forbidden = [p for p in EXERCISES[name].forbidden if not p.startswith("!")]
    families = [
        p.strip("*").lower() for p in forbidden if p.startswith("*") and "." not in p
    ]
    unstated = [
        p
        for p in forbidden
        if not stated(p, text)
        and not (
            "*" not in p
            and any(f in p.lower() for f in families if stated(f"*{f}*", text))
        )
    ]
    assert unstated == [], (
        f"{name}: forbidden names the instructions do not cover: {unstated}"
    )
    assert "scores 0" in text


@pytest.mark.parametrize(
    "name", sorted(n for n, ex in EXERCISES.items() if ex.forbidden)
)
def test_the_visible_test_checks_the_rule(name):
    """It says so in its comment, and prints the rule it checked (the executed source)."""
    assert "the course's rules" in visible_test(name)
    cells = notebooks.read(SOURCE_DIR / EXERCISES[name].notebook).cells
    (cell,) = [c for c in cells if grade_id(c) == f"test_{name}_example"]
    printed = "".join(out.get("text", "") for out in cell.outputs)
    unfold = " or F.unfold" if "*.unfold" in EXERCISES[name].forbidden else ""
    assert (
        f"ok   the course rules: no call to one of PyTorch's convolutions{unfold} in {name}"
        in printed
    )


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_the_return_and_inputs_contract_is_stated(name):
    ex = EXERCISES[name]
    text = " ".join(instructions(name).split())
    if ex.kind == "count":
        assert "Return Python `int`s" in text
        return
    assert "unchanged" in text and "shape" in text
    assert "dtype and device" in text
