"""One assignment's calendar: its due date, the extensions, the rule and the submission times.

Set once, read by every path: the due date is nbgrader's own (``Assignment.duedate`` in the
course's ``gradebook.db``, set by ``nbgrader db assignment add channels --duedate ...``), the
extensions are ``extensions.csv`` over nbgrader's (``SubmittedAssignment.extension``), and the
rule and the time source are ``c.CourseCalendar`` in ``nbgrader_config.py``. The grade command,
stock ``nbgrader autograde`` (``plugin.AssignCoursePenalties``) and the exports all build this
``Calendar`` and ask it the same question: how late is this student, and what does it cost.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from nbgrader.api import Gradebook, MissingEntry, SubmittedAssignment
from sqlalchemy.engine import URL
from traitlets import Enum, Float, Unicode
from traitlets.config import Config, Configurable
from traitlets.config.loader import PyFileConfigLoader

from autograder.deadlines.extensions import Extension, read_extensions
from autograder.deadlines.rule import AT_DUE, LateRule, seconds_late, utc
from autograder.deadlines.times import (
    SOURCES,
    SubmissionTime,
    parse_time,
    read_times,
    record_path,
    submission_time,
)

CONFIG_FILE = "nbgrader_config.py"
GRADEBOOK = "gradebook.db"


class CourseCalendar(Configurable):
    """``c.CourseCalendar`` in ``nbgrader_config.py``: the late rule and where times come from."""

    percent_per_day = Float(
        0.0,
        help="Late penalty: percent of the earned score per started day late (0: none)",
    ).tag(config=True)
    cap_percent = Float(
        100.0, help="The most the per-day penalty takes, in percent of the score"
    ).tag(config=True)
    zero_after = Unicode(
        "",
        help="A late submission after this date scores zero ('2026-12-11 17:00:00 UTC'); "
        "'due': any late submission scores zero; '': never. An extension moves it too.",
    ).tag(config=True)
    time_source = Enum(
        list(SOURCES),
        "lms",
        help="Where the submission time comes from: 'lms' (the intake's record of the LMS "
        "download), 'hub' (the course hub's instructor-side record) or 'exchange' "
        "(nbgrader's timestamp.txt, only with an exchange students cannot write)",
    ).tag(config=True)
    extensions_file = Unicode(
        "extensions.csv", help="Per-student extensions with reasons, at the course root"
    ).tag(config=True)

    def rule(self) -> LateRule:
        zero = self.zero_after.strip()
        return LateRule(
            percent_per_day=self.percent_per_day,
            cap_percent=self.cap_percent,
            zero_after=parse_time(zero) if zero and zero != AT_DUE else None,
            zero_when_late=zero == AT_DUE,
        )


def course_settings(course: Path) -> Config:
    """The course's ``nbgrader_config.py`` as traitlets reads it (empty if there is none)."""
    if not (Path(course) / CONFIG_FILE).is_file():
        return Config()
    return PyFileConfigLoader(CONFIG_FILE, path=str(course)).load_config()


def read_only_gradebook(path: Path) -> Gradebook:
    """nbgrader's Gradebook on ``path``, read-only: reading never changes a gradebook that
    formgrader may be writing (and nbgrader would add a course row)."""
    if not path.is_file():
        raise FileNotFoundError(f"no gradebook at {path}")
    # A URL object, not a string: SQLAlchemy would decode a string's %XX before SQLite's URI
    # parser sees it, and a folder named "a#b" would open (and create) "a" instead.
    url = URL.create(
        "sqlite",
        database="file:" + urllib.parse.quote(str(path.resolve())),
        query={"mode": "ro", "uri": "true"},
    )
    return Gradebook(url, course_id="")  # type: ignore[arg-type]  # create_engine takes it


@dataclass(frozen=True)
class Lateness:
    """One student's answer from the calendar."""

    student: str
    due: datetime | None  # the assignment's, before the extension
    extension: Extension | None
    submitted: SubmissionTime
    seconds_late: float
    fraction: float  # of the score lost, 0 to 1

    @property
    def late(self) -> bool:
        return self.seconds_late > 0

    def penalty(self, score: float) -> float:
        return LateRule.penalty(score, self.fraction)

    def total_penalty(self, notebook_scores: Iterable[float]) -> float:
        """The points off a submission: each notebook's penalty, as nbgrader records them."""
        return sum(self.penalty(score) for score in notebook_scores)

    def describe(self, rule: LateRule) -> str:
        """One sentence for the student's feedback and the instructor's pages."""
        when = (
            f"{self.submitted.at:%Y-%m-%d %H:%M} UTC"
            if self.submitted.at
            else "unknown"
        )
        text = f"Submitted {when}"
        if self.extension:
            text += f"; extension of {duration(self.extension.length.total_seconds())}"
        if self.late:
            text += (
                f"; {duration(self.seconds_late)} late: the late rule ({rule.describe()}) "
                f"takes {self.fraction:.0%} of the score"
            )
        return text + "."


def duration(seconds: float) -> str:
    """A length of time as people read it: "2 d 3 h 0 min", "20 h 5 min"."""
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    return f"{days} d {hours} h {minutes} min" if days else f"{hours} h {minutes} min"


@dataclass(frozen=True)
class Calendar:
    """Everything that decides lateness for one assignment."""

    assignment: str
    course: Path
    due: datetime | None = None
    rule: LateRule = field(default_factory=LateRule)
    source: str = "lms"
    extensions: dict[str, Extension] = field(default_factory=dict)
    times: dict[str, SubmissionTime] = field(default_factory=dict)

    def lateness(self, student: str) -> Lateness:
        extension = self.extensions.get(student)
        submitted = submission_time(
            self.course, self.assignment, student, self.source, self.times
        )
        length = extension.length if extension else None
        return Lateness(
            student=student,
            due=self.due,
            extension=extension,
            submitted=submitted,
            seconds_late=seconds_late(submitted.at, self.due, length),
            fraction=self.rule.fraction(submitted.at, self.due, length),
        )


def load_calendar(
    course: Path,
    assignment: str,
    config: Config | None = None,
    gradebook: Gradebook | None = None,
) -> Calendar:
    """The course's calendar for ``assignment``: ``config`` (else the course's
    ``nbgrader_config.py``), and the due date and nbgrader's extensions from ``gradebook``
    (else the course's ``gradebook.db``, read-only, if there is one)."""
    course = Path(course)
    settings = CourseCalendar(
        config=course_settings(course) if config is None else config
    )
    due, granted = None, {}
    if gradebook is not None:
        due, granted = _recorded(gradebook, assignment)
    elif (course / GRADEBOOK).is_file():
        with read_only_gradebook(course / GRADEBOOK) as gb:
            due, granted = _recorded(gb, assignment)
    source = settings.time_source
    return Calendar(
        assignment=assignment,
        course=course,
        due=due,
        rule=settings.rule(),
        source=source,
        extensions=granted | read_extensions(course / settings.extensions_file),
        times=read_times(record_path(course, assignment, source), source)
        if source != "exchange"
        else {},
    )


def _recorded(
    gb: Gradebook, assignment: str
) -> tuple[datetime | None, dict[str, Extension]]:
    """nbgrader's due date for ``assignment`` and the extensions its API granted."""
    try:
        found = gb.find_assignment(assignment)
    except MissingEntry:
        return None, {}
    rows = gb.db.query(SubmittedAssignment).filter(
        SubmittedAssignment.assignment_id == found.id,
        SubmittedAssignment.extension.isnot(None),
    )
    granted = {
        row.student_id: Extension(row.extension, origin="gradebook")
        for row in rows
        if row.extension
    }
    return (utc(found.duedate) if found.duedate else None), granted


def record_lateness(submission: SubmittedAssignment, lateness: Lateness) -> None:
    """Write the calendar's time and extension into nbgrader's own submission row, so that
    formgrader, ``nbgrader export`` and ``total_seconds_late`` see what was applied."""
    submission.timestamp = lateness.submitted.at
    submission.extension = lateness.extension.length if lateness.extension else None
