"""The judging every path shares (visible test, practice check, feedback page): the rules
for values, dtypes and types, with answers built from the exercises' own cases."""

from __future__ import annotations

import pytest
import torch

from autograder import EXERCISES
from autograder.kit.judging import Returned, _bound, _inputs, judge

MULTI_IN = EXERCISES["corr2d_multi_in"]
FLOAT32_CASE = next(
    c for c in MULTI_IN.cases if "random" in c.tags and c.dtype == torch.float32
)
FLOAT64_CASE = next(c for c in MULTI_IN.cases if c.dtype == torch.float64)


def answer_off_by(case, dtype: torch.dtype, error_in: torch.dtype, share: float):
    """The right answer for ``case`` in ``dtype``, every value off by ``share`` of the error
    that a sum computed in ``error_in`` may carry (the grader's own bound)."""
    expected = MULTI_IN.oracle(*_inputs(case))
    off = expected + share * _bound(MULTI_IN, case, error_in)
    return Returned.of_value(off.to(dtype))


def test_a_float32_sum_returned_as_float64_is_judged_at_float32_precision():
    got = answer_off_by(FLOAT32_CASE, torch.float64, torch.float32, 0.5)
    verdict = judge(MULTI_IN, FLOAT32_CASE, got)
    assert verdict.correct, verdict.message
    assert verdict.notes == (
        f"corr2d_multi_in on {FLOAT32_CASE.describe()}: returned torch.float64 for "
        "torch.float32 input (right at torch.float32's precision; keep the input's dtype).",
    )


def test_an_error_beyond_float32_precision_still_fails_when_returned_as_float64():
    got = answer_off_by(FLOAT32_CASE, torch.float64, torch.float32, 3.0)
    verdict = judge(MULTI_IN, FLOAT32_CASE, got)
    assert not verdict.correct
    assert "the values are not" in verdict.message


@pytest.mark.parametrize("returned", [torch.float32, torch.float64])
def test_float64_input_is_judged_at_the_coarser_of_the_two_dtypes(returned):
    """float64 in, float32 out (the book's d2l.corr2d): float32's precision, as before; float64
    in and out: float64's, so a float32-sized error is wrong there."""
    near = answer_off_by(FLOAT64_CASE, returned, returned, 0.5)
    assert judge(MULTI_IN, FLOAT64_CASE, near).correct
    if returned == torch.float64:
        coarse = answer_off_by(FLOAT64_CASE, returned, torch.float32, 0.5)
        assert not judge(MULTI_IN, FLOAT64_CASE, coarse).correct


def test_a_result_that_loses_precision_says_so():
    got = answer_off_by(FLOAT64_CASE, torch.float32, torch.float32, 0.0)
    verdict = judge(MULTI_IN, FLOAT64_CASE, got)
    assert verdict.correct
    assert verdict.notes[0].endswith(
        "returned torch.float32 for torch.float64 input (right, but precision is lost)."
    )
