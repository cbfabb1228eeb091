"""The platform's replies read as untrusted: whatever an LMS (or whoever answers in its place)
sends back, the commands end with a ``ServiceError`` that says what, never a crash, a hang or a
token sent elsewhere. A TLS server on this machine plays the platform, one reply per path."""

from __future__ import annotations

import http.server
import json
import ssl
import threading
from pathlib import Path
from typing import ClassVar

import pytest
import trustme

from course_hub.lti import services
from course_hub.lti.keys import new_key
from course_hub.lti.registration import read_registration
from course_hub.lti.services import PlatformServices, ServiceError

SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
TOKEN = {
    "access_token": "t0ken",
    "token_type": "bearer",
    "expires_in": 3600,
    "scope": SCOPE,
}


class Platform(http.server.BaseHTTPRequestHandler):
    replies: ClassVar[dict[str, tuple[int, dict[str, str], bytes]]] = {}
    seen: ClassVar[list[tuple[str, str | None]]] = []

    def _answer(self) -> None:
        self.seen.append((self.path, self.headers.get("Authorization")))
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        status, headers, body = self.replies.get(
            self.path.split("?")[0], (404, {}, b"")
        )
        if self.path.startswith("/chain?p="):  # an endless chain of pages
            n = int(self.path.split("=")[1])
            status, headers, body = (
                200,
                {"Link": f'</chain?p={n + 1}>; rel="next"'},
                b"[]",
            )
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def log_message(self, *args) -> None:
        return


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    folder = tmp_path_factory.mktemp("replies")
    ca = trustme.CA()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Platform)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"https://127.0.0.1:{server.server_address[1]}"
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    new_key(folder / "keys")
    (folder / "lti.json").write_text(
        json.dumps(
            {
                "issuer": base,
                "client_id": "c",
                "deployment_ids": ["d"],
                "authorize_url": f"{base}/auth",
                "jwks_url": f"{base}/jwks",
                "token_url": f"{base}/token",
                "key_dir": "keys",
                "email_domains": ["example.edu"],
            }
        )
    )
    yield base, folder
    server.shutdown()
    server.server_close()


@pytest.fixture
def client(platform, monkeypatch) -> tuple[str, PlatformServices]:
    base, folder = platform
    monkeypatch.setenv("SSL_CERT_FILE", str(folder / "ca.pem"))
    Platform.replies = {"/token": (200, {}, json.dumps(TOKEN).encode())}
    Platform.seen = []
    return base, PlatformServices(read_registration(folder / "lti.json"), timeout=5)


def get(base: str, client: PlatformServices) -> list:
    return list(client.pages(f"{base}/members", (SCOPE,), "application/json"))


def test_a_reply_over_the_size_cap_is_refused(client, monkeypatch):
    base, c = client
    monkeypatch.setattr(services, "MAX_REPLY", 1000)
    Platform.replies["/members"] = (200, {}, b"[" + b"1," * 1000 + b"1]")
    with pytest.raises(ServiceError, match="a reply over 1000 bytes"):
        get(base, c)


@pytest.mark.parametrize("body", [b"<html>oops</html>", b"\xff\xfe", b'{"a": '])
def test_a_reply_that_is_not_json_is_refused(client, body):
    base, c = client
    Platform.replies["/members"] = (200, {}, body)
    with pytest.raises(ServiceError, match="not JSON"):
        get(base, c)


def test_pages_that_link_to_each_other_end_and_too_many_pages_are_refused(
    client, monkeypatch
):
    base, c = client
    Platform.replies["/members"] = (
        200,
        {"Link": f'<{base}/members>; rel="next"'},
        b"[]",
    )
    assert len(get(base, c)) == 1  # a page that links to itself is read once
    monkeypatch.setattr(services, "MAX_PAGES", 3)
    with pytest.raises(ServiceError, match="more than 3 pages"):
        list(c.pages(f"{base}/chain?p=0", (SCOPE,), "application/json"))


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        ((200, {}, b"{}"), "no access_token"),
        ((200, {}, b'{"access_token": 7}'), "no access_token"),
        ((400, {}, b'{"error": "invalid_client"}'), "/token: 400"),
        (
            (200, {}, json.dumps({**TOKEN, "scope": "other"}).encode()),
            "did not grant",
        ),
    ],
)
def test_a_token_reply_without_a_token_or_the_scopes_asked_is_refused(
    client, reply, message
):
    base, c = client
    Platform.replies["/token"] = reply
    with pytest.raises(ServiceError, match=message):
        get(base, c)


def test_the_token_is_never_sent_where_a_redirect_or_a_plain_url_points(client):
    base, c = client
    Platform.replies["/members"] = (302, {"Location": f"{base}/elsewhere"}, b"")
    Platform.replies["/elsewhere"] = (200, {}, b"[]")
    get(base, c)
    sent = dict(Platform.seen)
    assert sent["/members"] == "Bearer t0ken"
    assert sent["/elsewhere"] is None  # followed, without the token
    with pytest.raises(ServiceError, match="not https"):
        c.call("GET", "http://127.0.0.1:9/members", (SCOPE,), "application/json")


def test_an_error_page_from_the_platform_is_shortened_and_made_printable(client):
    base, c = client
    Platform.replies["/members"] = (403, {}, b"\x1b[31mdenied\x00" + b"x" * 5000)
    with pytest.raises(ServiceError) as raised:
        get(base, c)
    text = str(raised.value)
    assert raised.value.status == 403 and "\x1b" not in text and len(text) < 500


def test_the_fixture_answers_over_tls_only_with_the_local_ca(platform, monkeypatch):
    """Without the CA the platform's certificate is refused (the check is really made)."""
    base, folder = platform
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    c = PlatformServices(read_registration(Path(folder) / "lti.json"), timeout=5)
    with pytest.raises(ServiceError, match="CERTIFICATE_VERIFY_FAILED"):
        get(base, c)
