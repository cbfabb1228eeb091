"""A fresh clone is not this checkout: `make build` there must leave every tracked file as it was.

The release was once a function of the build machine's CPU (the kit's stored answers), so a new
user's first `make build` rewrote eight tracked notebooks and `check-release` failed before it.
This test makes a clone of the tracked tree as it is now, forces the release to be regenerated
there, builds the site, and asks git what changed. The clone shares this checkout's environment
(.venv, node_modules) instead of installing its own, and imports its own `autograder`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


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


@pytest.mark.slow
def test_make_build_on_a_fresh_clone_leaves_every_tracked_file_as_committed(tmp_path):
    clone = scratch_clone(tmp_path / "clone")
    # A checkout's files get the checkout's time: whether make would regenerate the release
    # depends on the order git wrote them in. Make the sources newer, so that it must.
    for source in (clone / "solutions" / "channels").glob("*.ipynb"):
        os.utime(source)
    # The clone's own package, not this checkout's (the venv's editable install points here).
    env = {**os.environ, "PYTHONPATH": str(clone)}
    done = subprocess.run(
        # The shared environment is already installed: -o keeps make from reinstalling it.
        ["make", "--no-print-directory", "-o", ".venv/.installed", "-o",
         "node_modules/.installed", "build"],
        cwd=clone, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "wrote 6 notebooks" in done.stdout  # the release really ran
    # Nothing a user must wonder about (each kernel once warned of TCP without encryption).
    assert "without encryption" not in done.stdout + done.stderr
    assert git(clone, "status", "--porcelain") == ""
    check = subprocess.run(
        [str(ROOT / ".venv/bin/python"), "-m", "autograder", "check-release"],
        cwd=clone, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
