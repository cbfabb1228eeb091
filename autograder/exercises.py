"""The graded exercises as data: functions, hidden inputs, and the rubric that gives points.

Every input is drawn from a seeded generator on the CPU (or written out, for the book's worked
examples) and only then moved to a device, so a case is the same numbers on every machine.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from autograder import reference

# Library routines that compute a convolution for you. An exercise that asks for the computation
# by hand loses its points for calling one (course policy: ``TrustedAutograde.conv_policy``).
# As ``policy.check_policy`` reads them: a plain name matches any name or attribute so called
# (as the student wrote it, or a component of the dotted path it resolves to); a dotted entry is
# an fnmatch pattern over the resolved path (``xcorr`` from ``from torch.nn.functional import
# conv2d as xcorr`` is ``torch.nn.functional.conv2d``); ``!`` marks an exception to the patterns.
BUILTIN_CONVOLUTIONS = frozenset(
    {
        *("conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d"),
        *("conv_transpose3d", "Conv1d", "Conv2d", "Conv3d", "LazyConv1d", "LazyConv2d"),
        *("LazyConv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"),
        *("LazyConvTranspose1d", "LazyConvTranspose2d", "LazyConvTranspose3d"),
        # Whatever else a library calls a convolution: torch.convolution, torch._convolution,
        # torch.conv_tbc, torch._C._nn.thnn_conv2d, torch.nn.grad.conv2d_weight,
        # torch.ops.aten.convolution, scipy.signal.convolve2d, numpy.convolve, ...
        "*conv*",
        "!*convert*",
        "*correlate*",  # scipy.signal.correlate2d, numpy.correlate: the exercise itself
    }
)
# im2col by the library: F.unfold (wherever it is re-exported, d2l.F.unfold too), nn.Unfold,
# torch._C._nn.im2col. A tensor's own .unfold makes windows, and is fine, by any name.
LIBRARY_IM2COL = frozenset(
    {
        "Unfold",
        "*.unfold",
        "*im2col*",
        "!*Tensor*.unfold",
        "!torch.ops.aten.unfold",
        "!torch.ops.aten.unfold.*",
    }
)

# The worked examples of the chapters (Fig. 7.4.1 and the K, K + 1, K + 2 stack).
X_FIG_7_4_1 = (
    ((0.0, 1.0, 2.0), (3.0, 4.0, 5.0), (6.0, 7.0, 8.0)),
    (
        (1.0, 2.0, 3.0),
        (4.0, 5.0, 6.0),
        (7.0, 8.0, 9.0),
    ),
)
K_FIG_7_4_1 = ((0.0, 1.0), (2.0, 3.0)), ((1.0, 2.0), (3.0, 4.0))
K_STACK = tuple(
    tuple(tuple(tuple(v + s for v in row) for row in ch) for ch in K_FIG_7_4_1)
    for s in (0, 1, 2)
)
X_FIG_7_4_2 = tuple(
    tuple(tuple(float((9 * c + 3 * r + w) % 5) for w in range(3)) for r in range(3))
    for c in range(3)
)
K_FIG_7_4_2 = (((1.0,),), ((2.0,),), ((-1.0,),)), (((0.0,),), ((1.0,),), ((3.0,),))
# Exercise 4's worked example: a 2 x 2 box blur, then a horizontal difference [1, -1].
K_BOX = ((((1.0, 1.0), (1.0, 1.0)),),)
K_DIFFERENCE = ((((1.0, -1.0),),),)
EXERCISES_NOTEBOOK = "05-exercises.ipynb"


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
            gen = torch.Generator().manual_seed(self.seed)
            X = torch.randn(self.x_shape, generator=gen, dtype=self.dtype)
            K = torch.randn(self.k_shape, generator=gen, dtype=self.dtype)
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


@dataclass(frozen=True)
class RubricItem:
    """Points for passing every case tagged ``tag``, counted in the nbgrader test cell ``cell``."""

    cell: str
    tag: str
    points: float
    description: str


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
    forbidden: frozenset[str] = BUILTIN_CONVOLUTIONS

    def oracle(self, X: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
        """The right answer in float64 on the CPU: PyTorch's conv2d is the ground truth."""
        X64 = X.detach().to("cpu", torch.float64)
        K64 = K.detach().to("cpu", torch.float64)
        if self.kind == "compose":
            return reference.compose_kernels(X64, K64)
        if self.kernel_dims == 3:
            return F.conv2d(X64[None], K64[None])[0, 0]
        return F.conv2d(X64[None], K64)[0]

    def count_output_size(self, case: Case) -> tuple[int, int]:
        """Output height and width for a counting case (sizes that fit only)."""
        p = dict(case.params)
        return reference.conv2d_output_size(
            p["h"], p["w"], p["k_h"], p["k_w"], p["padding"], p["stride"]
        )

    def count(self, case: Case) -> int | None:
        """The right number for a counting case, or None where the sizes must raise ValueError."""
        try:
            return getattr(reference, self.name)(**dict(case.params))
        except ValueError:
            return None


def reseeded(cases: tuple[Case, ...], salt: str) -> tuple[Case, ...]:
    """The same cases with their random inputs drawn from seeds derived from ``salt``.

    The grader uses the course's secret salt (``TrustedAutograde.seed_salt``), so that nobody can
    reproduce the graded inputs from this public file; the practice check uses a public salt. A
    counting case keeps its geometry (the edge it tests) and gets channel counts derived from
    the salt, so a table of answers to the sizes above is no answer either. The worked examples
    stay as written, and no salt ("") keeps everything above.
    """
    if not salt:
        return cases

    def derived(key: str) -> int:
        digest = hashlib.sha256(f"{salt}/{key}".encode()).digest()
        return int.from_bytes(digest[:4], "big")

    def reseed(case: Case) -> Case:
        if not case.params:
            return dataclasses.replace(case, seed=derived(str(case.seed)))
        params = dict(case.params)
        for name in ("c_i", "c_o"):
            params[name] = 1 + derived(f"{case.params}/{name}") % 64
        return dataclasses.replace(case, params=tuple(params.items()))

    return tuple(
        case
        if case.values is not None or ("example" in case.tags and case.params)
        else reseed(case)
        for case in cases
    )


def _rubric(name: str, shape_item: tuple[str, str]) -> tuple[RubricItem, ...]:
    example, hidden = f"test_{name}_example", f"test_{name}_hidden"
    return (
        RubricItem(
            example,
            "example",
            1.0,
            "the worked example, and at least one other input right",
        ),
        RubricItem(hidden, "random", 0.5, "random inputs of several shapes"),
        RubricItem(hidden, shape_item[0], 0.5, shape_item[1]),
        RubricItem(hidden, "channels", 0.5, "one channel and many channels"),
        RubricItem(hidden, "untouched", 0.5, "inputs left unchanged"),
    )


def _tags(*names: str) -> frozenset[str]:
    return frozenset(names)


def _count_rubric(name: str) -> tuple[RubricItem, ...]:
    example, hidden = f"test_{name}_example", f"test_{name}_hidden"
    return (
        RubricItem(
            example,
            "example",
            0.5,
            "the worked example, and at least one other size right",
        ),
        RubricItem(hidden, "random", 0.5, "assorted sizes, no padding, stride 1"),
        RubricItem(hidden, "padding-stride", 0.5, "padding and stride"),
        RubricItem(
            hidden,
            "edge",
            0.5,
            "edge cases: kernel as large as the input, stride larger than the kernel, "
            "sizes that do not fit",
        ),
    )


def _count_cases() -> tuple[Case, ...]:
    """Sizes for the counting exercises: (c_i, c_o, h, w, k_h, k_w, padding, stride)."""
    table = (
        ((2, 3, 3, 3, 2, 2, 0, 1), "example"),
        ((3, 64, 32, 32, 3, 3, 0, 1), "random"),
        ((16, 8, 28, 20, 5, 3, 0, 1), "random"),
        ((3, 16, 32, 32, 3, 3, 1, 1), "padding-stride"),
        ((8, 4, 15, 17, 3, 5, 2, 2), "padding-stride"),
        ((1, 1, 224, 224, 7, 7, 3, 2), "padding-stride"),
        ((4, 2, 5, 5, 5, 5, 0, 1), "edge"),  # kernel as large as the input: one output
        ((2, 3, 10, 9, 2, 2, 0, 3), "edge"),  # stride larger than the kernel
        ((1, 2, 3, 3, 5, 5, 1, 1), "edge"),  # too large, but fits once padded
        ((1, 1, 3, 3, 5, 5, 0, 1), "edge invalid"),  # does not fit: ValueError
    )
    keys = ("c_i", "c_o", "h", "w", "k_h", "k_w", "padding", "stride")
    return tuple(
        Case(
            (), (), 0, _tags(*tags.split()), params=tuple(zip(keys, sizes, strict=True))
        )
        for sizes, tags in table
    )


def _count_exercise(name: str, extra: tuple[tuple[str, int], ...] = ()) -> Exercise:
    cases = _count_cases()
    if extra:  # the same sizes once more with the extra argument (e.g. float64 values)
        cases += tuple(
            dataclasses.replace(case, params=(*case.params, *extra))
            for case in cases
            if "example" not in case.tags and "edge" not in case.tags
        )
    return Exercise(
        name=name,
        section="7.4.5",
        notebook=EXERCISES_NOTEBOOK,
        kernel_dims=0,
        cases=cases,
        rubric=_count_rubric(name),
        kind="count",
        forbidden=frozenset(),
    )


EXERCISES: dict[str, Exercise] = {
    ex.name: ex
    for ex in (
        Exercise(
            name="corr2d_multi_in",
            section="7.4.1",
            notebook="01-multiple-input-channels.ipynb",
            kernel_dims=3,
            cases=(
                Case(
                    (2, 3, 3),
                    (2, 2, 2),
                    0,
                    _tags("example"),
                    values=(X_FIG_7_4_1, K_FIG_7_4_1),
                ),
                Case((1, 5, 5), (1, 3, 3), seed=101, tags=_tags("random", "channels")),
                Case(
                    (3, 6, 7), (3, 2, 3), seed=102, tags=_tags("random", "non-square")
                ),
                Case(
                    (8, 5, 4), (8, 3, 1), seed=103, tags=_tags("non-square", "channels")
                ),
                Case((2, 4, 4), (2, 4, 4), seed=104, tags=_tags("random")),
                Case(
                    (4, 7, 5),
                    (4, 2, 2),
                    seed=105,
                    tags=_tags("random"),
                    dtype=torch.float64,
                ),
            ),
            rubric=_rubric("corr2d_multi_in", ("non-square", "non-square kernels")),
        ),
        Exercise(
            name="corr2d_multi_in_out",
            section="7.4.2",
            notebook="02-multiple-output-channels.ipynb",
            kernel_dims=4,
            cases=(
                Case(
                    (2, 3, 3),
                    (3, 2, 2, 2),
                    0,
                    _tags("example"),
                    values=(X_FIG_7_4_1, K_STACK),
                ),
                Case(
                    (3, 5, 5), (1, 3, 2, 2), seed=201, tags=_tags("random", "channels")
                ),
                Case(
                    (1, 6, 6), (4, 1, 3, 3), seed=202, tags=_tags("random", "channels")
                ),
                Case(
                    (5, 7, 6),
                    (3, 5, 2, 3),
                    seed=203,
                    tags=_tags("random", "non-square"),
                ),
                Case(
                    (2, 6, 5),
                    (2, 2, 1, 4),
                    204,
                    _tags("non-square"),
                    dtype=torch.float64,
                ),
            ),
            rubric=_rubric("corr2d_multi_in_out", ("non-square", "non-square kernels")),
            stand_ins=("corr2d_multi_in",),
        ),
        Exercise(
            name="corr2d_multi_in_out_1x1",
            section="7.4.3",
            notebook="03-1x1-convolution.ipynb",
            kernel_dims=4,
            cases=(
                Case(
                    (3, 3, 3),
                    (2, 3, 1, 1),
                    0,
                    _tags("example"),
                    values=(X_FIG_7_4_2, K_FIG_7_4_2),
                ),
                Case((3, 4, 4), (2, 3, 1, 1), seed=301, tags=_tags("random")),
                Case(
                    (1, 5, 3),
                    (4, 1, 1, 1),
                    seed=302,
                    tags=_tags("non-square", "channels"),
                ),
                Case(
                    (16, 6, 5),
                    (8, 16, 1, 1),
                    seed=303,
                    tags=_tags("random", "channels"),
                ),
                Case(
                    (5, 3, 7),
                    (1, 5, 1, 1),
                    304,
                    _tags("non-square", "channels"),
                    dtype=torch.float64,
                ),
            ),
            rubric=_rubric(
                "corr2d_multi_in_out_1x1", ("non-square", "non-square images")
            ),
            # The notebook defines corr2d_multi_in_out too, so an answer may build on it.
            stand_ins=("corr2d_multi_in_out",),
        ),
        Exercise(
            name="corr2d_multi_in_out_matmul",
            section="7.4.5",
            notebook=EXERCISES_NOTEBOOK,
            kernel_dims=4,
            cases=(
                Case(
                    (2, 3, 3),
                    (3, 2, 2, 2),
                    0,
                    _tags("example"),
                    values=(X_FIG_7_4_1, K_STACK),
                ),
                Case((3, 6, 6), (2, 3, 3, 3), seed=501, tags=_tags("random")),
                Case(
                    (1, 8, 7), (4, 1, 5, 5), seed=502, tags=_tags("random", "channels")
                ),
                Case(
                    (4, 7, 9),
                    (3, 4, 2, 4),
                    seed=503,
                    tags=_tags("random", "non-square"),
                ),
                Case((6, 5, 5), (6, 6, 1, 1), seed=504, tags=_tags("channels")),
                Case(
                    (2, 6, 5),
                    (2, 2, 3, 1),
                    505,
                    _tags("non-square"),
                    dtype=torch.float64,
                ),
            ),
            rubric=_rubric(
                "corr2d_multi_in_out_matmul", ("non-square", "non-square kernels")
            ),
            forbidden=BUILTIN_CONVOLUTIONS | LIBRARY_IM2COL,
        ),
        _count_exercise("conv2d_multiplications"),
        _count_exercise("conv2d_additions"),
        _count_exercise("conv2d_memory", extra=(("bytes_per_value", 8),)),
        Exercise(
            name="compose_kernels",
            section="7.4.5",
            notebook=EXERCISES_NOTEBOOK,
            kernel_dims=4,
            cases=(
                Case(
                    (1, 1, 2, 2),
                    (1, 1, 1, 2),
                    0,
                    _tags("example"),
                    values=(K_BOX, K_DIFFERENCE),
                ),
                Case(
                    (1, 1, 3, 3),
                    (1, 1, 2, 2),
                    seed=601,
                    tags=_tags("random", "channels"),
                ),
                Case(
                    (3, 2, 2, 3),
                    (4, 3, 3, 1),
                    seed=602,
                    tags=_tags("random", "non-square", "channels"),
                ),
                Case((2, 3, 1, 1), (5, 2, 3, 3), seed=603, tags=_tags("random")),
                Case(
                    (4, 4, 3, 2),
                    (2, 4, 2, 2),
                    604,
                    _tags("non-square", "channels"),
                    dtype=torch.float64,
                ),
            ),
            rubric=_rubric("compose_kernels", ("non-square", "non-square kernels")),
            kind="compose",
            arg_names=("K1", "K2"),
            forbidden=frozenset(),  # conv2d may well compose two kernels: that is the point
        ),
    )
}
