"""Properties of the course calendar over generated classes (hypothesis, derandomized: the same
examples on every run), on a real nbgrader gradebook where the penalties are recorded and on
the exports that read it.

- Moving the due date or granting an extension recomputes every penalty: applying the new
  calendar to a graded gradebook leaves exactly what applying it to a fresh one does.
- Doing it twice changes nothing.
- A penalty never makes a score negative and never raises it; a later due date or a longer
  extension never costs more.
"""

from __future__ import annotations

import dataclasses
import functools
import shutil
from datetime import datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nbgrader.api import Gradebook

from autograder.deadlines.extensions import Extension
from autograder.deadlines.rule import LateRule
from autograder.deadlines.schedule import Calendar
from autograder.deadlines.times import SubmissionTime
from autograder.integration.gradebook import apply_penalties
from autograder.outputs.exports import collect

STUDENTS = ("ada", "ben", "cy", "dee")
NOTEBOOKS = ("nb1", "nb2")
ASSIGNMENT = "channels"
BASE = datetime(2026, 12, 4, 17, 0)
EXAMPLES = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=20,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

offsets = st.integers(min_value=-10 * 86400, max_value=20 * 86400)
rules = st.builds(
    LateRule,
    percent_per_day=st.floats(0, 100, allow_nan=False),
    cap_percent=st.floats(0, 100, allow_nan=False),
    zero_after=st.none() | offsets.map(lambda s: BASE + timedelta(seconds=s)),
    zero_when_late=st.booleans(),
)
calendars = st.builds(
    lambda due, rule, times, extensions: Calendar(
        ASSIGNMENT,
        Path("."),
        due=due,
        rule=rule,
        times={
            s: SubmissionTime(None if o is None else BASE + timedelta(seconds=o), "lms")
            for s, o in times.items()
        },
        extensions={
            s: Extension(timedelta(hours=h), "generated") for s, h in extensions.items()
        },
    ),
    st.none() | offsets.map(lambda s: BASE + timedelta(seconds=s)),
    rules,
    st.dictionaries(st.sampled_from(STUDENTS), st.none() | offsets),
    st.dictionaries(st.sampled_from(STUDENTS), st.integers(0, 24 * 15)),
)
scores = st.fixed_dictionaries(
    {(s, nb): st.floats(0, 10, allow_nan=False) for s in STUDENTS for nb in NOTEBOOKS}
)


@functools.cache
def template(folder: Path) -> Path:
    """A gradebook with the assignment, two notebooks of one 10-point cell, four students."""
    path = folder / "template.db"
    with Gradebook(f"sqlite:///{path}") as gb:
        gb.add_assignment(ASSIGNMENT)
        for nb in NOTEBOOKS:
            gb.add_notebook(nb, ASSIGNMENT)
            gb.add_grade_cell("cell", nb, ASSIGNMENT, max_score=10, cell_type="code")
        for student in STUDENTS:
            gb.add_student(student)
            with (
                gb.db.no_autoflush
            ):  # nbgrader's own add warns otherwise (SQLAlchemy 2)
                gb.add_submission(ASSIGNMENT, student)
    return path


def graded(tmp_path: Path, marks: dict, name: str) -> Path:
    path = tmp_path / name
    shutil.copyfile(template(tmp_path_root(tmp_path)), path)
    with Gradebook(f"sqlite:///{path}") as gb:
        for (student, nb), score in marks.items():
            gb.find_grade("cell", nb, ASSIGNMENT, student).auto_score = score
        gb.db.commit()
    return path


def tmp_path_root(tmp_path: Path) -> Path:
    root = tmp_path.parent / "calendar-template"
    root.mkdir(exist_ok=True)
    return root


def applied(path: Path, calendar: Calendar) -> dict:
    """Apply the calendar, then read back what nbgrader's gradebook records."""
    with Gradebook(f"sqlite:///{path}") as gb:
        apply_penalties(gb, calendar)
        return state(gb)


def state(gb: Gradebook) -> dict:
    return {
        (s.student_id, nb.name): (
            s.timestamp,
            s.extension,
            nb.late_submission_penalty,
            nb.score,
        )
        for s in gb.find_assignment(ASSIGNMENT).submissions
        for nb in s.notebooks
    }


def moved(calendar: Calendar, days: int, granted: dict[str, int]) -> Calendar:
    due = calendar.due + timedelta(days=days) if calendar.due else BASE
    extensions = calendar.extensions | {
        s: Extension(timedelta(hours=h), "granted later") for s, h in granted.items()
    }
    return dataclasses.replace(calendar, due=due, extensions=extensions)


@EXAMPLES
@given(
    calendars,
    scores,
    st.integers(-5, 5),
    st.dictionaries(st.sampled_from(STUDENTS), st.integers(0, 240)),
)
def test_moving_the_due_date_or_granting_an_extension_recomputes_every_penalty(
    tmp_path, calendar, marks, days, granted
):
    later = moved(calendar, days, granted)
    regraded = graded(tmp_path, marks, "regraded.db")
    applied(regraded, calendar)
    assert applied(regraded, later) == applied(
        graded(tmp_path, marks, "fresh.db"), later
    )


@EXAMPLES
@given(calendars, scores)
def test_applying_a_calendar_twice_changes_nothing(tmp_path, calendar, marks):
    path = graded(tmp_path, marks, "twice.db")
    once = applied(path, calendar)
    assert applied(path, calendar) == once
    with Gradebook(f"sqlite:///{path}") as gb:
        first = collect(gb, calendars=lambda _: calendar)
        assert collect(gb, calendars=lambda _: calendar) == first


@EXAMPLES
@given(calendars, scores)
def test_a_penalty_never_makes_a_score_negative_or_raises_it(tmp_path, calendar, marks):
    path = graded(tmp_path, marks, "bounds.db")
    for (_, _), (_, _, penalty, score) in applied(path, calendar).items():
        assert 0 <= (penalty or 0) <= score
    with Gradebook(f"sqlite:///{path}") as gb:
        (grades,) = collect(gb, calendars=lambda _: calendar)
    for row in grades.students:
        raw = sum(marks[row.id, nb] for nb in NOTEBOOKS)
        assert 0 <= row.total <= raw + 1e-9
        for nb in NOTEBOOKS:
            assert 0 <= row.notebooks[nb] <= marks[row.id, nb] + 1e-9


@settings(derandomize=True, database=None, max_examples=300)
@given(
    rules,
    st.none() | offsets,
    st.integers(0, 10 * 86400),
    st.integers(0, 240),
    st.integers(0, 240),
    st.floats(0, 100, allow_nan=False),
)
def test_a_later_due_date_or_a_longer_extension_never_costs_more(
    rule, submitted, later_by, hours, more_hours, score
):
    when = None if submitted is None else BASE + timedelta(seconds=submitted)
    short, long = timedelta(hours=hours), timedelta(hours=hours + more_hours)
    base = rule.fraction(when, BASE, short)
    assert rule.fraction(when, BASE + timedelta(seconds=later_by), short) <= base
    assert rule.fraction(when, BASE, long) <= base
    penalty = LateRule.penalty(score, base)
    assert 0 <= score - penalty <= score
