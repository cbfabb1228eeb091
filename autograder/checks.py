"""Hidden tests with feedback a student can act on, run in the notebook's own kernel.

``check("corr2d_multi_in", corr2d_multi_in, device)`` runs every case of that exercise and raises
``AssertionError`` at the first wrong answer, with the same diagnosis the trusted grader gives
(``scoring.judge``). It never decides a score that matters: the sandboxed grader does.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from autograder.exercises import EXERCISES
from autograder.scoring import Returned, judge, modified_input_message


def check(name: str, fn: Callable, device: torch.device | str = "cpu") -> None:
    """Run every case of exercise ``name``; print notes, raise on the first wrong answer."""
    ex = EXERCISES[name]
    notes: list[str] = []
    for case in ex.cases:
        X, K = case.inputs(device)
        got = Returned.from_call(fn, X, K)
        verdict = judge(ex, case, got, input_device=str(X.device))
        if not verdict.correct:
            raise AssertionError(verdict.message)
        if not got.inputs_unchanged:
            raise AssertionError(modified_input_message(ex, case))
        notes += verdict.notes
    for note in dict.fromkeys(notes):
        print("Note:", note)
    print(f"{name}: all {len(ex.cases)} cases pass.")
