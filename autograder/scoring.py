"""From what a function returned to points: pure functions, no student code runs here.

``Returned`` is plain data about one call (from the sandbox's reply, or from a live call in the
student's notebook). ``judge`` compares it with PyTorch's conv2d in float64 and words the
feedback; ``score_exercise`` applies the rubric of ``exercises.py``. The notebook's check cell and
the trusted grader use the same two functions, so a student sees the grader's diagnosis.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass

import torch

from autograder.exercises import Case, Exercise

BUILTIN_CONVOLUTIONS = frozenset(
    {
        "conv1d",
        "conv2d",
        "conv3d",
        "conv_transpose2d",
        "Conv2d",
        "LazyConv2d",
    }
)
FLOAT_DTYPES = {"torch.float16": torch.float16, "torch.bfloat16": torch.bfloat16}
FLOAT_DTYPES |= {"torch.float32": torch.float32, "torch.float64": torch.float64}


class MalformedReplyError(ValueError):
    """The sandbox's reply is not the data it should be (so it was tampered with)."""


@dataclass(frozen=True)
class Returned:
    """What one call gave back, as plain data."""

    error: str | None = None
    type_name: str = ""
    shape: tuple[int, ...] | None = None
    dtype: str | None = None
    device: str | None = None
    values: torch.Tensor | None = None  # flat float64 on the CPU
    inputs_unchanged: bool = True
    conv_calls: int = 0

    @classmethod
    def from_reply(cls, data: object) -> Returned:
        """Parse one case of a sandbox reply strictly; anything odd is MalformedReplyError."""
        if not isinstance(data, dict):
            raise MalformedReplyError("a case is not an object")
        unchanged = data.get("inputs_unchanged")
        calls = data.get("conv_calls")
        if not isinstance(unchanged, bool) or not isinstance(calls, int):
            raise MalformedReplyError("a case lacks its bookkeeping")
        if "error" in data:
            return cls(
                error=str(data["error"])[:300],
                inputs_unchanged=unchanged,
                conv_calls=calls,
            )
        shape = data.get("shape")
        if shape is not None and not (
            isinstance(shape, list)
            and all(isinstance(n, int) and n >= 0 for n in shape)
        ):
            raise MalformedReplyError("a shape is not a list of sizes")
        values = data.get("values")
        tensor = None
        if values is not None:
            if not isinstance(values, list) or not all(
                isinstance(v, float | int) and not isinstance(v, bool) for v in values
            ):
                raise MalformedReplyError("values are not numbers")
            if shape is None or len(values) != math.prod(shape):
                raise MalformedReplyError("values do not fill the shape")
            tensor = torch.tensor(values, dtype=torch.float64)
        return cls(
            type_name=str(data.get("type", ""))[:100],
            shape=tuple(shape) if shape is not None else None,
            dtype=str(data["dtype"])[:40] if "dtype" in data else None,
            device=str(data["device"])[:40] if "device" in data else None,
            values=tensor,
            inputs_unchanged=unchanged,
            conv_calls=calls,
        )

    @classmethod
    def from_call(cls, fn, X: torch.Tensor, K: torch.Tensor) -> Returned:
        """Call ``fn`` here (in the student's own kernel: feedback only, never a score)."""
        X_before, K_before = X.clone(), K.clone()
        try:
            Y = fn(X, K)
        except Exception as error:
            return cls(error=f"{type(error).__name__}: {error}"[:300])
        unchanged = bool(torch.equal(X, X_before) and torch.equal(K, K_before))
        kind = type(Y)
        name = f"{kind.__module__}.{kind.__qualname__}"
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


def _within(got: torch.Tensor, expected: torch.Tensor, bound: torch.Tensor) -> bool:
    return bool(((got - expected).abs() <= bound).all())


def _likely_mistakes(
    ex: Exercise, X: torch.Tensor, K: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Outputs of known wrong implementations, to recognise a student's result."""
    mistakes = {
        "the kernel is flipped: that is a convolution, but deep learning's 'convolution' is a "
        "cross-correlation (no flip)": ex.oracle(X, K.flip(-1, -2)),
    }
    if ex.kernel_dims == 4 and K.shape[0] == K.shape[1] and K.shape[2:] == (1, 1):
        mistakes[
            "the weight matrix is transposed: use K.reshape(c_o, c_i) @ X.reshape(c_i, h * w)"
        ] = ex.oracle(X, K.transpose(0, 1))
    return mistakes


def _shape_hint(ex: Exercise, X: torch.Tensor, expected: tuple, got: tuple) -> str:
    if ex.kernel_dims == 3 and got == (X.shape[0], *expected):
        return (
            " It looks like the channels were not summed: add the per-channel results."
        )
    if ex.kernel_dims == 4 and got != expected and sorted(got) == sorted(expected):
        return " The output channels should be stacked along dimension 0: (c_o, h_out, w_out)."
    return ""


def modified_input_message(ex: Exercise, case: Case) -> str:
    return (
        f"{ex.name} on {case.describe()}: the function changed its input X or K in place; "
        "work on copies."
    )


def judge(
    ex: Exercise, case: Case, got: Returned, input_device: str = "cpu"
) -> Verdict:
    """Is ``got`` the right answer for ``case``? Feedback names shapes, never hidden values.

    Whether the inputs survived is a rubric item of its own (see ``score_exercise``).
    """
    tried = f"{ex.name} on {case.describe()}"
    if got.error is not None:
        if got.error.startswith("NotImplementedError"):
            return Verdict(
                False, f"{tried}: not written yet (it raises NotImplementedError)."
            )
        return Verdict(False, f"{tried}: raised {got.error.removesuffix(': ')}")
    if got.type_name != "torch.Tensor":
        hint = (
            " Convert it back with torch.as_tensor."
            if got.type_name.startswith("numpy")
            else ""
        )
        short = got.type_name.rsplit(".", 1)[-1]
        return Verdict(False, f"{tried}: expected a torch.Tensor, got {short}.{hint}")
    X, K = case.inputs()
    expected = ex.oracle(X, K)
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
    bound = error_bound(ex, X, K, dtype)
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


def uses_builtin_convolution(source: str) -> bool:
    """Does the code name one of torch's convolutions (conv2d, Conv2d, unfold, ...)?"""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    names = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    names |= {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    return bool(names & BUILTIN_CONVOLUTIONS)


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
    static_conv: bool = False,
    conv_policy: str = "zero",
) -> tuple[list[ItemScore], list[str]]:
    """Apply the rubric to one function's results on all its cases (in ``ex.cases`` order).

    Returns the items and the notes that cost no points (dtype or device not kept), one per kind.
    """
    judged = [
        (case, got, judge(ex, case, got))
        for case, got in zip(ex.cases, returned, strict=True)
    ]
    # Credit needs one right answer that is not a worked example: a written-out answer gets none.
    computes = any(v.correct for case, _, v in judged if "example" not in case.tags)
    used_conv = static_conv or any(got.conv_calls for got in returned)
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
        if status == "passed" and used_conv and conv_policy == "zero":
            status = "builtin-convolution"
            message = (
                f"{ex.name} calls one of PyTorch's convolutions; this exercise asks you to "
                "write the computation yourself"
            )
        if status == "failed" and not message:
            message = f"{ex.name}: no input was computed correctly"
        score = item.points if status == "passed" else 0.0
        items.append(
            ItemScore(item.cell, item.description, score, item.points, status, message)
        )
    return items, list(dict.fromkeys(note for _, _, v in judged for note in v.notes))
