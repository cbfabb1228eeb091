"""The hidden test of the source notebooks: the grader's cases, judged in the instructor's kernel.

``check(name, fn, device)`` runs every graded case of ``name`` (with the public seeds; the
grader salts them) and raises ``AssertionError`` at the first wrong answer. The student's
checks are the kit's (``autograder.kit``), which carries no graded case.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from autograder.grading.exercises import EXERCISES
from autograder.grading.scoring import judge, modified_input_message
from autograder.kit.notebook import call_on


def check(name: str, fn: Callable, device: torch.device | str = "cpu") -> None:
    """Run every graded case of exercise ``name``; print notes, raise on the first wrong answer."""
    ex = EXERCISES[name]
    notes: list[str] = []
    for case in ex.cases:
        got, on = call_on(case, fn, device)
        verdict = judge(ex, case, got, input_device=on)
        if not verdict.correct:
            raise AssertionError(verdict.message)
        if not got.inputs_unchanged:
            raise AssertionError(modified_input_message(ex, case))
        notes += verdict.notes
    for note in dict.fromkeys(notes):
        print("Note:", note)
    print(f"{name}: all {len(ex.cases)} cases pass.")
