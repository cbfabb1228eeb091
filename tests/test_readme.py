"""The README's instructor commands, run exactly as written, in a scratch course.

Every bash block that the README marks "run as written by tests/test_readme.py" runs here,
verbatim, in a course made of this repository's configuration and sources and a few real
submissions: so an instructor who follows the README word for word gets what it promises.
"""

from __future__ import annotations

import csv
import os
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import build_course, instructor_env, readme_blocks, run_block, stop_group
from corpus import CORPUS, typed
from nbgrader.api import Gradebook
from ports import free_port

from autograder.paths import ASSIGNMENT, RELEASE_DIR, ROOT

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]

STUDENTS = ("honest_einsum_unfold", "honest_loops", "mistake_flipped_kernel")  # sorted
NOTEBOOKS = sorted(p.name for p in RELEASE_DIR.glob("*.ipynb"))


BLOCKS = readme_blocks("tests/test_readme.py")
GRADE, STOCK, FORMGRADER = (
    next(b for b in BLOCKS if "autograder grade" in b),
    next(b for b in BLOCKS if "nbgrader autograde" in b),
    next(b for b in BLOCKS if "jupyter lab" in b),
)


def test_the_readme_marks_every_instructor_block():
    assert len(BLOCKS) == 3
    assert "--force" in STOCK.splitlines()[1]


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    """The course root as the README assumes it: config, sources, the environment at .venv,
    submissions collected into submitted/; then the README's grading blocks, in order."""
    root = tmp_path_factory.mktemp("readme-course")
    build_course(root, {s: typed(CORPUS[s]) for s in STUDENTS})
    (root / ".venv").symlink_to(ROOT / ".venv")
    jupyter = root / "home" / "jupyter"
    jupyter.mkdir(parents=True)
    if (
        os.geteuid() == 0
    ):  # CI's container runs as root; Jupyter refuses root unless told
        (jupyter / "jupyter_server_config.py").write_text(
            "c.ServerApp.allow_root = True\n"
        )
    run_block(GRADE, root)
    run_block(STOCK, root)
    return root


def test_the_grade_command_writes_every_file_the_readme_lists(course):
    grades = course / "grades"
    for name in ("grades.csv", "report.html", "guide.html", "canvas.csv", "moodle.csv"):
        assert (grades / name).stat().st_size > 0, name
    assert sorted(p.stem for p in (grades / "feedback").glob("*.html")) == list(
        STUDENTS
    )
    with open(grades / "grades.csv", newline="") as f:
        assert {row["student"] for row in csv.DictReader(f)} == set(STUDENTS)


def test_stock_nbgrader_goes_from_generate_assignment_to_export(course):
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        assert {s.student.id for s in gb.assignment_submissions(ASSIGNMENT)} == set(
            STUDENTS
        )
    for student in STUDENTS:
        pages = sorted((course / "feedback" / student / ASSIGNMENT).glob("*.html"))
        assert [p.stem + ".ipynb" for p in pages] == NOTEBOOKS
    with open(course / "grades.csv", newline="") as f:
        totals = {r["student_id"]: float(r["score"]) for r in csv.DictReader(f)}
    full = sum(totals[s] for s in ("honest_loops", "honest_einsum_unfold")) / 2
    assert totals["mistake_flipped_kernel"] < full
    for name in ("canvas.csv", "moodle.csv", "guide.html"):
        assert (course / name).stat().st_size > 0, name


def test_formgrader_opens_on_the_course_and_lists_every_submission(course):
    port, token = free_port(), "readme-test"
    env = instructor_env(course) | {"JUPYTER_PORT": str(port), "JUPYTER_TOKEN": token}
    server = subprocess.Popen(
        ["bash", "-c", FORMGRADER],
        cwd=course,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        listed = _get_json(port, token, f"/formgrader/api/submissions/{ASSIGNMENT}")
        assert sorted(s["student"] for s in listed) == sorted(STUDENTS)
        assert all(s["autograded"] and s["needs_manual_grade"] for s in listed)
        page = _get(port, token, "/formgrader")
        assert "Manage Assignments" in page
        # The course's jupyter_server_config.py reached the server: nothing from elsewhere.
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/formgrader",
            headers={"Authorization": f"token {token}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            policy = response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in policy and "connect-src 'self'" in policy
    finally:
        stop_group(server)


def _get(port: int, token: str, path: str) -> str:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"token {token}"}
    )
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _get_json(port: int, token: str, path: str) -> list[dict]:
    import json

    return json.loads(_get(port, token, path))
