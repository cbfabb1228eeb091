"""Each student's total into the LMS's gradebook (Assignment and Grade Services 2.0).

``python -m course_hub.lti passback --registration lti.json --course-id channels-a
--assignment channels [--course DIR]`` sends, for every student of the course's gradebook, the
assignment's total as ``canvas.csv`` has it: the same ``exports.collect`` on the same
gradebook with the same calendar (late penalties off, written answers counted once graded),
written as the same number (``exports.number``). Nothing is recomputed here.

* **One line item, ever.** The tool's line item for an assignment is the one whose
  ``resourceId`` is the assignment's name and whose ``tag`` is ``nbgrader``: found on every
  run (all pages of the container, filtered here as well as by the platform), created only if
  there is none, never a second; two already there stop the run (someone made one by hand: the
  instructor chooses, the tool does not guess). A changed maximum (a new rubric) is updated in
  place.
* **Progress.** ``gradingProgress`` is ``PendingManual`` while a student's written answers wait
  for a grader (the AGS value for "pending, needs a person"; the score sent is what is graded so
  far, as in the CSV) and ``FullyGraded`` once none do. ``activityProgress`` is ``Completed``
  for a student who submitted and ``Initialized`` for one who did not (their 0 is the CSV's).
* **One student's failure is theirs.** A student without an LMS user id (run the roster command),
  an LMS that refuses a score (unknown user, a closed course), a network error: reported on
  that student's line, and the others still go. Exit status 0 when every score was accepted, 1
  when some were not, 2 when none could be sent.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from autograder.deadlines.schedule import load_calendar
from autograder.outputs.exports import collect, number, open_gradebook
from course_hub.lti.registration import Registration, RegistrationError
from course_hub.lti.services import PlatformServices, ServiceError

LINEITEM_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
SCORE_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
CONTAINER = "application/vnd.ims.lis.v2.lineitemcontainer+json"
LINEITEM = "application/vnd.ims.lis.v2.lineitem+json"
SCORE = "application/vnd.ims.lis.v1.score+json"
TAG = "nbgrader"
PENDING_MANUAL, FULLY_GRADED = "PendingManual", "FullyGraded"


@dataclass(frozen=True)
class Sent:
    """One student's line of the report."""

    student: str
    score: str
    progress: str
    error: str = ""


def with_query(url: str, **params: str) -> str:
    """``url`` with ``params`` added to its query (a Moodle URL already has one)."""
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query) + list(params.items())
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def scores_url(lineitem: str) -> str:
    """A line item's scores endpoint: ``/scores`` after its path, before its query."""
    parts = urllib.parse.urlsplit(lineitem)
    return urllib.parse.urlunsplit(
        parts._replace(path=parts.path.rstrip("/") + "/scores")
    )


def line_item(
    services: PlatformServices, lineitems_url: str, assignment: str, maximum: float
) -> tuple[str, str]:
    """(the line item's URL, "found" / "created" / "updated") for ``assignment``."""
    scopes = (LINEITEM_SCOPE,)
    listed = []
    url = with_query(lineitems_url, resource_id=assignment, tag=TAG)
    for reply in services.pages(url, scopes, CONTAINER):
        if not isinstance(reply.body, list):
            raise ServiceError(
                f"{lineitems_url}: a line item container that is not a list"
            )
        listed += [i for i in reply.body if isinstance(i, dict)]
    ours = [
        i for i in listed if i.get("resourceId") == assignment and i.get("tag") == TAG
    ]
    if len(ours) > 1:
        ids = ", ".join(str(i.get("id")) for i in ours)
        raise ServiceError(
            f"{len(ours)} line items of the LMS course are {assignment!r} ({ids}): delete "
            "all but one in the LMS, then run again"
        )
    wanted = {
        "label": assignment,
        "scoreMaximum": maximum,
        "resourceId": assignment,
        "tag": TAG,
    }
    if ours:
        item = ours[0]
        if not _https(item.get("id")):
            raise ServiceError(f"{lineitems_url}: a line item without an https id")
        if item.get("scoreMaximum") == maximum:
            return item["id"], "found"
        services.call(
            "PUT",
            item["id"],
            scopes,
            LINEITEM,
            {**item, **wanted},
            content_type=LINEITEM,
        )
        return item["id"], "updated"
    reply = services.call(
        "POST", lineitems_url, scopes, LINEITEM, wanted, content_type=LINEITEM
    )
    made = reply.body.get("id") if isinstance(reply.body, dict) else None
    if not _https(made):
        raise ServiceError(f"{lineitems_url}: the created line item has no https id")
    return made, "created"


def _https(value: object) -> bool:
    return isinstance(value, str) and urllib.parse.urlsplit(value).scheme == "https"


def passback(
    registration: Registration, course_id: str, course: Path, assignment: str
) -> tuple[str, str, list[Sent]]:
    """Send every student's total; (line item URL, what happened to it, a line per student).
    Raises ``ServiceError`` / ``RegistrationError`` / ``OSError`` only when nothing was sent."""
    link = registration.linked(course_id)
    if not link.lineitems_url:
        raise RegistrationError(f"courses.{course_id}.lineitems_url is not set")
    with open_gradebook(course / "gradebook.db") as gb:
        grades = collect(
            gb, [assignment], calendars=lambda name: load_calendar(course, name)
        )
        submitted = {
            s.student_id
            for a in gb.assignments
            if a.name == assignment
            for s in a.submissions
        }
    if not grades:
        raise RegistrationError(f"the gradebook has no assignment {assignment!r}")
    (found,) = grades
    services = PlatformServices(registration)
    maximum = float(number(found.max_total))
    item, what = line_item(services, link.lineitems_url, assignment, maximum)
    sent = []
    for student in found.students:
        progress = PENDING_MANUAL if student.awaiting else FULLY_GRADED
        score = number(student.total)
        if not student.lms_user_id:
            sent.append(
                Sent(
                    student.id,
                    score,
                    progress,
                    "no LMS user id: run the roster command",
                )
            )
            continue
        body = {
            "userId": student.lms_user_id,
            "scoreGiven": float(score),
            "scoreMaximum": maximum,
            "activityProgress": "Completed"
            if student.id in submitted
            else "Initialized",
            "gradingProgress": progress,
            "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
        }
        try:
            services.call(
                "POST",
                scores_url(item),
                (SCORE_SCOPE,),
                SCORE,
                body,
                content_type=SCORE,
            )
        except ServiceError as error:
            sent.append(Sent(student.id, score, progress, str(error)))
            continue
        sent.append(Sent(student.id, score, progress))
    return item, what, sent


def run_passback(
    registration: Registration, course_id: str, course: Path, assignment: str
) -> int:
    """The passback command's report and exit status (module docstring)."""
    try:
        item, what, sent = passback(registration, course_id, course, assignment)
    except (RegistrationError, ServiceError, OSError, ValueError) as error:
        print(f"error: {error}")
        return 2
    print(f"line item {item} ({what})")
    for line in sent:
        if line.error:
            print(f"not sent {line.student}: {line.error}")
        else:
            print(f"sent {line.student}: {line.score} ({line.progress})")
    failed = sum(1 for line in sent if line.error)
    print(f"{len(sent) - failed} sent, {failed} not sent")
    if failed == len(sent) and sent:
        return 2
    return 1 if failed else 0
