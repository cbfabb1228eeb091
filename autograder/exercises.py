"""The graded exercises as data: which function, how many points, which hidden inputs.

Every input is drawn from a seeded generator on the CPU and only then moved to the device,
so a case produces the same numbers on every machine and on CPU or CUDA alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Case:
    """One hidden input pair. ``describe()`` tells a student the shapes, never the values."""

    x_shape: tuple[int, ...]
    k_shape: tuple[int, ...]
    seed: int
    dtype: torch.dtype = torch.float32

    def inputs(
        self, device: torch.device | str = "cpu"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        gen = torch.Generator().manual_seed(self.seed)
        X = torch.randn(self.x_shape, generator=gen, dtype=self.dtype)
        K = torch.randn(self.k_shape, generator=gen, dtype=self.dtype)
        return X.to(device), K.to(device)

    def describe(self) -> str:
        dtype = str(self.dtype).removeprefix("torch.")
        return f"X of shape {self.x_shape} and K of shape {self.k_shape} ({dtype})"


@dataclass(frozen=True)
class Exercise:
    """A graded function: its ``grade_id`` is its name, as in the notebooks."""

    name: str
    section: str
    kernel_dims: int
    cases: tuple[Case, ...]

    def oracle(self, X: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
        """PyTorch's own conv2d (a cross-correlation), in float64 on the CPU."""
        X64 = X.detach().to("cpu", torch.float64)
        K64 = K.detach().to("cpu", torch.float64)
        if self.kernel_dims == 3:
            return F.conv2d(X64[None], K64[None])[0, 0]
        return F.conv2d(X64[None], K64)[0]


EXERCISES: dict[str, Exercise] = {
    ex.name: ex
    for ex in (
        Exercise(
            name="corr2d_multi_in",
            section="7.4.1",
            kernel_dims=3,
            cases=(
                Case((1, 5, 5), (1, 3, 3), seed=101),
                Case((3, 6, 7), (3, 2, 3), seed=102),
                Case((8, 5, 4), (8, 3, 1), seed=103),
                Case((2, 4, 4), (2, 4, 4), seed=104),
                Case((4, 7, 5), (4, 2, 2), seed=105, dtype=torch.float64),
            ),
        ),
        Exercise(
            name="corr2d_multi_in_out",
            section="7.4.2",
            kernel_dims=4,
            cases=(
                Case((3, 5, 5), (1, 3, 2, 2), seed=201),
                Case((1, 6, 6), (4, 1, 3, 3), seed=202),
                Case((5, 7, 6), (3, 5, 2, 3), seed=203),
                Case((2, 6, 5), (2, 2, 1, 4), seed=204, dtype=torch.float64),
            ),
        ),
        Exercise(
            name="corr2d_multi_in_out_1x1",
            section="7.4.3",
            kernel_dims=4,
            cases=(
                Case((3, 4, 4), (2, 3, 1, 1), seed=301),
                Case((1, 5, 3), (4, 1, 1, 1), seed=302),
                Case((16, 6, 5), (8, 16, 1, 1), seed=303),
                Case((5, 3, 7), (5, 5, 1, 1), seed=304, dtype=torch.float64),
            ),
        ),
    )
}
