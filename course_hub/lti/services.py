"""The platform's REST services as the tool calls them: a token, then JSON over HTTPS.

A service token comes from the platform's token URL by OAuth 2 client credentials with a JWT
signed by the tool's key (IMS Security Framework 4.1: ``iss`` and ``sub`` the client id, ``aud``
the token URL, a fresh ``jti``, five minutes' life). Replies are read as untrusted data: at most
``MAX_REPLY`` bytes, JSON of the expected shape or a ``ServiceError``, a bounded number of pages
(``Link: <...>; rel="next"``, as both services page), and the token is sent to the URL asked
for only, never on to where a redirect points.
"""

from __future__ import annotations

import json
import re
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import jwt

from course_hub.lti.keys import signing_key
from course_hub.lti.registration import Registration

MAX_REPLY = 16 * 1024 * 1024
MAX_PAGES = 1000
TIMEOUT = 30
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?', re.IGNORECASE)


class ServiceError(RuntimeError):
    """A call the platform refused or answered with something unusable."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Reply:
    status: int
    body: object
    headers: dict[str, str]


@dataclass
class PlatformServices:
    """One registration's services, with a token per set of scopes, reused until it expires."""

    registration: Registration
    timeout: float = TIMEOUT
    _tokens: dict[str, tuple[str, float]] = field(default_factory=dict)

    def _context(self) -> ssl.SSLContext:
        """The system's CAs (or ``SSL_CERT_FILE``'s), host names checked."""
        return ssl.create_default_context()

    def _send(self, request: urllib.request.Request) -> Reply:
        opener = urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=self._context())
        )
        try:
            with opener.open(request, timeout=self.timeout) as response:
                status, headers = response.status, dict(response.headers)
                raw = response.read(MAX_REPLY + 1)
        except urllib.error.HTTPError as error:
            with error:  # its connection, closed now rather than when collected
                detail = error.read(2000).decode("utf-8", "replace")
            raise ServiceError(
                f"{request.get_method()} {request.full_url}: {error.code} "
                f"{_printable(detail)}",
                error.code,
            ) from None
        except (OSError, ValueError) as error:
            raise ServiceError(
                f"{request.get_method()} {request.full_url}: {error}"
            ) from None
        if len(raw) > MAX_REPLY:
            raise ServiceError(f"{request.full_url}: a reply over {MAX_REPLY} bytes")
        body: object = None
        if raw.strip():
            try:
                body = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                raise ServiceError(
                    f"{request.full_url}: a reply that is not JSON"
                ) from None
        return Reply(status, body, headers)

    def token(self, scopes: tuple[str, ...]) -> str:
        """A service token for ``scopes`` (cached until a minute before it expires)."""
        wanted = " ".join(sorted(scopes))
        cached = self._tokens.get(wanted)
        if cached and cached[1] > time.monotonic():
            return cached[0]
        reg = self.registration
        key = signing_key(reg.key_dir)
        now = int(time.time())
        assertion = jwt.encode(
            {
                "iss": reg.client_id,
                "sub": reg.client_id,
                "aud": reg.token_url,
                "iat": now,
                "exp": now + 300,
                "jti": uuid.uuid4().hex,
            },
            key.pem,
            algorithm="RS256",
            headers={"kid": key.kid},
        )
        form = urllib.parse.urlencode(
            {
                "grant_type": "client_credentials",
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": assertion,
                "scope": wanted,
            }
        ).encode()
        request = urllib.request.Request(
            reg.token_url,
            data=form,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            method="POST",
        )
        reply = self._send(request)
        body = reply.body if isinstance(reply.body, dict) else {}
        token, lifetime = body.get("access_token"), body.get("expires_in", 3600)
        if not isinstance(token, str) or not token:
            raise ServiceError(f"{reg.token_url}: no access_token in the reply")
        granted = set(str(body.get("scope", wanted)).split())
        if not set(scopes) <= granted:
            raise ServiceError(
                f"the platform did not grant {sorted(set(scopes) - granted)}: "
                "enable them in the tool's registration (README)"
            )
        if not isinstance(lifetime, int) or lifetime <= 0:
            lifetime = 3600
        self._tokens[wanted] = (token, time.monotonic() + max(lifetime - 60, 1))
        return token

    def call(
        self,
        method: str,
        url: str,
        scopes: tuple[str, ...],
        accept: str,
        body: object = None,
        content_type: str = "",
    ) -> Reply:
        """One request with a token; the token goes to ``url`` only."""
        if urllib.parse.urlparse(url).scheme != "https":
            raise ServiceError(
                f"refusing to send a service token to {url!r} (not https)"
            )
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Accept", accept)
        if content_type:
            request.add_header("Content-Type", content_type)
        request.add_unredirected_header("Authorization", f"Bearer {self.token(scopes)}")
        return self._send(request)

    def pages(self, url: str, scopes: tuple[str, ...], accept: str) -> Iterator[Reply]:
        """GET ``url`` and each ``rel="next"`` page after it (at most ``MAX_PAGES``)."""
        seen = {url}
        for _ in range(MAX_PAGES):
            reply = self.call("GET", url, scopes, accept)
            yield reply
            link = next(
                (v for k, v in reply.headers.items() if k.lower() == "link"), ""
            )
            found = NEXT.search(link)
            if not found:
                return
            url = urllib.parse.urljoin(url, found[1])
            if url in seen:  # a page that links back: the list is complete
                return
            seen.add(url)
        raise ServiceError(f"{url}: more than {MAX_PAGES} pages")


def _printable(text: str, limit: int = 300) -> str:
    return "".join(ch if ch.isprintable() else " " for ch in text)[:limit]
