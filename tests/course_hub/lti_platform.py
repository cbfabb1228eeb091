"""A small LMS for the LTI tests: ``lti1p3platform``'s platform side behind tornado, over TLS.

Not a stub of the tool's expectations: the protocol is lti1p3platform's (0.1.8), a platform
library that LMS plugins are built on, and this file only gives it what an LMS gives it: users,
courses (contexts) with members and roles, a link per course, a session per browser, storage for
line items and scores, and HTTP. The launch is its ``OIDCLoginAbstract`` (the third-party login
redirect) and ``LTIAdvantageMessageLaunchAbstract`` (the signed id_token with the AGS and NRPS
claims); the service token is its ``get_access_token`` (a client assertion checked against the
tool's key set, fetched from the tool's URL); NRPS and AGS are its
``NamesRoleProvisioningService`` and ``AssignmentsGradesService`` with storage here.

What an LMS does and the library leaves to it, done here as Canvas and Moodle do: the
authorization request's ``login_hint`` must be the browser's own LMS user and its
``redirect_uri`` one the tool registered; a score for a user who is not an active Learner of the
course is refused (403, as Canvas answers for a concluded enrollment); a score older than the
last one is refused (409); containers are paged (two per page) with ``Link: rel="next"``.
Two corrections to the library's wire format, both where its service classes hand back a
``Response`` for the framework to write: a line item container is written as the JSON array the
AGS spec defines (the library returns its page object), and ``next`` goes in the ``Link`` header,
not the body, as both specs say.

Run: ``python lti_platform.py --config platform.json --port P --cert C --key K``; it prints
``ready`` when it listens. The config (users, contexts, links, the tool) is read again on every
request, so a test changes the course by rewriting it. ``GET /_gradebook`` shows the LMS's
gradebook as JSON, as a test reads it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import ssl
import sys
import threading
import typing as t
from datetime import datetime
from html import escape
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from lti1p3platform.exceptions import (
    LineItemNotFoundException,
    LtiException,
    PreflightRequestValidationException,
)
from lti1p3platform.ltiplatform import LTI1P3PlatformConfAbstract
from lti1p3platform.membership import Context
from lti1p3platform.message_launch import LTIAdvantageMessageLaunchAbstract
from lti1p3platform.oidc_login import OIDCLoginAbstract
from lti1p3platform.registration import Registration
from lti1p3platform.request import Request, TRequest
from lti1p3platform.score import UpdateScoreStatus
from lti1p3platform.service_connector import (
    AssignmentsGradesService,
    NamesRoleProvisioningService,
)
from tornado import httpserver, ioloop, web

LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
PAGE = 2  # members and line items per page: every container the tool reads is paged
SESSION = "lms_session"


def _private_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _public_pem(private: str) -> str:
    key = serialization.load_pem_private_key(private.encode(), password=None)
    return (
        key.public_key()
        .public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        )
        .decode()
    )


class Store:
    """The LMS's database: config (re-read on each request), its key, line items, scores."""

    def __init__(self, config: Path, base_url: str) -> None:
        self.config_path = config
        self.base_url = base_url
        self.private_pem = _private_pem()
        self.lock = threading.Lock()
        self.lineitems: dict[str, dict[str, t.Any]] = {}  # id URL -> line item
        self.scores: dict[
            str, dict[str, dict[str, t.Any]]
        ] = {}  # id URL -> user -> score
        self.ids = itertools.count(1)

    @property
    def config(self) -> dict[str, t.Any]:
        return json.loads(self.config_path.read_text())

    def members(self, context: str) -> dict[str, dict[str, t.Any]]:
        return self.config["contexts"][context]["members"]


class Platform(LTI1P3PlatformConfAbstract):
    """lti1p3platform's platform configuration, from the LMS's config."""

    def init_platform_config(self, **kwargs: t.Any) -> None:
        self.store: Store = kwargs["store"]

    def get_registration_by_params(self, **kwargs: t.Any) -> Registration:
        store = self.store
        config = store.config
        tool = config["tool"]
        registration = (
            Registration()
            .set_iss(store.base_url)
            .set_client_id(config["client_id"])
            .set_deployment_id(config["deployment_id"])
            .set_oidc_login_url(tool["login_url"])
            .set_launch_url(tool["target_link_uri"])
            .set_platform_private_key(store.private_pem)
            .set_platform_public_key(_public_pem(store.private_pem))
        )
        if "jwks" in tool:
            registration.set_tool_key_set(tool["jwks"])
        else:
            registration.set_tool_key_set_url(tool["jwks_url"])
        return registration


class TornadoRequest(Request):
    """A tornado request as lti1p3platform reads one."""

    def build_metadata(self, request: t.Any) -> TRequest:
        query = {k: v[0].decode() for k, v in request.query_arguments.items()}
        for key in ("page", "limit"):  # the library adds 1 to page: numbers, not text
            if key in query:
                query[key] = int(query[key]) if query[key].isdigit() else 1
        if request.method == "GET" and request.path.endswith(
            ("/memberships", "/lineitems")
        ):
            query.setdefault("limit", PAGE)  # this LMS pages, as Canvas and Moodle do
        form = {k: v[0].decode() for k, v in request.body_arguments.items()}
        content_type = request.headers.get("Content-Type", "")
        body: t.Any = ""
        if "json" in content_type and request.body:
            body = json.loads(request.body)
        return {
            "method": request.method,
            "form_data": form,
            "get_data": query,
            "headers": request.headers,
            "content_type": content_type,
            "path": request.path,
            "json": body,
        }


class Login(OIDCLoginAbstract):
    """The third-party login: the browser goes to the tool's login URL with a hint."""

    def set_lti_message_hint(self, **kwargs: t.Any) -> None:
        self._lti_message_hint = kwargs["link"]

    def get_redirect(self, url: str) -> str:
        return url


class Launch(LTIAdvantageMessageLaunchAbstract):
    """The authorization response: the id_token of the session's user for the hinted link."""

    def __init__(
        self, request: Request, platform: Platform, handler: LmsHandler
    ) -> None:
        super().__init__(request, platform)
        self.handler = handler

    def get_preflight_response(self) -> dict[str, t.Any]:
        return self._request.get_data or self._request.form_data

    def prepare_launch(self, preflight_response: dict[str, t.Any]) -> None:
        store = self.handler.store
        config = store.config
        user = self.handler.current_user
        if not user or preflight_response.get("login_hint") != user:
            raise web.HTTPError(403, "login_hint is not the signed-in LMS user")
        if (
            preflight_response.get("redirect_uri")
            not in config["tool"]["redirect_uris"]
        ):
            raise web.HTTPError(400, "redirect_uri is not one the tool registered")
        link = config["links"].get(preflight_response.get("lti_message_hint", ""))
        if link is None:
            raise web.HTTPError(400, "unknown lti_message_hint")
        context = config["contexts"][link["context"]]
        member = context["members"].get(user)
        if member is None or member.get("status", "Active") != "Active":
            raise web.HTTPError(403, "not an active member of this course")
        person = config["users"][user]
        self.set_user_data(
            user,
            member["roles"],
            full_name=f"{person['given_name']} {person['family_name']}",
            email_address=person["email"],
        )
        self.set_extra_claims(
            {
                "given_name": person["given_name"],
                "family_name": person["family_name"],
                "https://purl.imsglobal.org/spec/lti/claim/lis": {
                    "person_sourcedid": person.get("sourcedid", "")
                },
            }
        )
        self.set_launch_context_claim(
            link["context"],
            context_types=[
                "http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering"
            ],
            context_title=context["title"],
            context_label=context["label"],
        )
        self.set_resource_link_claim(
            preflight_response["lti_message_hint"], title=link["title"]
        )
        base = f"{store.base_url}/contexts/{link['context']}"
        self.set_ags(lineitems_url=f"{base}/lineitems", allow_creating_lineitems=True)
        self.set_nrps(f"{base}/memberships")
        self.set_id_token_expiration(int(link.get("token_lifetime", 300)))

    def render_launch_form(self, launch_data: dict[str, t.Any], **kwargs: t.Any) -> str:
        # The library's own template (lti1p3platform/framework/templates) is this form; it is
        # loaded through pkg_resources, which this environment's setuptools deprecates.
        fields = "".join(
            f'<input type="hidden" name="{escape(k)}" value="{escape(str(launch_data[k]))}">'
            for k in ("id_token", "state")
        )
        return (
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            "<title>LTI Tool Launch</title></head><body>"
            f'<form method="POST" action="{escape(launch_data["launch_url"])}" id="form">'
            f"{fields}</form>"
            '<script>document.getElementById("form").submit();</script></body></html>'
        )


class Members(NamesRoleProvisioningService):
    def __init__(
        self, request: Request, platform: Platform, store: Store, context: str
    ):
        super().__init__(
            request, platform, f"{store.base_url}/contexts/{context}/memberships"
        )
        self.store, self.context = store, context

    def get_context_by_id(self) -> Context:
        c = self.store.config["contexts"][self.context]
        return Context(id=self.context, label=c["label"], title=c["title"])

    def get_member_data_page(self, page: int = 1, limit: int | None = None, **_: t.Any):
        config = self.store.config
        everyone = [
            {
                "user_id": uid,
                "roles": m["roles"],
                "status": m.get("status", "Active"),
                "name": f"{config['users'][uid]['given_name']} "
                f"{config['users'][uid]['family_name']}",
                "given_name": config["users"][uid]["given_name"],
                "family_name": config["users"][uid]["family_name"],
                "email": config["users"][uid]["email"],
                "lis_person_sourcedid": config["users"][uid].get("sourcedid", ""),
            }
            for uid, m in sorted(self.store.members(self.context).items())
        ]
        return _page(everyone, page, limit)


def _page(items: list[t.Any], page: int, limit: int | None) -> dict[str, t.Any]:
    size = limit or PAGE
    start = (page - 1) * size
    return {
        "content": items[start : start + size],
        "has_next": start + size < len(items),
        "next": None,
    }


class Grades(AssignmentsGradesService):
    def __init__(
        self, request: Request, platform: Platform, store: Store, context: str
    ):
        base = f"{store.base_url}/contexts/{context}/lineitems"
        super().__init__(request, platform, base, base)
        self.store, self.context, self.base = store, context, base

    def _mine(self) -> list[dict[str, t.Any]]:
        return [
            i
            for i in self.store.lineitems.values()
            if i["id"].startswith(self.base + "/")
        ]

    def find_lineitems(self, page=1, limit=None, line_item_id=None, resource_link_id=None,
                       resource_id=None, tag=None, **_):  # fmt: skip
        items = [
            i
            for i in self._mine()
            if (resource_id is None or i.get("resourceId") == resource_id)
            and (tag is None or i.get("tag") == tag)
        ]
        return _page(items, page, limit)

    def find_lineitem(self, line_item_id: str) -> dict[str, t.Any]:
        found = self.store.lineitems.get(f"{self.base}/{line_item_id}")
        if found is None:
            raise LineItemNotFoundException()
        return found

    def create_lineitem(self, creation_data: dict[str, t.Any]) -> dict[str, t.Any]:
        with self.store.lock:
            item = {**creation_data, "id": f"{self.base}/{next(self.store.ids)}"}
            self.store.lineitems[item["id"]] = item
            self.store.scores[item["id"]] = {}
        return item

    def update_lineitem(self, update_data: dict[str, t.Any]) -> dict[str, t.Any]:
        item_id = f"{self.base}/{update_data['id']}"
        if item_id not in self.store.lineitems:
            raise LineItemNotFoundException()
        self.store.lineitems[item_id] = {**update_data, "id": item_id}
        return self.store.lineitems[item_id]

    def delete_lineitem(self, line_item_id: str) -> None:
        if self.store.lineitems.pop(f"{self.base}/{line_item_id}", None) is None:
            raise LineItemNotFoundException()

    def update_score(
        self, line_item_id: str, score: dict[str, t.Any]
    ) -> UpdateScoreStatus:
        item_id = f"{self.base}/{line_item_id}"
        if item_id not in self.store.lineitems:
            raise LineItemNotFoundException()
        member = self.store.members(self.context).get(str(score.get("userId")))
        if (
            member is None
            or LEARNER not in member["roles"]
            or member.get("status", "Active") != "Active"
        ):
            return UpdateScoreStatus.NOTAPPLIED
        when = datetime.fromisoformat(score["timestamp"])
        with self.store.lock:
            results = self.store.scores[item_id]
            last = results.get(score["userId"])
            if last and datetime.fromisoformat(last["timestamp"]) >= when:
                return UpdateScoreStatus.OLD_TIMESTAMP
            created = last is None
            results[score["userId"]] = score
        return UpdateScoreStatus.CREATED if created else UpdateScoreStatus.SUCCESS

    def get_results(self, line_item_id: str, page=1, limit=None, user_id=None, **_):
        results = self.store.scores.get(f"{self.base}/{line_item_id}", {})
        rows = [
            {
                "userId": u,
                "resultScore": s["scoreGiven"],
                "resultMaximum": s["scoreMaximum"],
            }
            for u, s in sorted(results.items())
            if user_id is None or u == user_id
        ]
        return _page(rows, page, limit)


class LmsHandler(web.RequestHandler):
    @property
    def store(self) -> Store:
        return self.settings["store"]

    def platform(self) -> Platform:
        platform = Platform(store=self.store)
        platform.get_registration()
        return platform

    def get_current_user(self) -> str | None:
        value = self.get_signed_cookie(SESSION)
        return value.decode() if value else None

    def check_xsrf_cookie(
        self,
    ) -> None:  # the services are called by the tool, not a form
        return

    def write_response(self, response: t.Any, container: bool = False) -> None:
        """A library service ``Response``: its code, its media type, ``next`` as a Link."""
        self.set_status(response.code)
        result = response.result
        if isinstance(result, dict) and result.get("next"):
            self.set_header("Link", f'<{result["next"]}>; rel="next"')
        if container and isinstance(result, dict):
            result = result.get("content", [])
        elif isinstance(result, dict):
            result = {k: v for k, v in result.items() if k != "next"}
        if result is None:
            self.finish(json.dumps({"status": response.message}))
            return
        self.set_header("Content-Type", response.media_type)
        self.finish(json.dumps(result))


class SignIn(LmsHandler):
    """The LMS's own sign-in (the tests' users have no password here)."""

    def get(self) -> None:
        user = self.get_argument("user")
        if user not in self.store.config["users"]:
            raise web.HTTPError(404)
        self.set_signed_cookie(
            SESSION, user, samesite="Lax", secure=True, httponly=True
        )
        self.redirect(self.get_argument("next", "/"))


class CoursePage(LmsHandler):
    """A course's page with its link to the tool, as an LMS shows it."""

    def get(self, context: str) -> None:
        config = self.store.config
        if self.current_user not in config["contexts"][context]["members"]:
            raise web.HTTPError(403)
        links = "".join(
            f'<li><a href="/launch/{escape(lid)}">{escape(link["title"])}</a></li>'
            for lid, link in config["links"].items()
            if link["context"] == context
        )
        self.finish(
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>'
            f"{escape(config['contexts'][context]['title'])}</title></head><body>"
            f"<main><h1>{escape(config['contexts'][context]['title'])}</h1>"
            f"<ul>{links}</ul></main></body></html>"
        )


class StartLaunch(LmsHandler):
    def get(self, link: str) -> None:
        if not self.current_user:
            raise web.HTTPError(403)
        login = Login(TornadoRequest(self.request), self.platform())
        login.set_lti_message_hint(link=link)
        self.redirect(login.initiate_login(self.current_user))


class Authorize(LmsHandler):
    def handle(self) -> None:
        launch = Launch(TornadoRequest(self.request), self.platform(), self)
        try:
            self.finish(launch.lti_launch())
        except PreflightRequestValidationException:
            raise web.HTTPError(400, "invalid authorization request") from None

    get = post = handle


class Token(LmsHandler):
    def post(self) -> None:
        form = {k: v[0].decode() for k, v in self.request.body_arguments.items()}
        try:
            token = self.platform().get_access_token(form)
        except (LtiException, Exception) as error:  # the library raises several kinds
            self.set_status(400)
            self.finish({"error": "invalid_client", "error_description": str(error)})
            return
        self.finish(token)


class KeySet(LmsHandler):
    def get(self) -> None:
        self.finish(self.platform().get_jwks())


class MembershipHandler(LmsHandler):
    def get(self, context: str) -> None:
        service = Members(
            TornadoRequest(self.request), self.platform(), self.store, context
        )
        self.write_response(service.handle_resp(service.handle_get_members))


class LineItemsHandler(LmsHandler):
    def service(self, context: str) -> Grades:
        return Grades(
            TornadoRequest(self.request), self.platform(), self.store, context
        )

    def get(self, context: str) -> None:
        s = self.service(context)
        self.write_response(s.handle_resp(s.handle_get_lineitems), container=True)

    def post(self, context: str) -> None:
        s = self.service(context)
        self.write_response(s.handle_resp(s.handle_create_lineitem))


class LineItemHandler(LineItemsHandler):
    def get(self, context: str, item: str) -> None:
        s = self.service(context)
        self.write_response(s.handle_resp(s.handle_get_lineitem, line_item_id=item))

    def put(self, context: str, item: str) -> None:
        s = self.service(context)
        self.write_response(s.handle_resp(s.handle_update_lineitem, line_item_id=item))


class ScoresHandler(LineItemsHandler):
    def post(self, context: str, item: str) -> None:
        s = self.service(context)
        self.write_response(s.handle_resp(s.handle_update_score, line_item_id=item))


class GradebookView(LmsHandler):
    """The LMS's gradebook, for the tests: every line item and the latest score per user."""

    def get(self) -> None:
        self.finish(
            {
                "lineitems": list(self.store.lineitems.values()),
                "scores": self.store.scores,
            }
        )


def make_app(store: Store, secret: str) -> web.Application:
    ctx = r"/contexts/([\w-]+)"
    return web.Application(
        [
            (r"/signin", SignIn),
            (r"/course/([\w-]+)", CoursePage),
            (r"/launch/([\w-]+)", StartLaunch),
            (r"/authorize", Authorize),
            (r"/token", Token),
            (r"/jwks", KeySet),
            (ctx + r"/memberships", MembershipHandler),
            (ctx + r"/lineitems", LineItemsHandler),
            (ctx + r"/lineitems/(\d+)", LineItemHandler),
            (ctx + r"/lineitems/(\d+)/scores", ScoresHandler),
            (r"/_gradebook", GradebookView),
        ],
        store=store,
        cookie_secret=secret,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(args.cert, args.key)
    store = Store(args.config, f"https://{args.host}:{args.port}")
    server = httpserver.HTTPServer(make_app(store, _private_pem()), ssl_options=tls)
    server.listen(args.port, "127.0.0.1")
    print("ready", flush=True)
    ioloop.IOLoop.current().start()


if __name__ == "__main__":
    sys.exit(main())
