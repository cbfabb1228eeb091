"""uv's index options from pip's configuration: `make setup` installs the lock with uv, which
reads no pip.conf, and it must look where pip looks (this machine's mirrors and wheel folder, a
campus proxy). Prints the options on one line, for the Makefile.

pip merges every index and takes the best match; uv, by default, takes the first index that has
a name. ``unsafe-best-match`` is pip's rule, and safe here: every file is checked against the
lock's hashes whatever index served it. uv uses the system's certificates, as pip does.
"""

from __future__ import annotations

import ast
import shlex
import subprocess
import sys

# Where pip reads an option from, strongest first: the environment (PIP_*), then the install
# command's section, then the global one.
SECTIONS = (":env:", "install", "global")


def pip_options(listing: str) -> dict[str, str]:
    """``pip config list`` (``section.key='value'`` lines) -> the value pip uses for each key."""
    found: dict[tuple[str, str], str] = {}
    for line in listing.splitlines():
        name, sep, value = line.partition("=")
        section, dot, key = name.rpartition(".")
        if sep and dot and section in SECTIONS:
            found[section, key] = ast.literal_eval(value)
    keys = {key for _, key in found}
    return {
        key: next(found[s, key] for s in SECTIONS if (s, key) in found) for key in keys
    }


def uv_options(pip: dict[str, str]) -> list[str]:
    """The uv options that make it install from what ``pip`` (section-less keys) names."""
    options = ["--index-strategy", "unsafe-best-match", "--system-certs"]
    if "index-url" in pip:
        options += ["--index-url", pip["index-url"]]
    for url in pip.get("extra-index-url", "").split():
        options += ["--extra-index-url", url]
    for place in pip.get("find-links", "").split():
        options += ["--find-links", place]
    if pip.get("no-index", "").lower() in ("1", "true", "yes", "on"):
        options.append("--no-index")
    return options


def main() -> None:
    listing = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    print(shlex.join(uv_options(pip_options(listing))))


if __name__ == "__main__":
    main()
