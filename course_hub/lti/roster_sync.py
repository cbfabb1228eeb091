"""The LMS's students into nbgrader's gradebook (Names and Role Provisioning Services 2.0).

``python -m course_hub.lti roster --registration lti.json --course-id channels-a [--course DIR]``
reads the linked LMS course's members and, through nbgrader's own ``Gradebook`` API, makes sure
each active Learner is a student of the gradebook with their name, email and ``lms_user_id``
(the LMS's user id, which the passback sends scores to). Idempotent: a second run changes
nothing and says so. Never deletes: a student who left the LMS course (gone from the list, or
Inactive or Deleted there) is reported with what the gradebook still holds for them, since
their submissions and grades are the course's record; so is a gradebook student the LMS does
not know. The id of a new student comes from ``identity.resolve``, the same rule as the launch,
with the gradebook's ``lms_user_id`` as the bindings already made.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from nbgrader.api import Gradebook

from course_hub.lti.identity import (
    STUDENT,
    IdentityRefusedError,
    Person,
    lms_role,
    person_from_member,
    resolve,
)
from course_hub.lti.registration import Registration, RegistrationError
from course_hub.lti.services import PlatformServices, ServiceError

NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
NRPS_ACCEPT = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
MAX_MEMBERS = 100_000


@dataclass
class RosterReport:
    """What a run did, by student id (``refused``: an LMS user and why)."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    left: list[str] = field(
        default_factory=list
    )  # bound to an LMS user no longer active
    not_in_lms: list[str] = field(default_factory=list)  # never bound, not matched now
    refused: list[tuple[str, str]] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [
            f"added {len(self.added)}: {', '.join(self.added) or '-'}",
            f"updated {len(self.updated)}: {', '.join(self.updated) or '-'}",
            f"unchanged {len(self.unchanged)}",
        ]
        out += [
            f"left the LMS course (kept in the gradebook with their work): {s}"
            for s in self.left
        ]
        out += [
            f"in the gradebook, not in the LMS course: {s}" for s in self.not_in_lms
        ]
        out += [f"refused LMS user {who}: {why}" for who, why in self.refused]
        return out


@dataclass(frozen=True)
class Member:
    """One entry of the LMS course's membership list."""

    person: Person
    active: bool  # NRPS status Active (the default); Inactive and Deleted are not


def members(services: PlatformServices, url: str, context_id: str) -> list[Member]:
    """Every member of the LMS course at ``url``, all pages; the reply must be the linked
    course's (a memberships URL of another course is refused, not synced)."""
    found: list[Member] = []
    for reply in services.pages(url, (NRPS_SCOPE,), NRPS_ACCEPT):
        body = reply.body if isinstance(reply.body, dict) else {}
        context = body.get("context")
        if not isinstance(context, dict) or context.get("id") != context_id:
            raise ServiceError(
                f"{url} lists the members of another LMS course than the one linked "
                f"({context_id!r}): check memberships_url"
            )
        page = body.get("members")
        if not isinstance(page, list):
            raise ServiceError(f"{url}: a membership container without members")
        found += [
            Member(person_from_member(m), m.get("status", "Active") == "Active")
            for m in page
            if isinstance(m, dict)
        ]
        if len(found) > MAX_MEMBERS:
            raise ServiceError(f"{url}: more than {MAX_MEMBERS} members")
    return found


def sync(
    gb: Gradebook, found: list[Member], registration: Registration
) -> RosterReport:
    """Make the gradebook's students match the LMS course's active Learners (never deleting)."""
    report = RosterReport()
    students = {s.id: s for s in gb.students}
    bound = {s.lms_user_id: s.id for s in students.values() if s.lms_user_id}
    learners = [m for m in found if lms_role(m.person.roles) == STUDENT]
    active = {m.person.user_id for m in learners if m.active}
    matched = set()
    for member in learners:
        person = member.person
        if not member.active:
            continue
        try:
            sid, _ = resolve(
                person, registration.student_id_from, registration.email_domains, bound
            )
        except IdentityRefusedError as why:
            report.refused.append((_who(person), str(why)))
            continue
        bound[person.user_id] = sid
        matched.add(sid)
        wanted = {
            "first_name": person.given_name or None,
            "last_name": person.family_name or person.name or None,
            "email": person.email or None,
            "lms_user_id": person.user_id,
        }
        existing = students.get(sid)
        if existing is None:
            gb.add_student(sid, **wanted)
            report.added.append(sid)
        elif any(getattr(existing, k) != v for k, v in wanted.items()):
            gb.update_or_create_student(sid, **wanted)
            report.updated.append(sid)
        else:
            report.unchanged.append(sid)
    for sid, student in sorted(students.items()):
        if sid in matched:
            continue
        if student.lms_user_id and student.lms_user_id not in active:
            report.left.append(sid)
        elif not student.lms_user_id:
            report.not_in_lms.append(sid)
    return report


def _who(person: Person) -> str:
    return f"{person.name or person.email or '?'} ({person.user_id})"


def course_id_of(course: Path) -> str:
    """The course's nbgrader id (``c.CourseDirectory.course_id``), as nbgrader opens its
    gradebook with it."""
    from traitlets.config.loader import PyFileConfigLoader

    config = course / "nbgrader_config.py"
    if not config.is_file():
        return ""
    loaded = PyFileConfigLoader(config.name, path=str(course)).load_config()
    return str(loaded.get("CourseDirectory", {}).get("course_id", ""))


def run_roster(registration: Registration, course_id: str, course: Path) -> int:
    """The roster command: 0 when every LMS student is in the gradebook, 1 when some LMS user
    was refused an id (the rest synced), 2 when nothing could be done."""
    try:
        link = registration.linked(course_id)
        if not link.memberships_url:
            raise RegistrationError(
                f"courses.{course_id}.memberships_url is not set in the registration"
            )
        found = members(
            PlatformServices(registration), link.memberships_url, link.context_id
        )
    except (RegistrationError, ServiceError, OSError) as error:
        print(f"error: {error}")
        return 2
    db = course / "gradebook.db"
    if not db.is_file():
        print(f"error: no gradebook at {db} (run nbgrader in the course first)")
        return 2
    with Gradebook(f"sqlite:///{db}", course_id=course_id_of(course)) as gb:
        report = sync(gb, found, registration)
    for line in report.lines():
        print(line)
    return 1 if report.refused else 0
