"""The tests' local LMS (``lti_platform.py``) started as an LMS runs: its own process, over TLS
from a local certificate authority (trustme), with the hub's demo people as its users.

Its users are LMS accounts with opaque ids (``u-...``, as Canvas's are UUIDs) and institution
emails; the hub learns who they are only through the launch and the roster.
"""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import trustme
from ports import free_port

PLATFORM = Path(__file__).with_name("lti_platform.py")
LMS_HOST = "127.0.0.1"  # the LMS's site; the hub's is "localhost", another site
HUB_HOST = "localhost"
DOMAIN = "example.edu"
LMS = "http://purl.imsglobal.org/vocab/lis/v2/membership"
LEARNER, INSTRUCTOR = f"{LMS}#Learner", f"{LMS}#Instructor"
TA = f"{LMS}/Instructor#TeachingAssistant"
CLIENT_ID, DEPLOYMENT = "channels-hub", "deployment-1"

# The hub's demo roster as the LMS has it: channels-a is LMS course ctx-a, channels-b ctx-b.
USERS = {
    "u-7f3a": ("Ada", "Lovelace", "ada"),
    "u-51c2": ("Grace", "Hopper", "grace"),
    "u-0d9e": ("Tomás", "Rivera", "tomas"),
    "u-a11c": ("Alice", "Liddell", "alice"),
    "u-b1a1": ("Bilal", "Aziz", "bilal"),
    "u-c4e7": ("Chen", "Wei", "chen"),
}
CONTEXTS = {
    "ctx-a": {
        "u-7f3a": [INSTRUCTOR],
        "u-0d9e": [INSTRUCTOR, TA],  # a TA: Canvas sends both
        "u-a11c": [LEARNER],
        "u-c4e7": [LEARNER],
    },
    "ctx-b": {"u-51c2": [INSTRUCTOR], "u-b1a1": [LEARNER], "u-c4e7": [LEARNER]},
}
LINK_OF = {"ctx-a": "rl-channels-a", "ctx-b": "rl-channels-b"}


def user_id(login: str) -> str:
    """The LMS user id of a hub demo login."""
    return next(uid for uid, (_, _, name) in USERS.items() if name == login)


@dataclass
class Tls:
    """The local CA and one server certificate for both hosts (the LMS's and the hub's)."""

    ca_file: Path
    cert_file: Path
    key_file: Path


def make_tls(folder: Path) -> Tls:
    ca = trustme.CA()
    cert = ca.issue_cert(LMS_HOST, HUB_HOST)
    tls = Tls(folder / "ca.pem", folder / "server.pem", folder / "server.key")
    ca.cert_pem.write_to_path(str(tls.ca_file))
    cert.private_key_pem.write_to_path(str(tls.key_file))
    with open(tls.cert_file, "wb") as f:
        for blob in cert.cert_chain_pems:
            f.write(blob.bytes())
    return tls


def platform_config(tool: dict, token_lifetime: int = 300) -> dict:
    """The LMS's users, courses, links and its registration of the tool."""
    return {
        "client_id": CLIENT_ID,
        "deployment_id": DEPLOYMENT,
        "tool": tool,
        "users": {
            uid: {
                "given_name": given,
                "family_name": family,
                "email": f"{login}@{DOMAIN}",
                "sourcedid": f"S{uid[2:]}",
            }
            for uid, (given, family, login) in USERS.items()
        },
        "contexts": {
            ctx: {
                "title": f"Convolutions, section {ctx[-1].upper()}",
                "label": f"CONV-{ctx[-1].upper()}",
                "members": {uid: {"roles": roles} for uid, roles in members.items()},
            }
            for ctx, members in CONTEXTS.items()
        },
        "links": {
            link: {
                "context": ctx,
                "title": "Channels (D2L 7.4)",
                "token_lifetime": token_lifetime,
            }
            for ctx, link in LINK_OF.items()
        },
    }


def registration(lms_url: str, key_dir: Path, courses: dict[str, str]) -> dict:
    """The tool's registration with this LMS: ``courses`` hub course -> LMS context."""
    return {
        "issuer": lms_url,
        "client_id": CLIENT_ID,
        "deployment_ids": [DEPLOYMENT],
        "authorize_url": f"{lms_url}/authorize",
        "jwks_url": f"{lms_url}/jwks",
        "token_url": f"{lms_url}/token",
        "key_dir": str(key_dir),
        "student_id_from": "email",
        "email_domains": [DOMAIN],
        "courses": {
            course: {
                "context_id": ctx,
                "memberships_url": f"{lms_url}/contexts/{ctx}/memberships",
                "lineitems_url": f"{lms_url}/contexts/{ctx}/lineitems",
            }
            for course, ctx in courses.items()
        },
    }


@dataclass
class LocalLms:
    url: str
    config_path: Path
    tls: Tls
    process: subprocess.Popen

    def config(self) -> dict:
        return json.loads(self.config_path.read_text())

    def write_config(self, config: dict) -> None:
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(config, indent=1))
        os.replace(tmp, self.config_path)

    def get(self, path: str) -> dict:
        context = ssl.create_default_context(cafile=str(self.tls.ca_file))
        with urllib.request.urlopen(
            f"{self.url}{path}", context=context, timeout=10
        ) as r:
            return json.loads(r.read())

    def gradebook(self) -> dict:
        return self.get("/_gradebook")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def start_lms(
    folder: Path, tls: Tls, config: dict, port: int | None = None
) -> LocalLms:
    """The LMS in its own process; returns once it answers over TLS."""
    port = port or free_port()
    config_path = folder / "platform.json"
    config_path.write_text(json.dumps(config, indent=1))
    env = {
        **os.environ,
        "REQUESTS_CA_BUNDLE": str(tls.ca_file),
    }  # the tool's key set URL
    with open(folder / "platform.log", "w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                str(PLATFORM),
                f"--config={config_path}",
                f"--port={port}",
                f"--cert={tls.cert_file}",
                f"--key={tls.key_file}",
                f"--host={LMS_HOST}",
            ],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=env,
        )
    line = process.stdout.readline() if process.stdout else ""
    if process.stdout:
        process.stdout.close()  # one line was all it says
    if line.strip() != "ready":
        process.kill()
        raise RuntimeError(
            f"the LMS did not start: {(folder / 'platform.log').read_text()}"
        )
    lms = LocalLms(f"https://{LMS_HOST}:{port}", config_path, tls, process)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            lms.gradebook()
            return lms
        except OSError:
            time.sleep(0.2)
    lms.stop()
    raise RuntimeError("the LMS does not answer")
