"""The tool's registration with one LMS: one JSON file, read by the hub and by the commands.

What the platform gave when the tool was registered (README, "Grades where the course lives"),
what the tool decided, and which LMS course each hub course is::

    {
      "issuer": "https://canvas.instructure.com",
      "client_id": "10000000000042",
      "deployment_ids": ["17:8865aa05b4b79b64a91a86042e43af5ea8ae79eb"],
      "authorize_url": "https://sso.canvaslms.com/api/lti/authorize_redirect",
      "jwks_url": "https://sso.canvaslms.com/api/lti/security/jwks",
      "token_url": "https://sso.canvaslms.com/login/oauth2/token",
      "key_dir": "lti-keys",
      "student_id_from": "email",
      "email_domains": ["example.edu"],
      "courses": {
        "channels-a": {
          "context_id": "4dde05e8ca1973bcca9bffc13e1548820eee93a3",
          "memberships_url": "https://canvas.example.edu/api/lti/courses/101/names_and_roles",
          "lineitems_url": "https://canvas.example.edu/api/lti/courses/101/line_items"
        }
      }
    }

``key_dir`` is relative to the file. The platform's TLS is checked against the system's CAs
(``SSL_CERT_FILE`` names another bundle, as the tests do for their local CA). Each hub course is
linked to at most one LMS course and each LMS course to one hub course: a launch from any other
context is refused, never guessed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from course_hub.lti.identity import ID_RULES
from course_hub.roster import COURSE_ID

MAX_BYTES = 1_000_000


class RegistrationError(ValueError):
    """The registration file cannot be used as it is; the message names the field."""


@dataclass(frozen=True)
class LinkedCourse:
    """A hub course and the LMS course (context) it is linked to, with its service URLs."""

    course: str
    context_id: str
    memberships_url: str = ""  # Names and Role Provisioning (the roster command)
    lineitems_url: str = ""  # Assignment and Grade Services (the passback command)


@dataclass(frozen=True)
class Registration:
    issuer: str
    client_id: str
    deployment_ids: tuple[str, ...]
    authorize_url: str
    jwks_url: str
    token_url: str
    key_dir: Path
    student_id_from: str
    email_domains: tuple[str, ...]
    courses: tuple[LinkedCourse, ...]

    def course_of_context(self, context_id: str) -> LinkedCourse | None:
        return next((c for c in self.courses if c.context_id == context_id), None)

    def linked(self, course: str) -> LinkedCourse:
        found = next((c for c in self.courses if c.course == course), None)
        if found is None:
            raise RegistrationError(
                f"the registration links no LMS course to {course!r}"
            )
        return found


def _url(data: dict, key: str, where: str = "") -> str:
    value = data.get(key)
    parsed = urlparse(value) if isinstance(value, str) else None
    if parsed is None or parsed.scheme != "https" or not parsed.netloc:
        raise RegistrationError(f"{where}{key} must be an https URL, not {value!r}")
    return value


def _optional_url(data: dict, key: str, where: str) -> str:
    return _url(data, key, where) if data.get(key) else ""


def read_registration(path: Path | str) -> Registration:
    """The registration in ``path``, every field checked."""
    path = Path(path)
    raw = path.read_bytes()
    if len(raw) > MAX_BYTES:
        raise RegistrationError(f"{path}: larger than {MAX_BYTES} bytes")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise RegistrationError(f"{path}: not JSON ({error})") from None
    if not isinstance(data, dict):
        raise RegistrationError(f"{path}: not a JSON object")
    for key in ("issuer", "client_id"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise RegistrationError(f"{path}: {key} must be a non-empty string")
    deployments = data.get("deployment_ids")
    if (
        not isinstance(deployments, list)
        or not deployments
        or not all(isinstance(d, str) and d for d in deployments)
    ):
        raise RegistrationError(f"{path}: deployment_ids must be a list of strings")
    rule = data.get("student_id_from", "email")
    if rule not in ID_RULES:
        raise RegistrationError(f"{path}: student_id_from must be one of {ID_RULES}")
    domains = data.get("email_domains", [])
    if not isinstance(domains, list) or not all(isinstance(d, str) for d in domains):
        raise RegistrationError(f"{path}: email_domains must be a list of strings")
    if rule == "email" and not domains:
        raise RegistrationError(
            f"{path}: student_id_from 'email' needs email_domains (the institution's)"
        )
    courses = data.get("courses", {})
    if not isinstance(courses, dict):
        raise RegistrationError(f"{path}: courses must be an object")
    linked = []
    for course, link in courses.items():
        where = f"{path}: courses.{course}."
        if not COURSE_ID.fullmatch(course):
            raise RegistrationError(f"{path}: {course!r} is not a hub course id")
        if not isinstance(link, dict) or not isinstance(link.get("context_id"), str):
            raise RegistrationError(f"{where}context_id must be a string")
        linked.append(
            LinkedCourse(
                course,
                link["context_id"],
                _optional_url(link, "memberships_url", where),
                _optional_url(link, "lineitems_url", where),
            )
        )
    contexts = [c.context_id for c in linked]
    if len(set(contexts)) != len(contexts):
        raise RegistrationError(
            f"{path}: one LMS course is linked to two hub courses; link each once"
        )
    base = path.parent
    return Registration(
        issuer=data["issuer"],
        client_id=data["client_id"],
        deployment_ids=tuple(deployments),
        authorize_url=_url(data, "authorize_url"),
        jwks_url=_url(data, "jwks_url"),
        token_url=_url(data, "token_url"),
        key_dir=base / str(data.get("key_dir", "lti-keys")),
        student_id_from=rule,
        email_domains=tuple(domains),
        courses=tuple(linked),
    )
