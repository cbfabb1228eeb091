"""Everything graded in the D2L 7.4 module: references, hidden cases, checks, release."""

from autograder.checks import check, practice
from autograder.exercises import EXERCISES, Case, Exercise
from autograder.reference import (
    corr2d_multi_in,
    corr2d_multi_in_out,
    corr2d_multi_in_out_1x1,
)

__all__ = [
    "EXERCISES",
    "Case",
    "Exercise",
    "check",
    "corr2d_multi_in",
    "corr2d_multi_in_out",
    "corr2d_multi_in_out_1x1",
    "practice",
]
