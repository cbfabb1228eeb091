"""Feedback in the student's own kernel: the grader's diagnosis, never the grader's score.

``check(name, fn, device)`` is the hidden test of the source notebooks: it runs every graded case
and raises ``AssertionError`` at the first wrong answer. ``practice(name, fn, device)`` is the
check cell of the student's notebook: it runs the same rubric on *practice* inputs (same shapes,
other seeds) and prints what the grader would say about each item, without raising. Both use
``scoring.judge``, so the wording is the grader's; neither decides a score that counts (the
sandboxed grader does, on its own inputs).
"""

from __future__ import annotations

import dataclasses
import inspect
import textwrap
from collections.abc import Callable

import torch

from autograder.exercises import EXERCISES, Case, reseeded
from autograder.policy import check_policy
from autograder.scoring import (
    Returned,
    judge,
    modified_input_message,
    score_exercise,
)

# Practice inputs are the graded shapes drawn from other seeds, so the check cell cannot be used
# to learn the graded numbers (the worked examples are printed in the chapters anyway).
PRACTICE_SALT = "practice"


def practice_cases(cases: tuple[Case, ...]) -> tuple[Case, ...]:
    """The graded cases with their random ones re-seeded; worked examples stay as written."""
    return reseeded(cases, PRACTICE_SALT)


def _calls(
    cases: tuple[Case, ...], fn: Callable, device: torch.device | str
) -> list[tuple[Case, Returned, str]]:
    results = []
    for case in cases:
        if case.params:
            results.append((case, Returned.from_count(fn, dict(case.params)), "cpu"))
            continue
        X, K = case.inputs(device)
        results.append((case, Returned.from_call(fn, X, K), str(X.device)))
    return results


def check(name: str, fn: Callable, device: torch.device | str = "cpu") -> None:
    """Run every graded case of exercise ``name``; print notes, raise on the first wrong answer."""
    ex = EXERCISES[name]
    notes: list[str] = []
    for case, got, on in _calls(ex.cases, fn, device):
        verdict = judge(ex, case, got, input_device=on)
        if not verdict.correct:
            raise AssertionError(verdict.message)
        if not got.inputs_unchanged:
            raise AssertionError(modified_input_message(ex, case))
        notes += verdict.notes
    for note in dict.fromkeys(notes):
        print("Note:", note)
    print(f"{name}: all {len(ex.cases)} cases pass.")


def _source(fn: Callable) -> str:
    try:
        return textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):  # defined somewhere without source: nothing to inspect
        return ""


def practice(name: str, fn: Callable, device: torch.device | str = "cpu") -> None:
    """Print the grader's verdict on each rubric item for practice inputs. Never raises."""
    ex = dataclasses.replace(
        EXERCISES[name], cases=practice_cases(EXERCISES[name].cases)
    )
    calls = _calls(ex.cases, fn, device)
    items, notes = score_exercise(
        ex,
        [got for _, got, _ in calls],
        # Feedback only: the function's own source (the grader reads every cell of the notebook).
        policy_verdict=check_policy([_source(fn)], ex.forbidden),
        input_device=calls[0][2],  # where the inputs were (all cases share a device)
    )
    for item in items:
        mark = {"passed": "ok  ", "not-checked": "--  "}.get(item.status, "FAIL")
        print(f"{mark} {item.item} ({item.max_score:g} pt)")
        if item.message:
            print(f"     {item.message}")
    for note in notes:
        print("Note:", note)
    earned = sum(item.score for item in items)
    total = sum(item.max_score for item in items)
    print(
        f"{name}: {earned:g} of {total:g} points on practice inputs. Your grade comes from "
        "the grader's own inputs, which this check does not use."
    )
