"""The instructor's package of the D2L 7.4 module: references, hidden cases, grader, release.

Never installed where students work: it holds the solutions. Students get the check kit
(``autograder/kit/``, built into the release notebooks by ``python -m autograder release``).

The names below load on first use (PEP 562): they bring in torch (about 1.5 s of CPU), which
the exports, the calendar, the formgrader's page filters, nbgrader's commands and the LTI tools
never need, and each of those starts a fresh process.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from autograder.grading.checks import check
    from autograder.grading.exercises import EXERCISES, Case, Exercise
    from autograder.grading.reference import (
        corr2d_multi_in,
        corr2d_multi_in_out,
        corr2d_multi_in_out_1x1,
    )

_HOME = {
    "check": "autograder.grading.checks",
    "EXERCISES": "autograder.grading.exercises",
    "Case": "autograder.grading.exercises",
    "Exercise": "autograder.grading.exercises",
    "corr2d_multi_in": "autograder.grading.reference",
    "corr2d_multi_in_out": "autograder.grading.reference",
    "corr2d_multi_in_out_1x1": "autograder.grading.reference",
}
__all__ = [
    "EXERCISES",
    "Case",
    "Exercise",
    "check",
    "corr2d_multi_in",
    "corr2d_multi_in_out",
    "corr2d_multi_in_out_1x1",
]


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'autograder' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOME[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOME])
