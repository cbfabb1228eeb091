"""Who an LMS user is here: one nbgrader id (= hub login, = Unix account) and one course role.

Pure: the launch (``launch.py``) and the roster command (``roster_sync.py``) both ask these
functions, so a person lands in the account the gradebook knows them by.

**The id.** The LMS's own user id (the launch's ``sub``, Names and Role Provisioning's
``user_id``) is stable but opaque (Canvas: a UUID), so it is not the id; it is what the id is
*bound* to. The first time a user is seen, the id is derived from what the platform says about
them, by the registration's rule: the local part of their email in one of the institution's
domains (``alice@example.edu`` -> ``alice``; an address elsewhere is refused, since many LMSs let
a user change their email), or their institution id (``lis_person_sourcedid``). After that the
binding decides, whatever the email becomes: ``resolve`` returns the bound id, and refuses to
hand an id that is bound to one LMS user to another (a renamed email must not open someone
else's account).

**The role.** An LTI role is a URI of the LIS vocabulary; of a course's roles only Learner,
Instructor and Instructor's TeachingAssistant sub-role mean something here. The hub's own roster
stays the authority on who may do what (its Unix groups and JupyterHub groups are made from
it): the LMS's role must agree with it on staff or student, and of two staff roles the lesser
counts (``course_role``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from course_hub.roster import GRADER_PREFIX, USERNAME

LIS = "http://purl.imsglobal.org/vocab/lis/v2/"
LEARNER = LIS + "membership#Learner"
INSTRUCTOR = LIS + "membership#Instructor"
# LTI 1.3 names the TA as a sub-role of Instructor; some platforms send the short form.
TEACHING_ASSISTANT = LIS + "membership/Instructor#TeachingAssistant"
TEACHING_ASSISTANT_SHORT = LIS + "membership#TeachingAssistant"
# The course roles of the hub, least first.
STUDENT, TA, INSTRUCTOR_ROLE = "student", "ta", "instructor"
RANK = {STUDENT: 0, TA: 1, INSTRUCTOR_ROLE: 2}
ID_RULES = ("email", "sourcedid")


class IdentityRefusedError(ValueError):
    """This LMS user cannot be given an id here; the message says why, for the person."""


@dataclass(frozen=True)
class Person:
    """What a platform says about one of its users (a launch's claims or an NRPS member)."""

    user_id: str
    email: str = ""
    sourcedid: str = ""
    given_name: str = ""
    family_name: str = ""
    name: str = ""
    roles: tuple[str, ...] = ()


def person_from_claims(claims: Mapping[str, object]) -> Person:
    """A launch's id_token claims (already verified) as a ``Person``."""
    lis = claims.get("https://purl.imsglobal.org/spec/lti/claim/lis")
    roles = claims.get("https://purl.imsglobal.org/spec/lti/claim/roles")
    return Person(
        user_id=_text(claims.get("sub")),
        email=_text(claims.get("email")),
        sourcedid=_text(lis.get("person_sourcedid")) if isinstance(lis, dict) else "",
        given_name=_text(claims.get("given_name")),
        family_name=_text(claims.get("family_name")),
        name=_text(claims.get("name")),
        roles=tuple(r for r in roles if isinstance(r, str))
        if isinstance(roles, list)
        else (),
    )


def person_from_member(member: Mapping[str, object]) -> Person:
    """A Names and Role Provisioning member (one entry of ``members``) as a ``Person``."""
    roles = member.get("roles")
    return Person(
        user_id=_text(member.get("user_id")),
        email=_text(member.get("email")),
        sourcedid=_text(member.get("lis_person_sourcedid")),
        given_name=_text(member.get("given_name")),
        family_name=_text(member.get("family_name")),
        name=_text(member.get("name")),
        roles=tuple(r for r in roles if isinstance(r, str))
        if isinstance(roles, list)
        else (),
    )


def _text(value: object, limit: int = 256) -> str:
    """A claim as plain text: a string, without control characters, of bounded length (a
    platform's reply is data, not trusted)."""
    if not isinstance(value, str | int) or isinstance(value, bool):
        return ""
    text = str(value)
    return "".join(ch for ch in text if ch.isprintable())[:limit].strip()


def derived_id(person: Person, rule: str, email_domains: Iterable[str]) -> str:
    """The nbgrader id a user gets the first time they are seen, by the registration's rule;
    ``IdentityRefusedError`` when the platform's data gives none that is safe."""
    if rule == "email":
        local, at, domain = person.email.rpartition("@")
        domains = {d.lower() for d in email_domains}
        if not at or domain.lower() not in domains:
            raise IdentityRefusedError(
                f"the LMS gave no email address in {', '.join(sorted(domains)) or 'no domain'}"
                " (the registration's email_domains) for this user"
            )
        candidate = local.lower()
    elif rule == "sourcedid":
        candidate = person.sourcedid.lower()
        if not candidate:
            raise IdentityRefusedError(
                "the LMS gave no institution id (lis_person_sourcedid)"
            )
    else:
        raise ValueError(f"unknown id rule {rule!r}: one of {ID_RULES}")
    if not USERNAME.fullmatch(candidate) or candidate.startswith(GRADER_PREFIX):
        raise IdentityRefusedError(
            f"{candidate!r} is not an account name this hub can have"
        )
    return candidate


def resolve(
    person: Person, rule: str, email_domains: Iterable[str], bound: Mapping[str, str]
) -> tuple[str, bool]:
    """(nbgrader id, whether it is a new binding) for ``person``, given the bindings already
    made (LMS user id -> nbgrader id). A bound user keeps their id whatever their email says
    now; a new user gets the derived id unless another LMS user holds it."""
    if not person.user_id:
        raise IdentityRefusedError("the LMS gave no user id")
    if person.user_id in bound:
        return bound[person.user_id], False
    wanted = derived_id(person, rule, email_domains)
    holders = [uid for uid, name in bound.items() if name == wanted]
    if holders:
        raise IdentityRefusedError(
            f"the account {wanted!r} belongs to another LMS user; ask the course's "
            "instructor (the two LMS accounts may be one person)"
        )
    return wanted, True


def lms_role(roles: Iterable[str]) -> str | None:
    """The course role an LMS's role URIs amount to (TA over Instructor, since a TA often has
    both; Instructor over Learner), or None: no course role this hub knows (an institution
    administrator without a role in the course, a mentor, a guest)."""
    found = set(roles)
    if found & {TEACHING_ASSISTANT, TEACHING_ASSISTANT_SHORT}:
        return TA
    if INSTRUCTOR in found:
        return INSTRUCTOR_ROLE
    if LEARNER in found:
        return STUDENT
    return None


def course_role(lms: str | None, hub: str | None) -> str:
    """The role a launch gets: the hub's roster and the LMS must agree on staff or student, and
    of two staff roles the lesser counts. ``IdentityRefusedError`` says which side to fix."""
    if hub is None:
        raise IdentityRefusedError(
            "you are not in this course's roster on the hub; ask the instructor"
        )
    if lms is None:
        raise IdentityRefusedError(
            "the LMS sent no course role this hub knows (Learner, Instructor, TeachingAssistant)"
        )
    if (lms == STUDENT) != (hub == STUDENT):
        raise IdentityRefusedError(
            f"the LMS says {lms} and the hub's roster says {hub}; ask the instructor to "
            "correct one of them"
        )
    return min(lms, hub, key=RANK.__getitem__)
