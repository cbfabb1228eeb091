"""The graded exercises as data: functions, hidden inputs, and the rubric that gives points.

Every input is drawn from a seeded generator on the CPU (or written out, for the book's worked
examples) and only then moved to a device, so a case is the same numbers on every machine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

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

    def describe(self) -> str:
        dtype = str(self.dtype).removeprefix("torch.")
        what = "the worked example: " if "example" in self.tags else ""
        return (
            f"{what}X of shape {self.x_shape} and K of shape {self.k_shape} ({dtype})"
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

    def oracle(self, X: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
        """PyTorch's own conv2d (a cross-correlation), in float64 on the CPU."""
        X64 = X.detach().to("cpu", torch.float64)
        K64 = K.detach().to("cpu", torch.float64)
        if self.kernel_dims == 3:
            return F.conv2d(X64[None], K64[None])[0, 0]
        return F.conv2d(X64[None], K64)[0]


def _rubric(name: str, shape_item: tuple[str, str]) -> tuple[RubricItem, ...]:
    example, hidden = f"test_{name}_example", f"test_{name}_hidden"
    return (
        RubricItem(
            example, "example", 1.0, "the worked example (with other inputs right too)"
        ),
        RubricItem(hidden, "random", 0.5, "random inputs of several shapes"),
        RubricItem(hidden, shape_item[0], 0.5, shape_item[1]),
        RubricItem(hidden, "channels", 0.5, "one channel and many channels"),
        RubricItem(hidden, "untouched", 0.5, "inputs left unchanged"),
    )


def _tags(*names: str) -> frozenset[str]:
    return frozenset(names)


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
    )
}
