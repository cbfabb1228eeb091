"""The instructor's package of the D2L 7.4 module: references, hidden cases, grader, release.

Never installed where students work: it holds the solutions. Students get the check kit
(``autograder/kit/``, built into the release notebooks by ``python -m autograder release``).
"""

from autograder.grading.checks import check
from autograder.grading.exercises import EXERCISES, Case, Exercise
from autograder.grading.reference import (
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
]
