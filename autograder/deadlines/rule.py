"""The late-penalty rule: how late a submission is, and what share of its score that costs.

Pure: dates in, numbers out. The one rule of a course is none, a percentage per started day
late with a cap, zero after a date, or a percentage per day until a date and zero after it. A
student's extension moves both the due date and the zero-after date: an extension shifts the
student's whole calendar.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

DAY_SECONDS = 86400.0
# ``zero_after`` spelled this way: any late submission scores zero (nbgrader's own "zero").
AT_DUE = "due"


def utc(moment: datetime) -> datetime:
    """A naive UTC datetime, as nbgrader's gradebook stores them (an aware one is converted)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


@dataclass(frozen=True)
class LateRule:
    """The course's rule (``c.CourseCalendar`` in ``nbgrader_config.py``).

    ``percent_per_day``: of the earned score, per started day (24 h) late; ``cap_percent``: the
    most the per-day penalty takes; ``zero_after``: a late submission after this moment (moved by
    the student's extension) scores zero, ``None`` for never; ``zero_when_late``: any late
    submission scores zero.
    """

    percent_per_day: float = 0.0
    cap_percent: float = 100.0
    zero_after: datetime | None = None
    zero_when_late: bool = False

    def __post_init__(self) -> None:
        if not (
            math.isfinite(self.percent_per_day) and 0 <= self.percent_per_day <= 100
        ):
            raise ValueError(
                f"percent_per_day must be 0 to 100, not {self.percent_per_day!r}"
            )
        if not (math.isfinite(self.cap_percent) and 0 <= self.cap_percent <= 100):
            raise ValueError(f"cap_percent must be 0 to 100, not {self.cap_percent!r}")

    @property
    def is_none(self) -> bool:
        return (
            self.percent_per_day == 0
            and self.zero_after is None
            and not self.zero_when_late
        )

    def describe(self) -> str:
        """The rule in a sentence, for the class report and the feedback."""
        if self.zero_when_late:
            return "a late submission scores zero"
        parts = []
        if self.percent_per_day:
            parts.append(
                f"{self.percent_per_day:g}% of the score per started day late"
                + (f", at most {self.cap_percent:g}%" if self.cap_percent < 100 else "")
            )
        if self.zero_after is not None:
            parts.append(f"zero after {self.zero_after:%Y-%m-%d %H:%M} UTC")
        return "; ".join(parts) or "no late penalty"

    def fraction(
        self,
        submitted: datetime | None,
        due: datetime | None,
        extension: timedelta | None = None,
    ) -> float:
        """The share of the score a submission loses, from 0 to 1.

        No due date or no known submission time: not late (as nbgrader's
        ``total_seconds_late``).
        """
        if submitted is None or due is None:
            return 0.0
        shift = extension or timedelta(0)
        late = (utc(submitted) - (utc(due) + shift)).total_seconds()
        if late <= 0:
            return 0.0
        if self.zero_when_late:
            return 1.0
        if (
            self.zero_after is not None
            and utc(submitted) > utc(self.zero_after) + shift
        ):
            return 1.0
        days = math.ceil(late / DAY_SECONDS)
        return min(self.cap_percent, self.percent_per_day * days) / 100.0

    @staticmethod
    def penalty(score: float, fraction: float) -> float:
        """Points taken off ``score``: never more than the score, never below zero."""
        earned = max(0.0, float(score or 0.0))
        return min(earned, max(0.0, earned * fraction))


def seconds_late(
    submitted: datetime | None, due: datetime | None, extension: timedelta | None
) -> float:
    """How late, in seconds (0 when on time or unknown), as nbgrader's ``total_seconds_late``."""
    if submitted is None or due is None:
        return 0.0
    student_due = utc(due) + (extension or timedelta(0))
    return max(0.0, (utc(submitted) - student_due).total_seconds())
