"""The environment is the lock: every installed distribution at its locked version, nothing else.

`make setup` makes the venv requirements.txt (pip-compile's output, with hashes) with `uv pip
sync`, which resolves nothing and removes strays; these tests catch a venv, a lock or a
requirements.in that drifted, and a uv that would look somewhere pip does not.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tools"))
from gpu_kit_pins import canonical, locked_versions  # noqa: E402
from uv_index_options import pip_options, uv_options  # noqa: E402

LOCK = (ROOT / "requirements.txt").read_text()
DIRECT = (ROOT / "requirements.in").read_text()
PROJECT = (
    "d2l-channels-course"  # this repository, installed editable on top of the lock
)


def installed() -> dict[str, str]:
    """Every distribution in this environment's site-packages, by canonical name.

    Only site-packages itself: setuptools keeps its vendored libraries' metadata in a folder
    that an imported setuptools puts on sys.path, and those are not installed distributions.
    """
    site = sysconfig.get_paths()["purelib"]
    return {
        canonical(dist.metadata["Name"]): dist.version
        for dist in importlib.metadata.distributions(path=[site])
    }


def test_every_installed_distribution_is_in_the_lock_at_its_version():
    have = installed()
    have.pop(PROJECT)
    want = locked_versions(LOCK)
    unlisted = sorted(set(have) - set(want))
    missing = sorted(set(want) - set(have))
    wrong = sorted(
        f"{n} {have[n]} (lock: {want[n]})"
        for n in have.keys() & want
        if have[n] != want[n]
    )
    assert (unlisted, missing, wrong) == ([], [], []), "run make setup (or make lock)"


def test_every_locked_distribution_carries_a_hash():
    entries = re.split(r"\n(?=[A-Za-z0-9])", LOCK)
    pinned = [e for e in entries if re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*==", e)]
    assert len(pinned) == len(locked_versions(LOCK)) > 200
    for entry in pinned:
        assert "--hash=sha256:" in entry, entry.split("\n", 1)[0]


def test_every_direct_pin_is_exact_explained_and_locked_at_that_version():
    locked = locked_versions(LOCK)
    lines = DIRECT.splitlines()
    pins = [
        (i, line) for i, line in enumerate(lines) if line and not line.startswith("#")
    ]
    assert len(pins) >= 15
    for i, pin in pins:
        name, _, version = pin.partition("==")
        assert re.fullmatch(r"[0-9][0-9A-Za-z.+]*", version), f"{pin}: pin it exactly"
        assert locked.get(canonical(name)) == version, f"{pin}: run make lock"
        # The reason is the comment block above the pin (pins listed together share one).
        above = i - 1
        while above >= 0 and lines[above] and not lines[above].startswith("#"):
            above -= 1
        assert above >= 0 and lines[above].startswith("#"), (
            f"{pin}: say why it is pinned"
        )


def test_the_lock_names_no_index_or_machine_path():
    # A lock that carried this machine's mirror or wheel folder would not install elsewhere.
    assert not re.search(r"^(--|-f |-i )", LOCK, flags=re.M)
    assert "file://" not in LOCK and "/opt/" not in LOCK


def test_uv_looks_where_pip_is_configured_to_look():
    """The environment (PIP_*) beats the install section, which beats the global one, as in
    pip; lists split on spaces; what uv has no use for (a certificate file) is left out."""
    listing = "\n".join([
        ":env:.index-url='https://proxy.campus.example/simple'",
        "global.cert='/etc/ssl/certs/ca-certificates.crt'",
        "global.extra-index-url='file:///opt/a/simple file:///opt/b/simple'",
        "global.find-links='/opt/wheels'",
        "global.index-url='https://ignored.example/simple'",
        "install.find-links='/srv/wheels'",
        "download.no-index='true'",  # another command's section, not install's
    ])  # fmt: skip
    assert uv_options(pip_options(listing)) == [
        "--index-strategy", "unsafe-best-match", "--system-certs",
        "--index-url", "https://proxy.campus.example/simple",
        "--extra-index-url", "file:///opt/a/simple",
        "--extra-index-url", "file:///opt/b/simple",
        "--find-links", "/srv/wheels",
    ]  # fmt: skip
    offline = pip_options("global.no-index='true'\nglobal.find-links='/w'")
    assert uv_options(offline)[-3:] == ["--find-links", "/w", "--no-index"]


def test_uv_is_given_the_pip_options_of_this_environment():
    """The script as `make setup` runs it: an index set through PIP_INDEX_URL reaches uv."""
    env = {**os.environ, "PIP_INDEX_URL": "https://mirror.example/simple"}
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "uv_index_options.py")],
        capture_output=True, text=True, check=True, env=env,
    )  # fmt: skip
    assert "--index-url https://mirror.example/simple" in done.stdout


# npm's own semver (bundled with npm) reads each locked package's engines.node range.
ENGINES = """
const semver = require(require("path").join(process.argv[1], "npm/node_modules/semver"));
const lock = require(process.argv[2]);
console.log(JSON.stringify(Object.entries(lock.packages)
  .filter(([name, p]) => name && typeof p.engines?.node === "string"
          && !semver.satisfies(process.version, p.engines.node))
  .map(([name, p]) => `${name} needs Node.js ${p.engines.node}`)));
"""


def test_every_locked_npm_package_runs_on_this_machines_node():
    """`npm ci` warns at every build (EBADENGINE) for a package that asks for a newer Node.js
    than the machine's, as the hub proxy's command-line parser once did (package.json's
    override keeps it at a version for Node.js 20)."""
    npm_root = subprocess.run(
        ["npm", "root", "-g"], capture_output=True, text=True, check=True
    ).stdout.strip()
    done = subprocess.run(
        ["node", "-e", ENGINES, npm_root, str(ROOT / "package-lock.json")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert json.loads(done.stdout) == []
