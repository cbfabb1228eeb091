"""The command line, called in-process as `python -m autograder ...` would call it."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys

import pytest

from autograder import __main__ as cli
from autograder import paths
from autograder.course_build import release

pytestmark = pytest.mark.slow  # each call runs nbgrader generate_assignment (about 6 s)


def test_check_release_passes_on_the_committed_release(capsys):
    assert cli.main(["check-release"]) == 0
    assert "chapters/ matches solutions/" in capsys.readouterr().out


def test_check_release_fails_with_the_fix_when_a_release_notebook_was_edited(
    tmp_path, monkeypatch, capsys
):
    edited = tmp_path / "chapters" / paths.ASSIGNMENT
    shutil.copytree(paths.RELEASE_DIR, edited)
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


def loaded_packages(*modules: str) -> set[str]:
    """The top-level packages a fresh interpreter holds after importing ``modules``."""
    probe = (
        f"import sys, {', '.join(modules)}; "
        "print(sorted({m.split('.')[0] for m in sys.modules}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    return set(ast.literal_eval(done.stdout))


def test_the_execute_command_loads_no_nbgrader():
    """The GPU run's machine has torch and Jupyter but not nbgrader (benchmarks/gpu_kit.txt)."""
    loaded = loaded_packages("autograder.__main__", "autograder.course_build.execute")
    assert "nbgrader" not in loaded


def test_the_commands_that_compute_no_tensor_load_no_torch():
    """Exports, the calendar, formgrader's page filters, the feedback pages and the LMS
    commands each start a process; torch would add about 1.5 s of CPU to every one
    (autograder/__init__.py)."""
    loaded = loaded_packages(
        "autograder.__main__",
        "autograder.outputs.exports",
        "autograder.integration.safe_pages",
        "autograder.integration.feedback_pages",
        "course_hub.lti.__main__",
        "course_hub.lti.passback",
    )
    assert "autograder" in loaded and "torch" not in loaded


def test_the_package_s_names_load_on_first_use():
    import autograder
    from autograder.grading import checks, exercises, reference

    assert sorted(autograder.__all__) == sorted(autograder._HOME)
    assert autograder.check is checks.check
    assert autograder.EXERCISES is exercises.EXERCISES
    assert autograder.corr2d_multi_in_out is reference.corr2d_multi_in_out
    with pytest.raises(AttributeError):
        autograder.solutions  # noqa: B018


def test_make_help_lists_the_targets_from_their_comments():
    done = subprocess.run(
        ["make", "--no-print-directory", "help"],
        cwd=paths.ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0
    listed = dict(line.split(None, 2)[1:] for line in done.stdout.splitlines())
    assert {"build", "test", "test-fast", "lint", "grade"} <= set(listed)
    assert all(listed.values())


def test_make_refuses_a_python_the_pins_do_not_fit_in_one_line(tmp_path):
    fake = tmp_path / "python3"  # answers like a Python 3.10 would
    fake.write_text("#!/bin/sh\necho 3.10\n")
    fake.chmod(0o755)
    done = subprocess.run(
        ["make", "--no-print-directory", f"VENV={tmp_path / 'venv'}", f"PYTHON={fake}",
         f"{tmp_path / 'venv'}/.installed"],
        cwd=paths.ROOT,
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert done.returncode != 0
    assert done.stdout.strip() == (
        f"error: the pinned dependencies need Python 3.11, and {fake} is 3.10: run make "
        "PYTHON=python3.11 (after removing .venv if it was made with another)"
    )
    assert not (tmp_path / "venv").exists()
