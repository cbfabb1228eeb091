"""An LMS's LTI 1.3 launch into the hub: the person lands, logged in, where their role works.

``jupyterhub-ltiauthenticator`` does the protocol (OIDC third-party login, the platform's key
set, the id_token's signature, expiry, audience, state and nonce); ``CourseLTIAuthenticator``
adds what a course needs on top:

* **who**: the launch's user is resolved to one hub account by ``identity.resolve``, with the
  bindings the course's gradebook holds (``lms_user_id``, written by the roster command) and the
  hub's own (``hub/lti-identities.sqlite``, root's, for staff and for students not yet synced);
* **where and as what**: the launch's LMS course must be linked to a hub course
  (``registration.json``) and its deployment registered; the LMS's role must agree with the
  hub roster (``identity.course_role``); a student lands in their own server, an instructor or
  TA in the course's formgrader;
* **once**: ltiauthenticator ties the token to the browser's state and nonce cookies, which it
  clears on use, but whoever holds the whole request (cookies included) could post it again
  until the token expires. The hub remembers each nonce it accepted until that expiry and
  refuses it a second time, in its own database (``hub/lti-launches.sqlite``), so that a
  restarted hub still refuses it;
* **cross-site cookies**: the platform posts the token from its own site, so the state and nonce
  cookies are ``SameSite=None; Secure`` (browsers drop them otherwise, and every launch fails
  with "OAuth state missing"); the hub must be served over HTTPS.

Runs inside the hub (as root): imports nothing of ``autograder``.
"""

from __future__ import annotations

import sqlite3
import time
import urllib.parse
from pathlib import Path
from typing import Any

from jupyterhub.handlers import BaseHandler
from jupyterhub.utils import url_path_join
from ltiauthenticator.lti13.auth import LTI13Authenticator
from ltiauthenticator.lti13.handlers import (
    LTI13CallbackHandler,
    LTI13LoginInitHandler,
)
from tornado import web
from tornado.httputil import url_concat
from traitlets import Unicode

from course_hub.lti.identity import (
    STUDENT,
    IdentityRefusedError,
    course_role,
    lms_role,
    person_from_claims,
    resolve,
)
from course_hub.lti.keys import public_key_set
from course_hub.lti.registration import Registration, read_registration
from course_hub.provision import course_dir, layout
from course_hub.roster import Roster, read_roster

DEPLOYMENT = "https://purl.imsglobal.org/spec/lti/claim/deployment_id"
CONTEXT = "https://purl.imsglobal.org/spec/lti/claim/context"
IDENTITIES = "lti-identities.sqlite"
LAUNCHES = "lti-launches.sqlite"


class HubTable:
    """One table of the hub's own state, in a sqlite file of ``hub/`` (root's), created on first
    use. Every hub process opens the same file, so what one records the others see."""

    SCHEMA = ""

    def __init__(self, path: Path) -> None:
        self.path = path
        with self._db() as db:
            db.execute(self.SCHEMA)

    def _db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=10)


class IdentityStore(HubTable):
    """The hub's bindings, LMS user -> account: one row per (issuer, user id), one per name."""

    SCHEMA = (
        "CREATE TABLE IF NOT EXISTS binding (issuer TEXT NOT NULL, "
        "user_id TEXT NOT NULL, name TEXT NOT NULL UNIQUE, "
        "PRIMARY KEY (issuer, user_id))"
    )

    def bound(self, issuer: str) -> dict[str, str]:
        """This issuer's bindings by user id, and every other issuer's under a key no user id
        of this issuer can be (so their names count as taken)."""
        with self._db() as db:
            rows = db.execute("SELECT issuer, user_id, name FROM binding").fetchall()
        return {
            (uid if iss == issuer else f"{iss}\n{uid}"): name for iss, uid, name in rows
        }

    def bind(self, issuer: str, user_id: str, name: str) -> None:
        try:
            with self._db() as db:
                db.execute(
                    "INSERT INTO binding (issuer, user_id, name) VALUES (?, ?, ?)",
                    (issuer, user_id, name),
                )
        except sqlite3.IntegrityError:  # another launch bound it a moment ago
            raise IdentityRefusedError(
                f"the account {name!r} was just bound to another LMS user"
            ) from None


class UsedLaunches(HubTable):
    """The launches the hub accepted, each until its token expires. On disk, not in the hub's
    memory: a hub restarted within a token's life (minutes) would otherwise accept it again."""

    SCHEMA = (
        "CREATE TABLE IF NOT EXISTS used_launch "
        "(key TEXT PRIMARY KEY, expires REAL NOT NULL)"
    )

    def use(self, key: str, expires: float, now: float) -> bool:
        """Record ``key`` until ``expires``; False if it is recorded already (a replay).
        One insert decides, so two hub processes cannot both accept the same launch."""
        with self._db() as db:
            db.execute("DELETE FROM used_launch WHERE expires < ?", (now,))
            try:
                db.execute("INSERT INTO used_launch VALUES (?, ?)", (key, expires))
            except sqlite3.IntegrityError:
                return False
        return True


def gradebook_bindings(gradebook: Path) -> dict[str, str]:
    """The course gradebook's ``lms_user_id`` -> student id, read-only (nbgrader's ``student``
    table; the hub never writes a course's gradebook)."""
    if not gradebook.is_file():
        return {}
    uri = "file:" + urllib.parse.quote(str(gradebook)) + "?mode=ro"
    db = sqlite3.connect(uri, uri=True, timeout=10)
    try:
        rows = db.execute(
            "SELECT lms_user_id, id FROM student WHERE lms_user_id IS NOT NULL "
            "AND lms_user_id != ''"
        ).fetchall()
    except sqlite3.Error:
        return {}
    finally:
        db.close()
    return dict(rows)


class CourseLoginInitHandler(LTI13LoginInitHandler):
    """The OIDC login's first step, with state and nonce cookies that survive the platform's
    cross-site post back."""

    def _set_oauth_cookie(self, key: str, value: Any) -> None:
        self._set_cookie(
            key,
            value,
            expires_days=1,
            httponly=True,
            encrypted=True,
            secure=True,
            samesite="None",
        )


class CourseCallbackHandler(LTI13CallbackHandler):
    """The platform's post of the id_token: verified by ltiauthenticator, then used once."""

    def decode_and_validate_launch_request(self) -> dict[str, Any]:
        id_token = super().decode_and_validate_launch_request()
        self.authenticator.use_nonce(id_token)
        return id_token

    async def redirect_to_next_url(self, user: Any) -> None:
        self.redirect(getattr(self, "lti_landing", None) or self.get_next_url(user))


class KeySetHandler(BaseHandler):
    """The tool's public keys (``/hub/lti13/jwks``): the platform checks the commands'
    signed requests against them."""

    def check_xsrf_cookie(self) -> None:
        return

    async def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "max-age=300")
        self.write(public_key_set(self.authenticator.lti_registration().key_dir))


class CourseLTIAuthenticator(LTI13Authenticator):
    """LTI 1.3 launch for the hub's courses (module docstring)."""

    login_handler = CourseLoginInitHandler
    callback_handler = CourseCallbackHandler

    registration_file = Unicode(config=True, help="The tool's registration (JSON)")
    roster_file = Unicode(config=True, help="The hub's roster (course_hub/roster.py)")
    hub_root = Unicode(config=True, help="COURSE_HUB_ROOT: course folders, hub/ state")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        registration = self.lti_registration()
        self.issuer = registration.issuer
        self.client_id = {registration.client_id}
        self.authorize_url = registration.authorize_url
        self.jwks_endpoint = registration.jwks_url

    def lti_registration(self) -> Registration:
        return read_registration(self.registration_file)

    def roster(self) -> Roster:
        return read_roster(self.roster_file)

    def get_handlers(self, app: Any) -> list[tuple[str, Any]]:
        return [*super().get_handlers(app), ("/lti13/jwks", KeySetHandler)]

    def use_nonce(self, id_token: dict[str, Any]) -> None:
        """Accept each launch once: its nonce is remembered until the token expires."""
        now = time.time()
        key = f"{id_token.get('iss')}\n{id_token.get('nonce')}"
        used = UsedLaunches(layout(Path(self.hub_root))["hub"] / LAUNCHES)
        if not used.use(key, float(id_token.get("exp", now)) + 60, now):
            raise web.HTTPError(
                400, "%s", "This launch was already used: start again from the LMS."
            )

    async def authenticate(
        self, handler: web.RequestHandler, data: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The hub account and landing page of a verified launch, or a 403 that says why."""
        claims = data or {}
        registration = self.lti_registration()
        try:
            name, role, course = self._resolve(registration, claims)
        except IdentityRefusedError as why:
            self.log.warning("LTI launch refused: %s", why)
            raise web.HTTPError(
                403, "%s", f"This launch cannot open the course: {why}."
            ) from None
        base = self.base_url_of(handler)
        if role == STUDENT:  # their own server, started if it is not running
            lab = url_path_join(base, "user", name, "lab")
            landing = url_concat(
                url_path_join(base, "hub", "spawn", name), {"next": lab}
            )
        else:
            landing = url_path_join(base, "services", course, "formgrader/")
        handler.lti_landing = landing
        self.log.info("LTI launch: %s as %s of %s", name, role, course)
        return {"name": name}

    @staticmethod
    def base_url_of(handler: web.RequestHandler) -> str:
        return handler.settings.get("base_url", "/")

    def _resolve(
        self, registration: Registration, claims: dict[str, Any]
    ) -> tuple[str, str, str]:
        if claims.get(DEPLOYMENT) not in registration.deployment_ids:
            raise IdentityRefusedError(
                "the LMS's deployment of this tool is not registered here"
            )
        context = claims.get(CONTEXT)
        context_id = context.get("id") if isinstance(context, dict) else None
        link = registration.course_of_context(str(context_id)) if context_id else None
        if link is None:
            raise IdentityRefusedError(
                f"the LMS course {context_id!r} is not linked to a course on this hub"
            )
        person = person_from_claims(claims)
        root = Path(self.hub_root)
        store = IdentityStore(layout(root)["hub"] / IDENTITIES)
        bound = store.bound(registration.issuer)
        course = next((c for c in self.roster().courses if c.id == link.course), None)
        if course is None:
            raise IdentityRefusedError(
                f"the registration links this LMS course to {link.course!r}, which is not "
                "a course of this hub"
            )
        bound |= gradebook_bindings(course_dir(root, course) / "gradebook.db")
        name, new = resolve(
            person, registration.student_id_from, registration.email_domains, bound
        )
        hub_role = next(
            (
                role
                for role, people in (
                    ("instructor", course.instructors),
                    ("ta", course.tas),
                    (STUDENT, course.students),
                )
                if name in people
            ),
            None,
        )
        role = course_role(lms_role(person.roles), hub_role)
        if new:
            store.bind(registration.issuer, person.user_id, name)
        return name, role, link.course


def configure(c: Any, registration: Path, roster: Path, root: Path) -> None:
    """Make ``c`` (jupyterhub_config.py's) launch through LTI 1.3 with ``registration``."""
    c.JupyterHub.authenticator_class = CourseLTIAuthenticator
    c.CourseLTIAuthenticator.registration_file = str(registration)
    c.CourseLTIAuthenticator.roster_file = str(roster)
    c.CourseLTIAuthenticator.hub_root = str(root)
