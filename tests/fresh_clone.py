"""A fresh clone of this checkout and `make build` in it: the suite's one build of the website.

A fresh clone is not this checkout: the release was once a function of the build machine's CPU
(the kit's stored answers), so a new user's first `make build` rewrote eight tracked notebooks.
tests/test_site.py builds the site here, asks git what the build changed, and reads the site it
built. The clone shares this checkout's environment (.venv, node_modules) instead of installing
its own, and imports its own `autograder`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from autograder.paths import ROOT


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout


def scratch_clone(target: Path) -> Path:
    """A new repository holding this checkout's tracked and unignored files, committed once."""
    files = git(ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    for name in filter(None, files.split("\0")):
        source = ROOT / name
        if source.is_file() and not source.is_symlink():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    git(target, "init", "--quiet")
    git(target, "add", "--all")
    git(target, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "clone")
    for shared in (".venv", "node_modules"):
        (target / shared).symlink_to(ROOT / shared)
    # .gitignore's `.venv/` matches a folder, not a link to one.
    (target / ".git" / "info" / "exclude").write_text(".venv\nnode_modules\n")
    return target


def clone_env(clone: Path) -> dict[str, str]:
    """The clone's own package, not this checkout's (the venv's editable install points here)."""
    return {**os.environ, "PYTHONPATH": str(clone)}


def make_build(clone: Path) -> subprocess.CompletedProcess[str]:
    """`make build` in ``clone``, with the release forced to regenerate."""
    # A checkout's files get the checkout's time: whether make would regenerate the release
    # depends on the order git wrote them in. Make the sources newer, so that it must.
    for source in (clone / "solutions" / "channels").glob("*.ipynb"):
        os.utime(source)
    return subprocess.run(
        # The shared environment is already installed: -o keeps make from reinstalling it.
        ["make", "--no-print-directory", "-o", ".venv/.installed", "-o",
         "node_modules/.installed", "build"],
        cwd=clone, env=clone_env(clone), capture_output=True, text=True, timeout=900,
    )  # fmt: skip
