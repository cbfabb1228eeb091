"""Who is in which course, and as what: the one roster every part of the hub reads.

A roster is a CSV file ``username,course,role`` (role: ``instructor``, ``ta`` or ``student``),
one row per person and course; ``demo_roster.csv`` is the demo's. JupyterHub's groups, the
formgrader services, the Unix accounts and nbgrader's student lists all come from it, so a course
adds its real students by writing its own file (README, "Run the course on one machine"). The
file is the instructor's, but a name in it becomes a Unix account, a group and a path, so every
name is checked before anything is made of it.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

DEMO_ROSTER = Path(__file__).with_name("demo_roster.csv")
ROLES = ("instructor", "ta", "student")
# Portable Unix user names (POSIX, lower case as useradd wants them), and course ids that are
# safe as a path component, a JupyterHub group suffix and a service name.
USERNAME = re.compile(r"[a-z_][a-z0-9_-]{0,30}")
COURSE_ID = re.compile(r"[a-z][a-z0-9-]{0,30}")
# The Unix account each course's formgrader service and grading run as.
GRADER_PREFIX = "grader-"


class RosterError(ValueError):
    """A roster row that the hub cannot turn into accounts and groups as it stands."""


@dataclass(frozen=True)
class Course:
    """One course: its id and the people in it, by role."""

    id: str
    instructors: tuple[str, ...] = ()
    tas: tuple[str, ...] = ()
    students: tuple[str, ...] = ()

    @property
    def grader(self) -> str:
        """The Unix account that owns the course's files and runs its formgrader."""
        return GRADER_PREFIX + self.id

    @property
    def staff(self) -> tuple[str, ...]:
        """Who may open the course's formgrader: its instructors and TAs."""
        return self.instructors + self.tas

    @property
    def unix_group(self) -> str:
        """The Unix group of everyone in the course: the exchange's course folder is its."""
        return f"course-{self.id}"

    @property
    def student_group(self) -> str:
        """nbgrader's JupyterHubAuthPlugin lists a course for members of this group."""
        return f"nbgrader-{self.id}"

    @property
    def staff_group(self) -> str:
        """The group whose members may open the formgrader service (and see the course)."""
        return f"formgrade-{self.id}"


@dataclass(frozen=True)
class Roster:
    """Every course of the hub, in the order of the file."""

    courses: tuple[Course, ...] = field(default_factory=tuple)

    @property
    def people(self) -> tuple[str, ...]:
        """Every person who may log in, each once, sorted."""
        return tuple(sorted({u for c in self.courses for u in c.staff + c.students}))

    def course(self, course_id: str) -> Course:
        return next(c for c in self.courses if c.id == course_id)


def read_roster(path: Path | str = DEMO_ROSTER) -> Roster:
    """The roster in ``path``; a row that is not a safe name, course and role raises."""
    by_course: dict[str, dict[str, list[str]]] = {}
    with open(path, newline="", encoding="utf-8") as f:
        for line, row in enumerate(csv.DictReader(f), start=2):
            user = (row.get("username") or "").strip()
            course = (row.get("course") or "").strip()
            role = (row.get("role") or "").strip()
            if not USERNAME.fullmatch(user) or user.startswith(GRADER_PREFIX):
                raise RosterError(f"{path}:{line}: not a user name we create: {user!r}")
            if not COURSE_ID.fullmatch(course):
                raise RosterError(f"{path}:{line}: not a course id: {course!r}")
            if role not in ROLES:
                raise RosterError(
                    f"{path}:{line}: role must be one of {ROLES}: {role!r}"
                )
            people = by_course.setdefault(course, {r: [] for r in ROLES})
            if user in (u for r in ROLES for u in people[r]):
                raise RosterError(f"{path}:{line}: {user} twice in {course}")
            people[role].append(user)
    return Roster(
        tuple(
            Course(
                course,
                tuple(p["instructor"]),
                tuple(p["ta"]),
                tuple(p["student"]),
            )
            for course, p in by_course.items()
        )
    )


def demo_password(user: str) -> str:
    """The demo accounts' password (``make hub`` with the demo roster only; never a course's)."""
    return f"{user}-demo-pw"
