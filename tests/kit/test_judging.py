"""The judging every path shares (visible test, practice check, feedback page): the rules
for values, dtypes and types, with answers built from the exercises' own cases."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from autograder import EXERCISES
from autograder.kit.judging import Case, Returned, _bound, _inputs, judge

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


# Counts of the wrong type (issue 27, req 3): the value and the fix, or both faults.
MULTS = EXERCISES["conv2d_multiplications"]
COUNT_CASE = next(c for c in MULTS.cases if "random" in c.tags)
RIGHT = MULTS.answers.expected(MULTS, COUNT_CASE)


@pytest.mark.parametrize(
    ("value", "shown", "fix"),
    [
        (float(RIGHT), f"{float(RIGHT)!r} (a float)", "return int(...)"),
        (np.int64(RIGHT), f"np.int64({RIGHT})", "wrap it in int(...)"),
    ],
)
def test_a_right_count_of_the_wrong_type_says_its_value_and_the_fix(value, shown, fix):
    verdict = judge(MULTS, COUNT_CASE, Returned.of_value(value))
    assert not verdict.correct  # the task asks for an int: no points (README)
    assert f"got {shown}: {fix}" in verdict.message
    assert "The number is right" in verdict.message


@pytest.mark.parametrize("value", [float(RIGHT + 1), np.int64(RIGHT + 1)])
def test_a_wrong_count_of_the_wrong_type_says_both(value):
    verdict = judge(MULTS, COUNT_CASE, Returned.of_value(value))
    assert not verdict.correct
    assert "not an int, and the number is wrong too" in verdict.message
    assert "a cast alone will not fix it" in verdict.message


def test_a_right_int_count_is_correct():
    assert judge(MULTS, COUNT_CASE, Returned.of_value(int(RIGHT))).correct


def test_counting_cases_list_their_sizes_in_signature_order_after_a_round_trip():
    """The kit's file is JSON with sorted keys: the sizes must not come back sorted."""
    data = json.loads(json.dumps(COUNT_CASE.to_data(), sort_keys=True))
    described = Case.from_data(data).describe()
    assert described == COUNT_CASE.describe()
    assert described.startswith("c_i=") and described.index("c_o=") < described.index(
        "h="
    )


def test_every_counting_case_lists_its_sizes_in_the_functions_signature_order():
    """Graded, visible and practice cases alike: the message names c_i, c_o, h, w, ... in
    the order the student wrote them in the stub."""
    import inspect

    from autograder.course_build.kit_build import practice_cases
    from autograder.grading import reference

    for name, ex in EXERCISES.items():
        if ex.kind != "count":
            continue
        signature = list(inspect.signature(getattr(reference, name)).parameters)
        for case in (*ex.cases, *ex.visible, *practice_cases(ex)):
            names = [key for key, _ in case.params]
            assert names == [p for p in signature if p in names], (name, case)


# A result of the wrong type or dtype (issue 27, req 3): whether converting it would be enough.
def right_answer(case: Case = FLOAT32_CASE) -> torch.Tensor:
    return MULTI_IN.oracle(*_inputs(case)).to(case.dtype)


def flipped_answer(case: Case = FLOAT32_CASE) -> torch.Tensor:
    X, K = _inputs(case)
    return MULTI_IN.oracle(X, K.flip(-1, -2)).to(case.dtype)


def test_a_numpy_array_with_the_right_values_is_told_to_convert_it_back():
    verdict = judge(MULTI_IN, FLOAT32_CASE, Returned.of_value(right_answer().numpy()))
    assert not verdict.correct
    assert verdict.message.endswith(
        "expected a torch.Tensor, got ndarray: its values are right; convert it back "
        "with torch.as_tensor."
    )


def test_a_numpy_array_with_wrong_values_says_both_and_the_diagnosis():
    verdict = judge(MULTI_IN, FLOAT32_CASE, Returned.of_value(flipped_answer().numpy()))
    assert (
        "expected a torch.Tensor, got ndarray, and its values are wrong too (converting "
        "it back will not fix that). It looks like the kernel is flipped"
    ) in verdict.message


def test_a_numpy_array_of_the_wrong_shape_says_both():
    got = Returned.of_value(right_answer()[None].numpy())
    verdict = judge(MULTI_IN, FLOAT32_CASE, got)
    assert "got ndarray, and its shape is wrong too" in verdict.message


def test_an_integer_tensor_says_whether_a_cast_would_be_enough():
    """The worked example's integers survive an integer result; eighths do not."""
    example = next(c for c in MULTI_IN.cases if "example" in c.tags)
    right = judge(MULTI_IN, example, Returned.of_value(right_answer(example).long()))
    assert right.message.endswith(
        "expected a floating-point tensor, got dtype torch.int64: its values are right; "
        "keep the input's dtype (build the result from X, as X.new_zeros does)."
    )
    truncated = judge(MULTI_IN, FLOAT32_CASE, Returned.of_value(right_answer().long()))
    assert (
        "got dtype torch.int64, and its values are wrong too (a cast alone will not fix "
        "that)."
    ) in truncated.message


def test_a_value_with_no_numbers_to_compare_keeps_the_plain_message():
    verdict = judge(MULTI_IN, FLOAT32_CASE, Returned.of_value(right_answer().tolist()))
    assert verdict.message.endswith("expected a torch.Tensor, got list.")
