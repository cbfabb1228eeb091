"""From what a function returned to points: pure functions, no student code runs here.

``Returned`` is plain data about one call (from the sandbox's reply, or from a live call in the
student's notebook). ``judge`` compares it with PyTorch's conv2d in float64 and words the
feedback; ``score_exercise`` applies the rubric of ``exercises.py``. The notebook's check cell and
the trusted grader use the same two functions, so a student sees the grader's diagnosis.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch

from autograder.exercises import Case, Exercise
from autograder.policy import (
    CLEAN,
    CLEAN_VERDICT,
    FORBIDDEN,
    NEEDS_REVIEW,
    PolicyVerdict,
)

FLOAT_DTYPES = {"torch.float16": torch.float16, "torch.bfloat16": torch.bfloat16}
FLOAT_DTYPES |= {"torch.float32": torch.float32, "torch.float64": torch.float64}


class MalformedReplyError(ValueError):
    """The sandbox's reply is not the data it should be (so it was tampered with)."""


@dataclass(frozen=True)
class Returned:
    """What one call gave back, as plain data (from ``replies.parse_case``, or a live call)."""

    error: str | None = None
    type_name: str = ""
    shape: tuple[int, ...] | None = None
    dtype: str | None = None
    device: str | None = None
    values: torch.Tensor | None = None  # flat float64 on the CPU
    inputs_unchanged: bool = True

    @classmethod
    def from_call(cls, fn, X: torch.Tensor, K: torch.Tensor) -> Returned:
        """Call ``fn`` here (in the student's own kernel: feedback only, never a score)."""
        X_before, K_before = X.clone(), K.clone()
        try:
            Y = fn(X, K)
        except Exception as error:
            return cls(error=f"{type(error).__name__}: {error}"[:300])
        unchanged = bool(torch.equal(X, X_before) and torch.equal(K, K_before))
        return cls.of_value(Y, inputs_unchanged=unchanged)

    @classmethod
    def from_count(cls, fn, params: dict) -> Returned:
        """Call a counting function here with keyword arguments (feedback only)."""
        try:
            value = fn(**params)
        except Exception as error:
            return cls(error=f"{type(error).__name__}: {error}"[:300])
        return cls.of_value(value)

    @classmethod
    def of_value(cls, Y: object, inputs_unchanged: bool = True) -> Returned:
        """Plain data about a value computed in this process."""
        unchanged = inputs_unchanged
        kind = type(Y)
        name = f"{kind.__module__}.{kind.__qualname__}"
        if isinstance(Y, int | float) and not isinstance(Y, bool):
            return cls(
                type_name=name,
                shape=(),
                values=torch.tensor([float(Y)], dtype=torch.float64),
            )
        if not isinstance(Y, torch.Tensor):
            shape = tuple(getattr(Y, "shape", ())) or None
            return cls(type_name=name, shape=shape, inputs_unchanged=unchanged)
        plain = torch.Tensor.as_subclass(Y, torch.Tensor)
        return cls(
            type_name=name,
            shape=tuple(plain.shape),
            dtype=str(plain.dtype),
            device=str(plain.device),
            values=plain.detach().to("cpu", torch.float64).reshape(-1),
            inputs_unchanged=unchanged,
        )


@dataclass(frozen=True)
class Verdict:
    """Whether one case is right, and what to tell the student about it."""

    correct: bool
    message: str
    notes: tuple[str, ...] = ()


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
    return (n_terms + 2) * torch.finfo(dtype).eps * ex.oracle(X.abs(), K.abs())


@functools.lru_cache(maxsize=4096)
def _reference(
    ex: Exercise, case: Case
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A case's inputs and right answer, the same for every student of a batch: computed once.

    Shared between calls, so nothing may change these tensors in place.
    """
    X, K = case.inputs()
    return X, K, ex.oracle(X, K)


@functools.lru_cache(maxsize=4096)
def _bound(ex: Exercise, case: Case, dtype: torch.dtype) -> torch.Tensor:
    X, K, _ = _reference(ex, case)
    return error_bound(ex, X, K, dtype)


def _within(got: torch.Tensor, expected: torch.Tensor, bound: torch.Tensor) -> bool:
    return bool(((got - expected).abs() <= bound).all())


def _likely_mistakes(
    ex: Exercise, X: torch.Tensor, K: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Outputs of known wrong implementations, to recognise a student's result."""
    if (
        ex.kind == "compose"
    ):  # composing with K2 flipped = cross-correlating the kernels
        return {
            "the kernels were cross-correlated with each other; composing them takes a "
            "convolution, so flip one of them": ex.oracle(X, K.flip(-1, -2))
        }
    mistakes = {
        "the kernel is flipped: that is a convolution, but deep learning's 'convolution' is a "
        "cross-correlation (no flip)": ex.oracle(X, K.flip(-1, -2)),
    }
    if ex.kernel_dims == 4 and K.shape[0] == K.shape[1] and K.shape[2:] == (1, 1):
        mistakes[
            "the weight matrix is transposed: use K.reshape(c_o, c_i) @ X.reshape(c_i, h * w)"
        ] = ex.oracle(X, K.transpose(0, 1))
    if ex.kernel_dims == 4 and K.shape[2] == K.shape[3] > 1:
        mistakes[
            "the patches and the kernel are flattened in different orders (rows against "
            "columns): flatten both as (channel, row, column)"
        ] = ex.oracle(X, K.transpose(-1, -2))
    return mistakes


def _shape_hint(ex: Exercise, X: torch.Tensor, expected: tuple, got: tuple) -> str:
    if ex.kind == "compose":
        if len(got) == 4 and got[2:] != expected[2:]:
            return (
                " The combined kernel is k1 + k2 - 1 wide in each direction: every entry of one "
                "kernel meets every entry of the other."
            )
        if got == (expected[1], expected[0], *expected[2:]):
            return " Order the result as (c_o, c_i, k_h, k_w), like any kernel."
        return ""
    if ex.kernel_dims == 3 and got == (X.shape[0], *expected):
        return (
            " It looks like the channels were not summed: add the per-channel results."
        )
    if ex.kernel_dims == 4 and got != expected and sorted(got) == sorted(expected):
        return " The output channels should be stacked along dimension 0: (c_o, h_out, w_out)."
    return ""


def modified_input_message(ex: Exercise, case: Case) -> str:
    first, second = ex.arg_names
    return (
        f"{ex.name} on {case.describe(ex.arg_names)}: the function changed its input "
        f"{first} or {second} in place; work on copies."
    )


def _count_mistakes(ex: Exercise, case: Case) -> dict[str, int]:
    """Numbers that known wrong formulas give for a counting case."""
    p = dict(case.params)
    c_i, c_o, k_h, k_w = p["c_i"], p["c_o"], p["k_h"], p["k_w"]
    h, w, pad, stride = p["h"], p["w"], p["padding"], p["stride"]

    def size(h_in: int, w_in: int, s: int, plus_one: int = 1) -> tuple[int, int]:
        return (h_in - k_h) // s + plus_one, (w_in - k_w) // s + plus_one

    sizes = {
        "the padding was left out of the output size": size(h, w, stride),
        "the padding was added on one side only (it goes on every side: h + 2p)": size(
            h + pad, w + pad, stride
        ),
        "the stride was left out of the output size": size(h + 2 * pad, w + 2 * pad, 1),
        "the output size misses its + 1 (a kernel as large as the input still gives one "
        "output)": size(h + 2 * pad, w + 2 * pad, stride, 0),
        "the output size was not rounded down ((h + 2p - k) // s + 1)": (
            -(-(h + 2 * pad - k_h) // stride) + 1,
            -(-(w + 2 * pad - k_w) // stride) + 1,
        ),
    }
    window = c_i * k_h * k_w
    out_values = c_o * math.prod(ex.count_output_size(case))
    per_output = {
        "conv2d_multiplications": lambda outputs: outputs * window,
        "conv2d_additions": lambda outputs: outputs * (window - 1),
        "conv2d_memory": lambda outputs: (
            (c_i * h * w + c_o * window + outputs) * p.get("bytes_per_value", 4)
        ),
    }[ex.name]
    mistakes = {why: per_output(c_o * hw[0] * hw[1]) for why, hw in sizes.items()}
    if ex.name == "conv2d_additions":
        mistakes[
            "one addition per product was counted; adding n numbers takes n - 1"
        ] = out_values * window
    if ex.name == "conv2d_memory":
        unit = p.get("bytes_per_value", 4)
        mistakes["the result counts values, not bytes"] = (
            c_i * h * w + c_o * window + out_values
        )
        mistakes["the kernel's weights are missing"] = (c_i * h * w + out_values) * unit
        mistakes["the padded input was counted; the padding is not stored"] = (
            c_i * (h + 2 * pad) * (w + 2 * pad) + c_o * window + out_values
        ) * unit
    return mistakes


def _judge_count(ex: Exercise, case: Case, got: Returned, tried: str) -> Verdict:
    expected = ex.count(case)
    if expected is None:
        if got.error is not None and got.error.startswith("ValueError"):
            return Verdict(True, f"{tried}: correct (ValueError).")
        came = f"raised {got.error}" if got.error else "returned a number"
        return Verdict(
            False,
            f"{tried}: the kernel does not fit the padded input, so this must raise "
            f"ValueError; it {came}.",
        )
    if got.error is not None:
        return _error_verdict(tried, got.error)
    if got.type_name != "builtins.int" or got.values is None:
        short = got.type_name.rsplit(".", 1)[-1]
        hint = " Use // to keep whole numbers." if short == "float" else ""
        return Verdict(False, f"{tried}: expected an int, got {short}.{hint}")
    value = got.values.item()
    if value == expected:
        return Verdict(True, f"{tried}: correct.")
    diagnosis = next(
        (why for why, wrong in _count_mistakes(ex, case).items() if wrong == value),
        None,
    )
    return Verdict(
        False,
        f"{tried}: the number is wrong."
        + (f" It looks like {diagnosis}." if diagnosis else ""),
    )


def _error_verdict(tried: str, error: str, stand_ins: tuple[str, ...] = ()) -> Verdict:
    if error.startswith("NotImplementedError"):
        return Verdict(
            False, f"{tried}: not written yet (it raises NotImplementedError)."
        )
    hint = next(
        (
            f" In this notebook `{name}` is the course's two-argument version `(X, K)`."
            for name in stand_ins
            if error.startswith(f"TypeError: {name}()")
        ),
        "",
    )
    return Verdict(False, f"{tried}: raised {error.removesuffix(': ')}{hint}")


def judge(
    ex: Exercise, case: Case, got: Returned, input_device: str = "cpu"
) -> Verdict:
    """Is ``got`` the right answer for ``case``? Feedback names shapes, never hidden values.

    Whether the inputs survived is a rubric item of its own (see ``score_exercise``).
    """
    tried = f"{ex.name} on {case.describe(ex.arg_names)}"
    if ex.kind == "count":
        return _judge_count(ex, case, got, tried)
    if got.error is not None:
        return _error_verdict(tried, got.error, tuple(ex.stand_ins))
    if got.type_name != "torch.Tensor":
        hint = (
            " Convert it back with torch.as_tensor."
            if got.type_name.startswith("numpy")
            else ""
        )
        short = got.type_name.rsplit(".", 1)[-1]
        return Verdict(False, f"{tried}: expected a torch.Tensor, got {short}.{hint}")
    X, K, expected = _reference(ex, case)
    if got.shape != tuple(expected.shape):
        hint = _shape_hint(ex, X, tuple(expected.shape), got.shape or ())
        return Verdict(
            False,
            f"{tried}: expected shape {tuple(expected.shape)}, got {got.shape}.{hint}",
        )
    dtype = FLOAT_DTYPES.get(got.dtype or "")
    if dtype is None or got.values is None:
        return Verdict(
            False, f"{tried}: expected a floating-point tensor, got dtype {got.dtype}."
        )
    values = got.values.reshape(expected.shape)
    if not bool(torch.isfinite(values).all()):
        return Verdict(False, f"{tried}: the result contains NaN or infinity.")
    bound = _bound(ex, case, dtype)
    if not _within(values, expected, bound):
        worst = (values - expected).abs().max().item()
        diagnosis = next(
            (
                why
                for why, wrong in _likely_mistakes(ex, X, K).items()
                if _within(values, wrong, bound)
            ),
            None,
        )
        return Verdict(
            False,
            f"{tried}: the shape is right but the values are not (largest error {worst:.2g})."
            + (f" It looks like {diagnosis}." if diagnosis else ""),
        )
    notes = []
    if got.dtype != str(case.dtype):
        notes.append(
            f"{tried}: returned {got.dtype} for {case.dtype} input (right, but precision is lost)."
        )
    if got.device is not None and got.device != input_device:
        notes.append(
            f"{tried}: returned a tensor on {got.device} for input on {input_device}."
        )
    return Verdict(True, f"{tried}: correct.", tuple(notes))


# The status of a written answer: the instructor grades it in formgrader.
MANUAL = "needs-manual-grade"


@dataclass(frozen=True)
class ItemScore:
    """One rubric item's points, in the nbgrader test cell ``cell``."""

    cell: str
    item: str
    score: float
    max_score: float
    status: str
    message: str


def cell_totals(items: list[ItemScore]) -> dict[str, tuple[float, float, str, str]]:
    """Per test cell: score, max score, and the status and message of the first lost item."""
    totals: dict[str, tuple[float, float, str, str]] = {}
    for item in items:
        score, max_score, status, message = totals.get(
            item.cell, (0.0, 0.0, "passed", "")
        )
        if status == "passed" and item.status != "passed":
            status, message = item.status, item.message
        totals[item.cell] = (
            score + item.score,
            max_score + item.max_score,
            status,
            message,
        )
    return totals


def score_exercise(
    ex: Exercise,
    returned: list[Returned],
    *,
    policy_verdict: PolicyVerdict = CLEAN_VERDICT,
    conv_policy: str = "zero",
    input_device: str = "cpu",
) -> tuple[list[ItemScore], list[str]]:
    """Apply the rubric to one function's results on all its cases (in ``ex.cases`` order).

    Returns the items and the notes that cost no points (dtype or device not kept), one per kind.
    ``input_device`` is where the inputs were (the sandbox: the CPU; a notebook: its device).
    ``policy_verdict`` is ``policy.check_policy``'s reading of the student's source, the only
    judge of the library-convolution policy (nothing the sandbox reports counts for it). Under
    ``conv_policy`` "zero", an item that would pass scores 0 with status ``builtin-convolution``
    (forbidden) or ``needs-review`` (an instructor must look: provisional 0); under "report",
    both keep their points and say so in a note, needs-review as much as forbidden, since what
    it may hide is at worst a forbidden call.
    """
    judged = [
        (case, got, judge(ex, case, got, input_device=input_device))
        for case, got in zip(ex.cases, returned, strict=True)
    ]
    # Credit needs one right answer that is not a worked example (nor a mere ValueError for
    # sizes that do not fit): a written-out answer gets none.
    computes = any(
        v.correct for case, _, v in judged if not case.tags & {"example", "invalid"}
    )
    flagged = policy_verdict if ex.forbidden else CLEAN_VERDICT
    zero = conv_policy == "zero"
    policy_status, policy_message = _policy_outcome(ex, flagged, zero)
    items = []
    for item in ex.rubric:
        if item.tag == "untouched":
            failing = [
                Verdict(False, modified_input_message(ex, case))
                for case, got, _ in judged
                if not got.inputs_unchanged
            ]
            ok = computes and not failing
        else:
            failing = [
                v for case, _, v in judged if item.tag in case.tags and not v.correct
            ]
            ok = not failing
        status, message = (
            ("passed", "") if ok else ("failed", failing[0].message if failing else "")
        )
        if status == "passed" and not computes:
            status = "hard-coded"
            message = (
                f"{ex.name}: the worked example is right but no other input is: "
                "is the answer written out instead of computed?"
            )
        if status == "passed" and flagged.kind != CLEAN and zero:
            status, message = policy_status, policy_message
        if (
            status == "failed" and not message
        ):  # inputs unchanged, but nothing to compare
            status = "not-checked"
            message = f"{ex.name}: not checked: no input was computed correctly yet"
        score = item.points if status == "passed" else 0.0
        items.append(
            ItemScore(item.cell, item.description, score, item.points, status, message)
        )
    notes = list(dict.fromkeys(note for _, _, v in judged for note in v.notes))
    if flagged.kind != CLEAN and not zero:
        notes.append(policy_message)
    return items, notes


def _policy_outcome(
    ex: Exercise, verdict: PolicyVerdict, zero: bool
) -> tuple[str, str]:
    """The status of an item that passes but breaks (or may break) the policy, and why.

    With ``zero`` false (course policy "report") the message is a note and the points stay.
    """
    if verdict.kind == FORBIDDEN:
        unfold = " or F.unfold" if "*.unfold" in ex.forbidden else ""
        return "builtin-convolution", (
            f"{ex.name} calls one of PyTorch's convolutions{unfold} ({verdict.found}); "
            "this exercise asks you to write the computation yourself"
            + ("" if zero else " (this course keeps the points)")
        )
    return NEEDS_REVIEW, (
        f"{ex.name} uses {verdict.found}: the grader cannot tell from the code whether it "
        "calls a library convolution, so "
        + (
            "an instructor will review this answer (0 points until then)"
            if zero
            else "an instructor may review it (this course keeps the points)"
        )
    )
