"""How an answer is judged: from what a function returned to a verdict, its wording and points.

Pure functions; no student code runs here. The sandboxed grader judges the data its sandbox
returns with them, and the student's own notebook judges live calls with the very same code (this
package is copied into every graded notebook as the check kit, ``channels_kit``), so that the
visible tests, the practice check and the feedback page say the same thing. Hence this module
holds no right answer that is not public: a convolution's answer is PyTorch's ``conv2d`` in
float64, and whatever is the exercise itself (a count, a composed kernel) comes from an
``Answers`` table, which the instructor's package computes and the kit carries as data for its
own practice and visible inputs only.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .policy import CLEAN, CLEAN_VERDICT, FORBIDDEN, NEEDS_REVIEW, PolicyVerdict

FLOAT_DTYPES = {"torch.float16": torch.float16, "torch.bfloat16": torch.bfloat16}
FLOAT_DTYPES |= {"torch.float32": torch.float32, "torch.float64": torch.float64}


def seeded_inputs(
    seed: int, x_shape: tuple[int, ...], k_shape: tuple[int, ...], dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """X and K for a seed: multiples of 1/8 in [-2, 2], the same bits on every machine.

    Integers from the seeded generator, not ``randn``: PyTorch's normal sampler gives other
    last bits on other CPUs (its AVX2 and generic paths differ), while integers do not. Eighths
    of at most 16 are exact in every float dtype down to bfloat16, and so is every product and
    every sum of a convolution's terms in float64, whatever the order of the additions: the
    right answers the kit stores are the same bytes wherever the release is built.
    """
    gen = torch.Generator().manual_seed(seed)
    X = torch.randint(-16, 17, x_shape, generator=gen).to(dtype) / 8
    K = torch.randint(-16, 17, k_shape, generator=gen).to(dtype) / 8
    return X, K


@dataclass(frozen=True)
class Case:
    """One input pair. ``describe()`` tells a student the shapes, never the values."""

    x_shape: tuple[int, ...]
    k_shape: tuple[int, ...]
    seed: int
    tags: frozenset[str] = frozenset()
    dtype: torch.dtype = torch.float32
    values: tuple[tuple, tuple] | None = (
        None  # written-out X and K for the worked examples
    )
    params: tuple[tuple[str, int], ...] = ()  # keyword arguments of a counting exercise

    def inputs(
        self, device: torch.device | str = "cpu"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.values is not None:
            X = torch.tensor(self.values[0], dtype=self.dtype)
            K = torch.tensor(self.values[1], dtype=self.dtype)
        else:
            X, K = seeded_inputs(self.seed, self.x_shape, self.k_shape, self.dtype)
        return X.to(device), K.to(device)

    def describe(self, names: tuple[str, str] = ("X", "K")) -> str:
        what = "the worked example: " if "example" in self.tags else ""
        if self.params:
            return what + ", ".join(f"{k}={v}" for k, v in self.params)
        dtype = str(self.dtype).removeprefix("torch.")
        first, second = names
        return (
            f"{what}{first} of shape {self.x_shape} and {second} of shape "
            f"{self.k_shape} ({dtype})"
        )

    @classmethod
    def from_data(cls, data: dict) -> Case:
        """The case ``to_data`` wrote (JSON: lists back to the tuples that keep it hashable)."""

        def tuples(value):
            return tuple(map(tuples, value)) if isinstance(value, list) else value

        values = data.get("values")
        return cls(
            tuple(data["x_shape"]),
            tuple(data["k_shape"]),
            data["seed"],
            frozenset(data.get("tags", ())),
            getattr(torch, data["dtype"]),
            None if values is None else (tuples(values["X"]), tuples(values["K"])),
            tuple((k, v) for k, v in _pairs(data.get("params", {}))),
        )

    def to_data(self) -> dict:
        """The case as plain data for the kit's file (``as_job`` and its tags; the counting
        arguments as pairs, in the function's signature order, which a JSON object written
        with sorted keys would lose)."""
        data = {**self.as_job(), "tags": sorted(self.tags)}
        if self.params:
            data["params"] = [list(pair) for pair in self.params]
        return data

    def as_job(self) -> dict:
        """The case as plain data for the sandbox, which rebuilds the same tensors."""
        job: dict = {
            "seed": self.seed,
            "x_shape": list(self.x_shape),
            "k_shape": list(self.k_shape),
            "dtype": str(self.dtype).removeprefix("torch."),
        }
        if self.values is not None:
            job["values"] = {"X": self.values[0], "K": self.values[1]}
        if self.params:
            job["params"] = dict(self.params)
        return job


def _pairs(params: dict | list) -> list[tuple[str, int]]:
    """Keyword arguments as written by ``to_data`` (pairs) or ``as_job`` (an object)."""
    return (
        [tuple(p) for p in params] if isinstance(params, list) else list(params.items())
    )


@dataclass(frozen=True)
class RubricItem:
    """Points for passing every case tagged ``tag``, counted in the nbgrader test cell ``cell``."""

    cell: str
    tag: str
    points: float
    description: str


def conv_oracle(kernel_dims: int, X: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """The right cross-correlation in float64 on the CPU: PyTorch's conv2d is the ground truth."""
    X64 = X.detach().to("cpu", torch.float64)
    K64 = K.detach().to("cpu", torch.float64)
    if kernel_dims == 3:
        return F.conv2d(X64[None], K64[None])[0, 0]
    return F.conv2d(X64[None], K64)[0]


def likely_mistakes(ex: Exercise, X: torch.Tensor, K: torch.Tensor, oracle) -> dict:
    """What known wrong implementations return for X and K (``oracle``: the right method)."""
    if (
        ex.kind == "compose"
    ):  # composing with K2 flipped = cross-correlating the kernels
        return {
            "the kernels were cross-correlated with each other; composing them takes a "
            "convolution, so flip one of them": oracle(X, K.flip(-1, -2))
        }
    mistakes = {
        "the kernel is flipped: that is a convolution, but deep learning's 'convolution' is a "
        "cross-correlation (no flip)": oracle(X, K.flip(-1, -2)),
    }
    if ex.kernel_dims == 4 and K.shape[0] == K.shape[1] and K.shape[2:] == (1, 1):
        mistakes[
            "the weight matrix is transposed: the product needs K as a (c_o, c_i) matrix "
            "and X as (c_i, h * w)"
        ] = oracle(X, K.transpose(0, 1))
    if ex.kernel_dims == 4 and K.shape[2] == K.shape[3] > 1:
        mistakes[
            "the patches and the kernel are flattened in different orders (rows against "
            "columns): flatten both as (channel, row, column)"
        ] = oracle(X, K.transpose(-1, -2))
    return mistakes


@dataclass(frozen=True)
class Stored:
    """A case's answers as data: the right one (None: it must raise ValueError), the scale
    of its terms (for the error bound of a tensor), and known wrong ones by diagnosis."""

    expected: object
    magnitude: torch.Tensor | None = None
    wrong: Mapping[str, object] = field(default_factory=dict)


class Answers:
    """Right answers, and what known wrong methods give, case by case.

    A convolution's are computed here (``conv_oracle``, public). The others are looked up in
    ``stored``, keyed by (exercise name, case): the kit's data. The instructor's package
    computes them for any case instead (``autograder.grading.answer_key``).
    """

    def __init__(self, stored: Mapping[tuple[str, Case], Stored] | None = None) -> None:
        self.stored = dict(stored or {})

    # The kinds of exercise whose right answer this class can compute for any X and K.
    computed_kinds: frozenset[str] = frozenset({"conv"})

    def oracle(self, ex: Exercise, X: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
        if ex.kind != "conv":
            raise LookupError(f"{ex.name}: its answers come from data, case by case")
        return conv_oracle(ex.kernel_dims, X, K)

    def _stored(self, ex: Exercise, case: Case) -> Stored:
        try:
            return self.stored[(ex.name, case)]
        except KeyError:
            raise LookupError(f"{ex.name}: no answer for {case.describe()}") from None

    def expected(self, ex: Exercise, case: Case):
        """float64 CPU tensor, or int (None: the case must raise ValueError)."""
        if ex.kind in self.computed_kinds:
            return self.oracle(ex, *_inputs(case))
        return self._stored(ex, case).expected

    def magnitude(self, ex: Exercise, case: Case) -> torch.Tensor:
        """The answer for |X| and |K|: how large the terms of each sum are."""
        if ex.kind in self.computed_kinds:
            X, K = _inputs(case)
            return self.oracle(ex, X.abs(), K.abs())
        return self._stored(ex, case).magnitude

    def wrong(self, ex: Exercise, case: Case) -> Mapping[str, object]:
        if ex.kind in self.computed_kinds:
            return likely_mistakes(
                ex, *_inputs(case), lambda X, K: self.oracle(ex, X, K)
            )
        return self._stored(ex, case).wrong


PUBLIC = Answers()


@dataclass(frozen=True)
class Exercise:
    """A graded function: its ``grade_id`` is its name, as in the notebooks."""

    name: str
    section: str
    notebook: str
    kernel_dims: int
    cases: tuple[Case, ...]
    rubric: tuple[RubricItem, ...] = field(default=())
    stand_ins: tuple[
        str, ...
    ] = ()  # graded functions it calls: the grader supplies those
    # "conv": fn(X, K) is a cross-correlation; "compose": fn(K1, K2) is one kernel;
    # "count": fn(**params) is a whole number (or a ValueError for sizes that do not fit).
    kind: str = "conv"
    arg_names: tuple[str, str] = ("X", "K")
    # Library routines that would do the exercise for the student (course policy decides).
    forbidden: frozenset[str] = frozenset()
    # The visible test's inputs: the worked example, seeded ones, and ("invalid") shapes that
    # must raise ValueError.
    visible: tuple[Case, ...] = ()
    answers: Answers = PUBLIC
    # What the practice check adds under a written answer that reaches no matrix product (the
    # section's recommendation, never a rule; empty: nothing).
    product_tip: str = ""

    def oracle(self, X: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
        """The right answer for any X and K, in float64 on the CPU (where ``answers`` knows it)."""
        return self.answers.oracle(self, X, K)


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
        if kind.__module__ == "numpy" and getattr(Y, "shape", None) == ():
            try:  # a NumPy scalar (np.int64(84)): its value, for the count's message
                value = float(Y)  # type: ignore[arg-type]
            except (TypeError, ValueError, OverflowError):
                value = None
            if value is not None:
                return cls(
                    type_name=name,
                    shape=(),
                    values=torch.tensor([value], dtype=torch.float64),
                )
        if not isinstance(Y, torch.Tensor):
            shape = tuple(getattr(Y, "shape", ())) or None
            values = _array_values(Y) if kind.__module__ == "numpy" and shape else None
            return cls(
                type_name=name, shape=shape, values=values, inputs_unchanged=unchanged
            )
        plain = torch.Tensor.as_subclass(Y, torch.Tensor)
        return cls(
            type_name=name,
            shape=tuple(plain.shape),
            dtype=str(plain.dtype),
            device=str(plain.device),
            values=plain.detach().to("cpu", torch.float64).reshape(-1),
            inputs_unchanged=unchanged,
        )


def _array_values(Y) -> torch.Tensor | None:
    """A NumPy array's numbers, flat in float64 (as the sandbox's harness reports them), so
    that a message can say whether converting it back would be enough; None for an array of
    something else, or a large one."""
    try:
        if not 0 < Y.size <= 100_000:
            return None
        return torch.tensor([float(v) for v in Y.flat], dtype=torch.float64)
    except Exception:
        return None


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
    return _tolerance(K, dtype) * ex.oracle(X.abs(), K.abs())


def _tolerance(K: torch.Tensor, dtype: torch.dtype) -> float:
    n_terms = K.shape[-3] * K.shape[-2] * K.shape[-1]
    return (n_terms + 2) * torch.finfo(dtype).eps


@functools.lru_cache(maxsize=4096)
def _inputs(case: Case) -> tuple[torch.Tensor, torch.Tensor]:
    """A case's inputs on the CPU, the same for every student of a batch: drawn once.

    Shared between calls, so nothing may change these tensors in place.
    """
    return case.inputs()


@functools.lru_cache(maxsize=4096)
def _expected(ex: Exercise, case: Case):
    return ex.answers.expected(ex, case)


@functools.lru_cache(maxsize=4096)
def _bound(ex: Exercise, case: Case, dtype: torch.dtype) -> torch.Tensor:
    return _tolerance(_inputs(case)[1], dtype) * ex.answers.magnitude(ex, case)


@functools.lru_cache(maxsize=4096)
def _wrong(ex: Exercise, case: Case) -> Mapping[str, object]:
    return ex.answers.wrong(ex, case)


def _computed_in(returned: torch.dtype, given: torch.dtype) -> torch.dtype:
    """The precision a result is judged at: the coarser of the dtype it came back in and its
    input's. A float32 sum returned as float64 (``.double()``, a numpy round trip) carries
    float32's rounding, which no rubric item scores; a float16 result carries float16's."""
    return max(returned, given, key=lambda dtype: torch.finfo(dtype).eps)


def dtype_note(tried: str, returned: torch.dtype, given: torch.dtype) -> str:
    """The note (no points) for a right result that did not keep its input's dtype."""
    if torch.finfo(returned).eps > torch.finfo(given).eps:
        why = "right, but precision is lost"
    else:
        why = f"right at {given}'s precision; keep the input's dtype"
    return f"{tried}: returned {returned} for {given} input ({why})."


def _within(got: torch.Tensor, expected: torch.Tensor, bound: torch.Tensor) -> bool:
    return bool(((got - expected).abs() <= bound).all())


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


def missing_function_message(function: str, names: list[str]) -> str:
    """No ``function`` among ``names`` (what the student defined): the closest ones, if any."""
    close = difflib.get_close_matches(function, names, n=2, cutoff=0.6)
    message = f"no function named `{function}` was defined"
    if close:
        message += "; did you mean " + " or ".join(f"`{n[:80]}`" for n in close) + "?"
    return f"{function}: {message} The grader calls `{function}`: keep the name of the stub."


# The stub as released raises NotImplementedError: how every check words a function in that state.
NOT_WRITTEN = "not written yet (it raises NotImplementedError)"


def not_written(cases: Sequence[Case], returned: Sequence[Returned]) -> bool:
    """Whether every call that should compute something raised NotImplementedError: the stub
    as released, or a function whose body is still to come. The checks in the notebook say so
    in one line and let Run All go on; a function that computes anything is judged in full.
    (Shapes that must raise ValueError do not count: the stub's own shape check passes them.)"""
    computed = [
        got
        for case, got in zip(cases, returned, strict=True)
        if "invalid" not in case.tags
    ]
    return bool(computed) and all(
        (got.error or "").startswith("NotImplementedError") for got in computed
    )


def modified_input_message(ex: Exercise, case: Case) -> str:
    first, second = ex.arg_names
    return (
        f"{ex.name} on {case.describe(ex.arg_names)}: the function changed its input "
        f"{first} or {second} in place; work on copies."
    )


def _judge_count(ex: Exercise, case: Case, got: Returned, tried: str) -> Verdict:
    expected = _expected(ex, case)
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
    value = (
        got.values.item()
        if got.values is not None and got.values.numel() == 1
        else None
    )
    diagnosis = next(
        (why for why, wrong in _wrong(ex, case).items() if wrong == value),
        None,
    )
    wrong = f" It looks like {diagnosis}." if diagnosis else ""
    if got.type_name != "builtins.int" or value is None:
        # No points for the right number of another type: the task asks for an int (a
        # count is exact; a float is not past 2**53, a NumPy integer wraps past 2**63).
        short = got.type_name.rsplit(".", 1)[-1]
        if value is None:
            return Verdict(False, f"{tried}: expected an int, got {short}.{wrong}")
        shown, fix = _count_type(got.type_name, value)
        if value != expected:
            return Verdict(
                False,
                f"{tried}: got {shown}: not an int, and the number is wrong too (a cast "
                f"alone will not fix it).{wrong}",
            )
        return Verdict(
            False,
            f"{tried}: got {shown}: {fix}. The number is right; a count is an int.",
        )
    if value == expected:
        return Verdict(True, f"{tried}: correct.")
    return Verdict(False, f"{tried}: the number is wrong.{wrong}")


def _count_type(type_name: str, value: float) -> tuple[str, str]:
    """A count that is not an int, as the student would write it, and the fix."""
    short = type_name.rsplit(".", 1)[-1]
    whole = str(int(value)) if value.is_integer() else repr(value)
    if type_name == "builtins.float":
        return f"{value!r} (a float)", "return int(...), or count with //"
    if type_name.startswith("numpy."):
        return f"np.{short}({whole})", "wrap it in int(...)"
    return f"{whole} (a {short})", "return int(...)"


def _error_verdict(tried: str, error: str, stand_ins: tuple[str, ...] = ()) -> Verdict:
    if error.startswith("NotImplementedError"):
        return Verdict(False, f"{tried}: {NOT_WRITTEN}.")
    hint = next(
        (
            f" In this notebook `{name}` is the course's two-argument version `(X, K)`."
            for name in stand_ins
            # "TypeError: name() takes 2 positional arguments" here; in the grader, which
            # quotes no message, "TypeError at line 3: `... name(X, K, 1) ...`".
            if error.startswith("TypeError") and f"{name}(" in error
        ),
        "",
    )
    return Verdict(False, f"{tried}: raised {error.removesuffix(': ')}{hint}")


def _also_wrong(ex: Exercise, case: Case, got: Returned) -> tuple[str, str] | None:
    """For a result of the wrong type or dtype, what else is wrong: ("", "") if its numbers
    are right all the same, else (what, a sentence of diagnosis or ""); None where there are
    no numbers to compare. Judged at float32's precision or the input's, the coarser: the
    type says nothing of the precision it was computed in."""
    if got.values is None or got.shape is None:
        return None
    expected = _expected(ex, case)
    if got.shape != tuple(expected.shape):
        return f"its shape is wrong too: {got.shape}, not {tuple(expected.shape)}", ""
    values = got.values.reshape(expected.shape)
    bound = _bound(ex, case, _computed_in(torch.float32, case.dtype))
    if bool(torch.isfinite(values).all()) and _within(values, expected, bound):
        return "", ""
    diagnosis = next(
        (
            why
            for why, wrong in _wrong(ex, case).items()
            if _within(values, wrong, bound)
        ),
        None,
    )
    return (
        "its values are wrong too",
        f" It looks like {diagnosis}." if diagnosis else "",
    )


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
        short = got.type_name.rsplit(".", 1)[-1]
        wrong = f"{tried}: expected a torch.Tensor, got {short}"
        if not got.type_name.startswith("numpy"):
            return Verdict(False, wrong + ".")
        also = _also_wrong(ex, case, got)
        if also is None:  # nothing to compare: the fix, as far as it can be told
            return Verdict(False, f"{wrong}. Convert it back with torch.as_tensor.")
        what, diagnosis = also
        if not what:
            return Verdict(
                False,
                f"{wrong}: its values are right; convert it back with torch.as_tensor.",
            )
        return Verdict(
            False,
            f"{wrong}, and {what} (converting it back will not fix that).{diagnosis}",
        )
    X = _inputs(case)[0]
    expected = _expected(ex, case)
    if got.shape != tuple(expected.shape):
        hint = _shape_hint(ex, X, tuple(expected.shape), got.shape or ())
        return Verdict(
            False,
            f"{tried}: expected shape {tuple(expected.shape)}, got {got.shape}.{hint}",
        )
    dtype = FLOAT_DTYPES.get(got.dtype or "")
    if dtype is None or got.values is None:
        wrong = f"{tried}: expected a floating-point tensor, got dtype {got.dtype}"
        also = _also_wrong(ex, case, got)
        if also is None:
            return Verdict(False, wrong + ".")
        what, diagnosis = also
        if not what:
            return Verdict(
                False,
                f"{wrong}: its values are right; keep the input's dtype (build the "
                "result from X, as X.new_zeros does).",
            )
        return Verdict(
            False, f"{wrong}, and {what} (a cast alone will not fix that).{diagnosis}"
        )
    values = got.values.reshape(expected.shape)
    if not bool(torch.isfinite(values).all()):
        return Verdict(False, f"{tried}: the result contains NaN or infinity.")
    bound = _bound(ex, case, _computed_in(dtype, case.dtype))
    if not _within(values, expected, bound):
        worst = (values - expected).abs().max().item()
        diagnosis = next(
            (
                why
                for why, wrong in _wrong(ex, case).items()
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
        notes.append(dtype_note(tried, dtype, case.dtype))
    if got.device is not None and got.device != input_device:
        notes.append(
            f"{tried}: returned a tensor on {got.device} for input on {input_device}."
        )
    return Verdict(True, f"{tried}: correct.", tuple(notes))


@dataclass(frozen=True)
class ItemScore:
    """One rubric item's points, in the nbgrader test cell ``cell``."""

    cell: str
    item: str
    score: float
    max_score: float
    status: str
    message: str


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
    policy_status, policy_message = policy_outcome(ex, flagged, zero)
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


def policy_outcome(ex: Exercise, verdict: PolicyVerdict, zero: bool) -> tuple[str, str]:
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
