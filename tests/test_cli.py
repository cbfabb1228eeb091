"""The command line, called in-process as `python -m autograder ...` would call it."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from autograder import __main__ as cli
from autograder import release

pytestmark = pytest.mark.slow  # each call runs nbgrader generate_assignment (about 6 s)


def test_check_release_passes_on_the_committed_release(capsys):
    assert cli.main(["check-release"]) == 0
    assert "chapters/ matches solutions/" in capsys.readouterr().out


def test_check_release_fails_with_the_fix_when_a_release_notebook_was_edited(
    tmp_path, monkeypatch, capsys
):
    edited = tmp_path / "chapters" / release.ASSIGNMENT
    shutil.copytree(release.RELEASE_DIR, edited)
    (edited / "02-multiple-output-channels.ipynb").write_text("{}")
    monkeypatch.setattr(release, "RELEASE_DIR", edited)
    assert cli.main(["check-release"]) == 1
    err = capsys.readouterr().err
    assert "differs: 02-multiple-output-channels.ipynb" in err
    assert "run `make release`" in err


def test_module_runs_as_a_command():
    done = subprocess.run(
        [sys.executable, "-m", "autograder", "--help"], capture_output=True, text=True
    )
    assert done.returncode == 0
    assert "check-release" in done.stdout
