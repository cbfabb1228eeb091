"""LTI 1.3 launch from the local LMS into the course hub, in Chromium, and the launches refused.

The hub is ``course_hub/jupyterhub_config.py`` with the demo roster, started with the tool's
registration (``COURSE_HUB_LTI``) and HTTPS; the LMS (``lti_platform.py``, lti1p3platform) is
another process on another site (``127.0.0.1`` against the hub's ``localhost``), both with
certificates from one local CA. A student, an instructor and a TA each sign in to the LMS and
follow the course's link; each must land, logged in, in the right place for their role.

The refusals are tried as an attacker would, with a plain HTTP client that plays the browser:
the same launch posted twice (cookies and all), a token posted after it expired, a token whose
content is a real launch's but whose signature is another key's (or HS256 with the platform's
public key, or none), and launches the course must not accept (an LMS course not linked, a role
the roster contradicts, an email that would open another person's account).
"""

from __future__ import annotations

import base64
import hashlib
import html
import http.cookiejar
import json
import os
import re
import shutil
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import closing
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

import jwt
import pytest
from conftest import CHROMIUM, CHROMIUM_ARGS, readme_blocks, wait_for
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hubs import exclusive_hub, stop_hub
from local_lms import (
    HUB_HOST,
    INSTRUCTOR,
    LEARNER,
    LINK_OF,
    LocalLms,
    Tls,
    make_tls,
    platform_config,
    registration,
    start_lms,
    user_id,
)
from ports import HUB_PORTS, free_port_block

from autograder.paths import ROOT
from course_hub.lti.keys import new_key, public_key_set
from course_hub.provision import course_dir, layout
from course_hub.roster import DEMO_ROSTER, read_roster
from course_hub.views import grader_view

pytestmark = [
    pytest.mark.slow,
    pytest.mark.sandbox,
    pytest.mark.skipif(
        os.geteuid() != 0, reason="the hub makes Unix accounts: root only, as on CI"
    ),
]

CALLBACK = "/hub/lti13/oauth_callback"


@dataclass
class Hub:
    url: str
    root: Path
    lms: LocalLms
    tls: Tls
    keys: Path


def https_status(url: str, tls: Tls) -> int:
    context = ssl.create_default_context(cafile=str(tls.ca_file))
    try:
        with urllib.request.urlopen(url, timeout=5, context=context) as r:
            return r.status
    except urllib.error.HTTPError as e:
        with e:
            return e.code
    except OSError:
        return 0


@pytest.fixture(scope="module")
def hub():
    with exclusive_hub():
        Path("/srv").mkdir(exist_ok=True)
        root = Path(tempfile.mkdtemp(prefix="course-hub-lti-test-", dir="/srv"))
        state = Path(tempfile.mkdtemp(prefix="lti-test-"))
        port = free_port_block(HUB_PORTS)
        hub_url = f"https://{HUB_HOST}:{port}"
        tls = make_tls(state)
        keys = state / "lti-keys"
        new_key(keys)
        tool = {
            "login_url": f"{hub_url}/hub/lti13/oauth_login",
            "redirect_uris": [f"{hub_url}{CALLBACK}"],
            "target_link_uri": f"{hub_url}/hub/",
            "jwks_url": f"{hub_url}/hub/lti13/jwks",  # fetched by the LMS when it needs it
        }
        lms = start_lms(state, tls, platform_config(tool))
        reg = state / "lti.json"
        reg.write_text(
            json.dumps(
                registration(
                    lms.url, keys, {"channels-a": "ctx-a", "channels-b": "ctx-b"}
                )
            )
        )
        out = ROOT / "_build" / "course-hub"
        out.mkdir(parents=True, exist_ok=True)
        log_path = out / "lti-hub.log"
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("VIRTUAL_ENV", "PYTHONPATH")
        }
        env |= {
            "HUB_ROOT": str(root),
            "HUB_PORT": str(port),
            "HUB_ROSTER": str(DEMO_ROSTER.relative_to(ROOT)),  # make's demo passwords
            "SSL_CERT_FILE": str(tls.ca_file),  # the hub fetches the LMS's key set
        }
        # The README's command, with this test's registration and certificate in its paths.
        command = readme_blocks("tests/course_hub/test_lti_launch.py")[0]
        for path, ours in (
            ("/etc/course-hub/lti.json", reg),
            ("/etc/ssl/hub.pem", tls.cert_file),
            ("/etc/ssl/hub.key", tls.key_file),
        ):
            assert command.count(path) == 1, path
            command = command.replace(path, str(ours))
        with open(log_path, "w") as log:
            proc = subprocess.Popen(
                ["bash", "-e", "-c", command],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        try:

            def up() -> bool:
                assert proc.poll() is None, log_path.read_text()[-4000:]
                return all(
                    https_status(f"{hub_url}{p}", tls) == 200
                    for p in ("/hub/lti13/jwks", "/services/channels-a/formgrader")
                )

            # make hub checks the release and provisions first: the plain hub test allows as long.
            wait_for(up, 240, "make hub with LTI to start")
            yield Hub(hub_url, root, lms, tls, keys)
        finally:
            stop_hub(proc, root)
            lms.stop()
            shutil.rmtree(root, ignore_errors=True)
            shutil.rmtree(state, ignore_errors=True)
            print(f"hub log: {log_path}")


def spki_hash(cert_file: Path) -> str:
    """Chromium's pin for a certificate: base64 of the SHA-256 of its public key info."""
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    der = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


@pytest.fixture(scope="module")
def chromium(hub):
    """Chromium that trusts the local CA's one server key (by its pin) and nothing more."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                *CHROMIUM_ARGS,
                f"--ignore-certificate-errors-spki-list={spki_hash(hub.tls.cert_file)}",
            ],
        )
        yield browser
        browser.close()


# --- The tool's keys ----------------------------------------------------------------------


def test_the_hub_publishes_the_tools_public_keys_and_only_those(hub):
    context = ssl.create_default_context(cafile=str(hub.tls.ca_file))
    with urllib.request.urlopen(f"{hub.url}/hub/lti13/jwks", context=context) as r:
        served = json.loads(r.read())
    assert served == public_key_set(hub.keys)
    assert all(set(k) == {"kty", "e", "n", "kid", "alg", "use"} for k in served["keys"])


# --- Three people, three landings, in Chromium --------------------------------------------


def launch_in_browser(chromium, hub: Hub, login: str, context_id: str):
    """Sign in to the LMS as ``login``, open the course page, follow the tool's link."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(120_000)
    page.goto(f"{hub.lms.url}/signin?user={user_id(login)}&next=/course/{context_id}")
    page.get_by_role("link", name="Channels (D2L 7.4)").click()
    return page


def test_a_student_lands_in_their_own_jupyterlab_with_the_course(hub, chromium):
    page = launch_in_browser(chromium, hub, "alice", "ctx-a")
    page.wait_for_url(f"{hub.url}/user/alice/lab**")
    page.get_by_text("Nbgrader", exact=True).wait_for()
    # A student, not staff: the course's formgrader is closed to her.
    response = page.goto(f"{hub.url}/services/channels-a/formgrader/")
    assert response is not None and response.status == 403
    page.context.close()


@pytest.mark.parametrize(
    ("login", "course"), [("ada", "channels-a"), ("tomas", "channels-a")]
)
def test_an_instructor_and_a_ta_land_in_their_courses_formgrader(
    hub, chromium, login, course
):
    page = launch_in_browser(chromium, hub, login, "ctx-a")
    page.wait_for_url(f"{hub.url}/services/{course}/formgrader/**")
    page.get_by_text("Manage Assignments").first.wait_for()
    assert course in page.content()
    page.context.close()


# --- Refusals, as an attacker plays the browser ---------------------------------------------


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


@dataclass
class Client:
    """A browser's two cookie jars (LMS and hub), by hand, redirects not followed."""

    hub: Hub

    def __post_init__(self) -> None:
        self.jar = http.cookiejar.CookieJar()
        context = ssl.create_default_context(cafile=str(self.hub.tls.ca_file))
        self.opener = urllib.request.build_opener(
            NoRedirect,
            urllib.request.HTTPSHandler(context=context),
            urllib.request.HTTPCookieProcessor(self.jar),
        )

    def request(self, url: str, form: dict | None = None) -> tuple[int, Message, str]:
        """Status, headers (case-insensitive: the proxy writes them in lower case), body."""
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        try:
            with self.opener.open(url, data=data, timeout=60) as r:
                return r.status, r.headers, r.read().decode()
        except urllib.error.HTTPError as e:
            with e:
                return e.code, e.headers, e.read().decode()


@dataclass
class Pending:
    """A launch up to the point where the browser would post the token to the hub."""

    client: Client
    action: str
    form: dict


def start_launch(hub: Hub, login_or_uid: str, context_id: str = "ctx-a") -> Pending:
    """Sign in to the LMS, follow the link to the hub's login, the hub's redirect to the LMS's
    authorization, and read the auto-posting form the LMS answers with."""
    client = Client(hub)
    uid = login_or_uid if login_or_uid.startswith("u-") else user_id(login_or_uid)
    client.request(f"{hub.lms.url}/signin?user={uid}")
    status, headers, _ = client.request(f"{hub.lms.url}/launch/{LINK_OF[context_id]}")
    assert status == 302, status
    status, headers, _ = client.request(headers["Location"])  # the hub's login
    assert status == 302, status
    authorize = headers["Location"]
    status, _, body = client.request(authorize)
    assert status == 200, body
    action = html.unescape(re.search(r'action="([^"]+)"', body)[1])
    form = {
        name: html.unescape(value)
        for name, value in re.findall(r'name="(\w+)" value="([^"]*)"', body)
    }
    return Pending(client, action, form)


def post(pending: Pending, form: dict | None = None) -> tuple[int, Message, str]:
    """The browser's post of the LMS's form to the hub (or the attacker's, with ``form``)."""
    return pending.client.request(pending.action, form or pending.form)


def copy_jar(jar: http.cookiejar.CookieJar) -> list:
    return [c for c in jar]


def restore(client: Client, cookies: list) -> None:
    client.jar.clear()
    for cookie in cookies:
        client.jar.set_cookie(cookie)


def test_the_state_cookies_are_sent_back_across_sites_and_only_over_https(hub):
    client = Client(hub)
    client.request(f"{hub.lms.url}/signin?user={user_id('chen')}")
    _, headers, _ = client.request(f"{hub.lms.url}/launch/{LINK_OF['ctx-a']}")
    status, headers, _ = client.request(headers["Location"])  # the hub's login
    assert status == 302
    cookies = headers.get_all("Set-Cookie")
    for name in ("lti13authenticator-state", "lti13authenticator-nonce-state"):
        (cookie,) = [c for c in cookies if c.startswith(name + "=")]
        assert "SameSite=None" in cookie and "Secure" in cookie and "HttpOnly" in cookie


def test_a_launch_posted_a_second_time_with_its_cookies_is_refused(hub):
    pending = start_launch(hub, "chen")
    captured = copy_jar(
        pending.client.jar
    )  # everything the attacker could have recorded
    status, headers, _ = post(pending)
    assert (
        status == 302
        and headers["Location"] == "/hub/spawn/chen?next=%2Fuser%2Fchen%2Flab"
    )
    restore(pending.client, captured)
    status, _, body = post(pending)
    assert status == 400 and "already used" in body


def test_a_launch_token_posted_after_it_expired_is_refused(hub):
    config = hub.lms.config()
    config["links"][LINK_OF["ctx-a"]]["token_lifetime"] = 2
    hub.lms.write_config(config)
    try:
        pending = start_launch(hub, "chen")
    finally:
        config["links"][LINK_OF["ctx-a"]]["token_lifetime"] = 300
        hub.lms.write_config(config)
    time.sleep(3.5)
    status, _, body = post(pending)
    assert status == 400 and "expired" in body.lower()


def _forged(pending: Pending, key, algorithm: str, kid: str | None) -> str:
    claims = jwt.decode(pending.form["id_token"], options={"verify_signature": False})
    headers = {"kid": kid} if kid else None
    return jwt.encode(claims, key, algorithm=algorithm, headers=headers)


def test_a_real_launchs_claims_signed_with_another_key_are_refused_and_the_real_token_is_not(
    hub,
):
    """The attacker's token carries exactly a real launch's claims (an instructor's, with the
    right nonce and state) under the platform's key id; only the signature is theirs."""
    pending = start_launch(hub, "ada")
    kid = jwt.get_unverified_header(pending.form["id_token"])["kid"]
    captured = copy_jar(pending.client.jar)
    attacker = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for forged in (
        _forged(pending, attacker, "RS256", kid),
        _forged(pending, attacker, "RS256", None),
    ):
        restore(pending.client, captured)
        status, _, body = post(pending, {**pending.form, "id_token": forged})
        assert status == 400, body
    # HS256 keyed with the platform's public key (the algorithm confusion attack), and none.
    public = hub.lms.get("/jwks")["keys"][0]
    pem = jwt.algorithms.RSAAlgorithm.from_jwk(json.dumps(public)).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    claims = jwt.decode(pending.form["id_token"], options={"verify_signature": False})
    header = (
        base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    )
    body_b64 = (
        base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    )
    hmac_token = _hs256(claims, pem, kid)
    for forged in (hmac_token, f"{header}.{body_b64}."):
        restore(pending.client, captured)
        status, _, body = post(pending, {**pending.form, "id_token": forged})
        assert status == 400, body
    # The same request with the platform's own signature goes through.
    restore(pending.client, captured)
    status, headers, _ = post(pending)
    assert status == 302 and "/services/channels-a/formgrader" in headers["Location"]


def _hs256(claims: dict, secret: bytes, kid: str) -> str:
    """HS256 by hand: PyJWT refuses to use a PEM public key as an HMAC secret."""
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing = (
        b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
        + "."
        + b64(json.dumps(claims).encode())
    )
    return (
        signing + "." + b64(hmac.new(secret, signing.encode(), hashlib.sha256).digest())
    )


def test_a_launch_from_an_lms_course_not_linked_to_the_hub_is_refused(hub):
    config = hub.lms.config()
    config["contexts"]["ctx-c"] = {
        "title": "Another course",
        "label": "OTHER",
        "members": {user_id("alice"): {"roles": [LEARNER]}},
    }
    config["links"]["rl-other"] = {"context": "ctx-c", "title": "Channels (D2L 7.4)"}
    hub.lms.write_config(config)
    LINK_OF["ctx-c"] = "rl-other"
    try:
        pending = start_launch(hub, "alice", "ctx-c")
        status, _, body = post(pending)
    finally:
        del LINK_OF["ctx-c"]
    assert status == 403 and "is not linked to a course on this hub" in body


def test_a_launch_whose_lms_role_the_hub_roster_contradicts_is_refused(hub):
    """chen is a student of channels-a on the hub; the LMS calling him its instructor does not
    make him one here."""
    config = hub.lms.config()
    config["contexts"]["ctx-a"]["members"][user_id("chen")]["roles"] = [INSTRUCTOR]
    hub.lms.write_config(config)
    try:
        pending = start_launch(hub, "chen")
        status, _, body = post(pending)
    finally:
        config["contexts"]["ctx-a"]["members"][user_id("chen")]["roles"] = [LEARNER]
        hub.lms.write_config(config)
    assert status == 403
    assert "the LMS says instructor and the hub's roster says student" in html.unescape(
        body
    )


def test_an_lms_user_with_another_students_email_does_not_get_their_account(hub):
    """Once alice has launched (her LMS user is bound to the account alice), another LMS user
    who set their email to hers is refused, and alice still lands in her own account."""
    status, headers, _ = post(start_launch(hub, "alice"))
    assert (
        status == 302
        and headers["Location"] == "/hub/spawn/alice?next=%2Fuser%2Falice%2Flab"
    )
    config = hub.lms.config()
    config["users"]["u-ma11"] = {
        "given_name": "Mallory",
        "family_name": "M",
        "email": "alice@example.edu",
    }
    config["contexts"]["ctx-a"]["members"]["u-ma11"] = {"roles": [LEARNER]}
    hub.lms.write_config(config)
    try:
        status, _, body = post(start_launch(hub, "u-ma11"))
    finally:
        del config["contexts"]["ctx-a"]["members"]["u-ma11"]
        hub.lms.write_config(config)
    assert status == 403 and "belongs to another LMS user" in html.unescape(body)
    pending = start_launch(hub, "alice")
    status, headers, _ = post(pending)
    assert (
        status == 302
        and headers["Location"] == "/hub/spawn/alice?next=%2Fuser%2Falice%2Flab"
    )


def test_bindings_and_used_launches_are_in_the_hubs_folder_only_root_can_read(hub):
    for name in ("lti-identities.sqlite", "lti-launches.sqlite"):
        store = layout(hub.root)["hub"] / name
        assert store.stat().st_uid == 0 and (store.parent.stat().st_mode & 0o077) == 0


# --- The roster command in the hub's course, as its grading account --------------------------


def test_the_roster_command_fills_the_hub_courses_gradebook_as_its_grading_account(hub):
    """The LMS checks the command's signed request against the key set it fetches from the
    hub's ``/hub/lti13/jwks``; the gradebook stays the grading account's."""
    course = read_roster(DEMO_ROSTER).course("channels-a")
    home = layout(hub.root)["graders"] / course.grader
    tool = home / "lti"  # what the course's account may read: its registration and keys
    shutil.copytree(hub.keys, tool / "lti-keys")
    shutil.copy(hub.tls.ca_file, tool / "ca.pem")
    reg = json.loads((hub.keys.parent / "lti.json").read_text()) | {
        "key_dir": "lti-keys"
    }
    (tool / "lti.json").write_text(json.dumps(reg))
    subprocess.run(["chown", "-R", f"{course.grader}:", str(tool)], check=True)
    folder = course_dir(hub.root, course)
    env = {
        "PATH": f"{Path(sys.prefix) / 'bin'}:/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "SSL_CERT_FILE": str(tool / "ca.pem"),
    }
    done = subprocess.run(
        [*grader_view(course.grader, folder), sys.executable, "-m", "course_hub.lti",
         "roster", f"--registration={tool / 'lti.json'}"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "updated 2: alice, chen" in done.stdout
    db = folder / "gradebook.db"
    uri = "file:" + urllib.parse.quote(str(db)) + "?mode=ro"
    with closing(sqlite3.connect(uri, uri=True)) as gb:
        bound = dict(gb.execute("SELECT id, lms_user_id FROM student").fetchall())
    assert bound == {"alice": user_id("alice"), "chen": user_id("chen")}
    assert db.stat().st_uid == os.stat(folder).st_uid != 0
