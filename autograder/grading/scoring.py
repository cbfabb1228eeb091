"""Scores on the grader's side: the kit's judging (``autograder.kit.judging``) and what only
the instructor's process needs (written answers, per-cell totals).

The judging itself lives in the kit, which the student's notebooks carry too, so that the
visible tests, the practice check and the feedback page word a mistake the same way.
"""

from __future__ import annotations

from autograder.kit.judging import (
    FLOAT_DTYPES,
    ItemScore,
    Returned,
    Verdict,
    error_bound,
    judge,
    modified_input_message,
    score_exercise,
)

__all__ = [
    "EARNED",
    "FLOAT_DTYPES",
    "MANUAL",
    "MANUAL_MESSAGE",
    "ItemScore",
    "Returned",
    "Verdict",
    "cell_totals",
    "error_bound",
    "judge",
    "modified_input_message",
    "score_exercise",
]


# The status of a written answer: the instructor grades it in formgrader. Its message, unless
# the grader has a note for the instructor (an answer found after its question: ``recovery``).
MANUAL = "needs-manual-grade"
MANUAL_MESSAGE = "graded by your instructor"


# Statuses of an item that earned its points: ``recovered-cell`` is a pass whose answer cell
# lost its id (``recovery``).
EARNED = frozenset({"passed", "recovered-cell"})


def cell_totals(items: list[ItemScore]) -> dict[str, tuple[float, float, str, str]]:
    """Per test cell: score, max score, and the status and message of the first lost item
    (else of the first recovered one, else ``passed``)."""
    totals: dict[str, tuple[float, float, str, str]] = {}
    for item in items:
        score, max_score, status, message = totals.get(
            item.cell, (0.0, 0.0, "passed", "")
        )
        if status in EARNED and item.status not in EARNED:
            status, message = item.status, item.message
        elif status == "passed" and item.status != "passed":
            status, message = item.status, item.message
        totals[item.cell] = (
            score + item.score,
            max_score + item.max_score,
            status,
            message,
        )
    return totals
