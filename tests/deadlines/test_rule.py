"""The late-penalty rule, on dates an instructor would write."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from autograder.deadlines.rule import LateRule, seconds_late

DUE = datetime(2026, 12, 4, 17, 0)
TEN_A_DAY = LateRule(percent_per_day=10, cap_percent=30)


def at(**delta: float) -> datetime:
    return DUE + timedelta(**delta)


@pytest.mark.parametrize(
    ("submitted", "fraction"),
    [
        (at(hours=-1), 0.0),
        (DUE, 0.0),  # on the second is on time
        (at(seconds=1), 0.1),  # a started day counts
        (at(days=1), 0.1),
        (at(days=1, minutes=1), 0.2),
        (at(days=2, hours=5), 0.3),
        (at(days=9), 0.3),  # capped
    ],
)
def test_per_day_percentage_counts_started_days_up_to_the_cap(submitted, fraction):
    assert TEN_A_DAY.fraction(submitted, DUE) == pytest.approx(fraction)


def test_an_extension_moves_the_due_date_for_that_student_only():
    three_days = timedelta(days=3)
    assert TEN_A_DAY.fraction(at(days=2), DUE, three_days) == 0.0
    assert TEN_A_DAY.fraction(at(days=3, hours=1), DUE, three_days) == pytest.approx(
        0.1
    )
    assert TEN_A_DAY.fraction(at(days=2), DUE) == pytest.approx(0.2)


def test_zero_after_a_date_takes_everything_and_an_extension_moves_that_date_too():
    rule = LateRule(percent_per_day=10, zero_after=at(days=3))
    assert rule.fraction(at(days=2), DUE) == pytest.approx(0.2)
    assert rule.fraction(at(days=3, seconds=1), DUE) == 1.0
    assert rule.fraction(
        at(days=3, seconds=1), DUE, timedelta(days=1)
    ) == pytest.approx(0.3)


def test_zero_when_late_is_nbgraders_zero_rule():
    rule = LateRule(zero_when_late=True)
    assert rule.fraction(at(seconds=1), DUE) == 1.0 and rule.fraction(DUE, DUE) == 0.0


def test_no_due_date_or_no_known_time_is_never_late():
    assert TEN_A_DAY.fraction(None, DUE) == 0.0
    assert TEN_A_DAY.fraction(at(days=5), None) == 0.0
    assert seconds_late(None, DUE, None) == 0.0


def test_aware_times_are_compared_in_utc():
    paris = timezone(timedelta(hours=1))
    submitted = datetime(2026, 12, 4, 18, 30, tzinfo=paris)  # 17:30 UTC
    assert seconds_late(submitted, DUE, None) == 1800


@pytest.mark.parametrize(
    ("score", "fraction", "penalty"),
    [(10, 0.2, 2), (10, 1.0, 10), (0, 0.5, 0), (None, 0.5, 0), (-3, 0.5, 0)],
)
def test_the_penalty_is_a_share_of_the_earned_score(score, fraction, penalty):
    assert LateRule.penalty(score, fraction) == pytest.approx(penalty)


@pytest.mark.parametrize(
    "settings",
    [
        {"percent_per_day": -1},
        {"percent_per_day": 101},
        {"cap_percent": float("nan")},
        {"percent_per_day": float("inf")},
    ],
)
def test_a_rule_outside_zero_to_a_hundred_percent_is_refused(settings):
    with pytest.raises(ValueError):
        LateRule(**settings)


def test_the_rule_describes_itself_for_the_report():
    assert LateRule().describe() == "no late penalty"
    assert TEN_A_DAY.describe() == "10% of the score per started day late, at most 30%"
    assert LateRule(zero_when_late=True).describe() == "a late submission scores zero"
