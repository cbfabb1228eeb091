"""The instructor's answer key: right answers and known wrong ones for any case, from the
reference solutions. Never shipped to students: the kit gets the values for its own inputs only.
"""

from __future__ import annotations

import math

import torch

from autograder.grading import reference
from autograder.kit.judging import Answers, Case, Exercise


class ReferenceAnswers(Answers):
    """``Answers`` computed from ``reference.py`` for every kind of exercise: composed kernels
    by the reference's ``compose_kernels``, counts by the reference's formulas."""

    computed_kinds = frozenset({"conv", "compose"})

    def oracle(self, ex: Exercise, X: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
        if ex.kind == "compose":
            return reference.compose_kernels(
                X.detach().to("cpu", torch.float64), K.detach().to("cpu", torch.float64)
            )
        return super().oracle(ex, X, K)

    def expected(self, ex: Exercise, case: Case):
        if ex.kind == "count":
            try:
                return getattr(reference, ex.name)(**dict(case.params))
            except ValueError:
                return None
        return super().expected(ex, case)

    def wrong(self, ex: Exercise, case: Case) -> dict:
        if ex.kind == "count":
            return (
                count_mistakes(ex, case) if self.expected(ex, case) is not None else {}
            )
        return super().wrong(ex, case)


REFERENCE = ReferenceAnswers()


def count_mistakes(ex: Exercise, case: Case) -> dict[str, int]:
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
    out_values = c_o * math.prod(
        reference.conv2d_output_size(h, w, k_h, k_w, pad, stride)
    )
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
