"""Hidden tests with feedback a student can act on.

``check("corr2d_multi_in", corr2d_multi_in, device)`` runs every hidden case of that exercise and
raises ``AssertionError`` at the first failure, naming the case by its shapes (never its values),
what came back and, where the output matches a known mistake, what that mistake probably is.
Returning float32 or a CPU tensor, as ``d2l.corr2d`` does, is reported but not failed.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from autograder.exercises import EXERCISES, Case, Exercise


def error_bound(
    ex: Exercise, X: torch.Tensor, K: torch.Tensor, dtype: torch.dtype
) -> torch.Tensor:
    """Element-wise tolerance for a result computed in ``dtype``, in any summation order.

    A sum of n products computed in floating point is off by at most about n * eps/2 times the sum
    of the absolute terms. We allow (n + 2) * eps times it: two results in different orders, plus
    rounding the inputs to ``dtype`` (so d2l.corr2d's float32 answer to float64 input passes), and
    nothing looser, so that a missing or extra term is caught.
    """
    n_terms = K.shape[-3] * K.shape[-2] * K.shape[-1]
    eps = (
        torch.finfo(dtype).eps
        if dtype.is_floating_point
        else torch.finfo(torch.float32).eps
    )
    return (n_terms + 2) * eps * ex.oracle(X.abs(), K.abs())


def _likely_mistakes(
    ex: Exercise, X: torch.Tensor, K: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Outputs of known wrong implementations, to recognise a student's result."""
    mistakes = {
        "the kernel is flipped: that is a convolution, but deep learning's 'convolution' is a "
        "cross-correlation (no flip)": ex.oracle(X, K.flip(-1, -2)),
    }
    return mistakes


def _shape_hint(
    ex: Exercise, X: torch.Tensor, K: torch.Tensor, got: tuple[int, ...]
) -> str:
    expected = tuple(ex.oracle(X, K).shape)
    if ex.kernel_dims == 3 and got == (X.shape[0], *expected):
        return (
            " It looks like the channels were not summed: add the per-channel results."
        )
    if ex.kernel_dims == 4 and sorted(got) == sorted(expected):
        return " The output channels should be stacked along dimension 0: (c_o, h_out, w_out)."
    return ""


def check_case(
    ex: Exercise, fn: Callable, case: Case, device: torch.device | str
) -> list[str]:
    """Run one case; raise AssertionError on a wrong answer, return notes that cost no points."""
    X, K = case.inputs(device)
    X_before, K_before = X.clone(), K.clone()
    tried = f"{ex.name} on {case.describe()}"
    Y = fn(X, K)
    if not isinstance(Y, torch.Tensor):
        hint = (
            " Convert it back with torch.as_tensor."
            if type(Y).__module__ == "numpy"
            else ""
        )
        raise AssertionError(
            f"{tried}: expected a torch.Tensor, got {type(Y).__name__}.{hint}"
        )
    if not (torch.equal(X, X_before) and torch.equal(K, K_before)):
        raise AssertionError(
            f"{tried}: the function changed its input X or K in place; work on copies."
        )
    expected = ex.oracle(X, K)
    if tuple(Y.shape) != tuple(expected.shape):
        raise AssertionError(
            f"{tried}: expected shape {tuple(expected.shape)}, got {tuple(Y.shape)}."
            + _shape_hint(ex, X, K, tuple(Y.shape))
        )
    got = Y.detach().to("cpu", torch.float64)
    bound = error_bound(ex, X, K, Y.dtype)
    if not bool(((got - expected).abs() <= bound).all()):
        worst = (got - expected).abs().max().item()
        diagnosis = next(
            (
                why
                for why, wrong in _likely_mistakes(ex, X, K).items()
                if bool(((got - wrong).abs() <= bound).all())
            ),
            None,
        )
        raise AssertionError(
            f"{tried}: the shape is right but the values are not (largest error {worst:.2g})."
            + (f" It looks like {diagnosis}." if diagnosis else "")
        )
    notes = []
    if Y.dtype != X.dtype:
        notes.append(
            f"{tried}: returned {Y.dtype} for {X.dtype} input (correct, but precision is lost)."
        )
    if Y.device != X.device:
        notes.append(
            f"{tried}: returned a tensor on {Y.device} for input on {X.device}."
        )
    return notes


def check(name: str, fn: Callable, device: torch.device | str = "cpu") -> None:
    """Run every hidden case of exercise ``name``; print notes, raise on the first wrong answer."""
    ex = EXERCISES[name]
    notes = [note for case in ex.cases for note in check_case(ex, fn, case, device)]
    for note in dict.fromkeys(notes):
        print("Note:", note)
    print(f"{name}: all {len(ex.cases)} hidden cases pass.")
