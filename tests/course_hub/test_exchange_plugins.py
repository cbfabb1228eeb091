"""The hub's exchange plugins run by stock nbgrader commands on a scratch exchange (no hub).

A student's fetch interrupted by a kill, a submission with a notebook deleted, renamed or
duplicated, a resubmission after the due date, and the instructor's collect ordering and
dating submissions by their receipts. ``tests/test_course_hub.py`` does the same through the
students' servers on the hub.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from autograder.deadlines.schedule import load_calendar
from autograder.deadlines.times import read_times, record_path
from autograder.paths import ASSIGNMENT, RELEASE_DIR, ROOT
from course_hub.receipts import (
    CALENDAR,
    publish_calendar,
    read_receipts,
    take_receipts,
)
from course_hub.student_exchange import FETCHING, notebook_problems

COURSE = "c1"
NBGRADER = str(Path(sys.prefix) / "bin" / "nbgrader")
FIRST = "01-multiple-input-channels.ipynb"
EXERCISES = "05-exercises.ipynb"
STUDENT_FLAGS = [
    f"--course={COURSE}",
    "--Exchange.path_includes_course=True",
    "--Authenticator.plugin_class=nbgrader.auth.NoAuthPlugin",
    "--ExchangeFactory.fetch_assignment=course_hub.student_exchange.AtomicFetch",
    "--ExchangeFactory.submit=course_hub.student_exchange.CheckedSubmit",
]


@pytest.fixture
def exchange(tmp_path) -> Path:
    """An exchange with the course's release in its outbound folder and an open inbox."""
    root = tmp_path / "exchange"
    shutil.copytree(RELEASE_DIR, root / COURSE / "outbound" / ASSIGNMENT)
    (root / COURSE / "inbound").mkdir()
    root.chmod(0o777)
    return root


def env_for(home: Path) -> dict[str, str]:
    return {
        "PATH": f"{Path(sys.prefix) / 'bin'}:{os.environ['PATH']}",
        "HOME": str(home),
        "PYTHONPATH": str(ROOT),
        "LANG": "C.UTF-8",
    }


def student(exchange: Path, home: Path, *argv: str, wait: bool = True):
    """``nbgrader <argv>`` as a student's server runs it, in ``home``."""
    home.mkdir(exist_ok=True)
    argv = [NBGRADER, *argv, *STUDENT_FLAGS, f"--Exchange.root={exchange}"]
    if not wait:
        return subprocess.Popen(
            argv, cwd=home, env=env_for(home), start_new_session=True
        )
    return subprocess.run(
        argv, cwd=home, env=env_for(home), capture_output=True, text=True
    )


@pytest.mark.slow
def test_a_fetch_killed_midway_leaves_the_assignment_unfetched_and_the_next_fetch_whole(
    exchange, tmp_path
):
    home = tmp_path / "home"
    outbound = exchange / COURSE / "outbound" / ASSIGNMENT
    # A file whose copy never ends (a pseudo-terminal's master, which nothing writes to):
    # the fetch is certainly midway when it is killed.
    os.symlink("/dev/ptmx", outbound / "zz-slow-disk.bin")
    fetch = student(exchange, home, "fetch_assignment", ASSIGNMENT, wait=False)
    course = home / COURSE
    deadline = time.monotonic() + 60
    while not (course.is_dir() and any(course.iterdir())):
        assert fetch.poll() is None and time.monotonic() < deadline, (
            "fetch never started"
        )
        time.sleep(0.05)
    time.sleep(0.5)  # the copy is blocked on the slow file by now
    os.killpg(fetch.pid, signal.SIGKILL)
    fetch.wait()
    assert not (course / ASSIGNMENT).exists()  # never a half-fetched assignment
    (leftover,) = course.iterdir()
    assert leftover.name.startswith(FETCHING.format(ASSIGNMENT))  # hidden in JupyterLab

    (outbound / "zz-slow-disk.bin").unlink()
    done = student(exchange, home, "fetch_assignment", ASSIGNMENT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert [p.name for p in course.iterdir()] == [ASSIGNMENT]  # the leftover is gone
    fetched = sorted(p.name for p in (course / ASSIGNMENT).glob("*.ipynb"))
    assert fetched == sorted(p.name for p in RELEASE_DIR.glob("*.ipynb"))


def test_renamed_duplicated_and_deleted_notebooks_are_named_for_what_they_are(tmp_path):
    folder = tmp_path / "mine"
    shutil.copytree(RELEASE_DIR, folder)
    (folder / FIRST).rename(folder / "01-final.ipynb")
    shutil.copy(folder / "02-multiple-output-channels.ipynb", folder / "02-Copy1.ipynb")
    (folder / EXERCISES).unlink()
    (folder / "scratch.ipynb").write_text('{"cells": [], "metadata": {}}')
    (folder / "broken.ipynb").write_text("{not json")
    problems, missing = notebook_problems(str(RELEASE_DIR), str(folder), [])
    assert missing == [EXERCISES]
    assert sorted(problems) == [
        f"{FIRST} is missing, and 01-final.ipynb has its cells: rename 01-final.ipynb "
        f"back to {FIRST} (the course grades that name only).",
        "02-Copy1.ipynb is a copy of 02-multiple-output-channels.ipynb, and only "
        "02-multiple-output-channels.ipynb is graded. If your answers are in "
        "02-Copy1.ipynb, copy them into 02-multiple-output-channels.ipynb; then delete "
        "02-Copy1.ipynb (or move it out of this folder).",
    ]  # the scratch notebook and the unreadable one carry no cell of the release


def inbox(exchange: Path) -> list[str]:
    return sorted(os.listdir(exchange / COURSE / "inbound"))


@pytest.mark.slow
def test_a_submission_missing_a_notebook_is_refused_and_the_notebook_put_back(
    exchange, tmp_path
):
    home = tmp_path / "home"
    assert student(exchange, home, "fetch_assignment", ASSIGNMENT).returncode == 0
    folder = home / COURSE / ASSIGNMENT
    (folder / EXERCISES).unlink()
    (folder / FIRST).rename(folder / "01-final.ipynb")
    refused = student(exchange, home, "submit", ASSIGNMENT)
    assert refused.returncode != 0 and inbox(exchange) == []
    message = refused.stdout + refused.stderr
    assert f"Nothing was submitted. In {COURSE}/{ASSIGNMENT}:" in message
    assert f"rename 01-final.ipynb back to {FIRST}" in message
    assert f"{EXERCISES} was missing from your folder: a fresh copy" in message
    assert (folder / EXERCISES).read_bytes() == (RELEASE_DIR / EXERCISES).read_bytes()

    (folder / "01-final.ipynb").rename(folder / FIRST)
    done = student(exchange, home, "submit", ASSIGNMENT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(inbox(exchange)) == 1


@pytest.mark.slow
def test_a_resubmission_after_the_due_date_asks_once_before_replacing_one_in_time(
    exchange, tmp_path
):
    home = tmp_path / "home"
    calendar = exchange / COURSE / CALENDAR
    later = datetime.now(UTC) + timedelta(days=1)
    calendar.write_text(json.dumps({ASSIGNMENT: f"{later:%Y-%m-%d %H:%M:%S} UTC"}))
    assert student(exchange, home, "fetch_assignment", ASSIGNMENT).returncode == 0
    assert student(exchange, home, "submit", ASSIGNMENT).returncode == 0  # in time
    past = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    time.sleep(max(0.0, (past - datetime.now(UTC)).total_seconds()) + 0.1)
    calendar.write_text(json.dumps({ASSIGNMENT: f"{past:%Y-%m-%d %H:%M:%S} UTC"}))
    asked = student(exchange, home, "submit", ASSIGNMENT)
    assert asked.returncode != 0 and len(inbox(exchange)) == 1
    message = asked.stdout + asked.stderr
    assert f"the due date ({past:%Y-%m-%d %H:%M} UTC) has passed" in message
    assert "To submit anyway, press Submit again within 10 minutes." in message
    confirmed = student(exchange, home, "submit", ASSIGNMENT)
    assert confirmed.returncode == 0, confirmed.stderr[-2000:]
    assert len(inbox(exchange)) == 2
    # Confirmed once, for one submission: the next one asks again.
    assert student(exchange, home, "submit", ASSIGNMENT).returncode != 0


def make_submission(
    inbound: Path, name: str, owner: str, complete: bool = True
) -> Path:
    """An inbox folder as ``nbgrader submit`` leaves it, owned by ``owner``."""
    folder = inbound / name
    folder.mkdir()
    shutil.copy(RELEASE_DIR / FIRST, folder / FIRST)
    (folder / "submission_secret.txt").write_text(name)
    if complete:
        (folder / "timestamp.txt").write_text(name.split("+")[2])
    for path in (folder, *folder.iterdir()):
        shutil.chown(path, owner)
    return folder


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="submissions owned by other accounts")
def test_collect_takes_the_latest_submission_received_and_dates_it_by_its_receipt(
    exchange, tmp_path
):
    """What the student claims decides nothing: ``nobody`` submits twice, the later one
    claiming 2020; a third folder claiming 2031 is still being copied in; ``daemon``'s name
    is on a folder that ``nobody`` made."""
    course = tmp_path / "course"
    course.mkdir()
    (course / "nbgrader_config.py").write_text(
        f"c.CourseDirectory.root = {str(course)!r}\n"
        f"c.CourseDirectory.course_id = {COURSE!r}\n"
        f"c.Exchange.root = {str(exchange)!r}\n"
        "c.Exchange.path_includes_course = True\n"
        'c.ExchangeFactory.collect = "course_hub.collect.ReceiptCollect"\n'
        'c.CourseCalendar.time_source = "hub"\n'
    )
    inbound = exchange / COURSE / "inbound"
    make_submission(
        inbound, "nobody+channels+2030-01-01 00:00:00.000000 UTC+a", "nobody"
    )
    assert take_receipts(inbound, course) == 1
    time.sleep(0.01)
    later = "nobody+channels+2020-01-01 00:00:00.000000 UTC+b"
    make_submission(inbound, later, "nobody")
    make_submission(
        inbound, "nobody+channels+2031-01-01 00:00:00.000000 UTC+c", "nobody", False
    )
    make_submission(
        inbound, "daemon+channels+2026-01-01 00:00:00.000000 UTC+d", "nobody"
    )
    done = subprocess.run(
        [NBGRADER, "collect", ASSIGNMENT, "--update"],
        cwd=course,
        env=env_for(tmp_path),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "owned by nobody, not by daemon" in done.stderr
    assert "no receipt yet" in done.stderr
    assert os.listdir(course / "submitted") == ["nobody"]
    collected = course / "submitted" / "nobody" / ASSIGNMENT
    assert (collected / "submission_secret.txt").read_text() == later
    (receipt,) = [r for r in read_receipts(course) if r["folder"] == later]
    received = datetime.fromisoformat(receipt["received_at"]).replace(tzinfo=None)
    assert (
        (collected / "timestamp.txt")
        .read_text()
        .startswith(f"{received:%Y-%m-%d %H:%M:%S}")
    )
    (recorded,) = read_times(record_path(course, ASSIGNMENT, "hub"), "hub").values()
    assert recorded.at == received.replace(microsecond=0)
    lateness = load_calendar(course, ASSIGNMENT).lateness("nobody")
    assert (lateness.submitted.source, lateness.submitted.at) == ("hub", recorded.at)


def test_the_courses_due_dates_are_published_for_its_students_and_nothing_else(
    tmp_path,
):
    from nbgrader.api import Gradebook

    course, published = tmp_path / "course", tmp_path / "exchange-course"
    course.mkdir()
    published.mkdir()
    assert publish_calendar(course, published) is False  # no gradebook yet
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        gb.update_or_create_assignment(ASSIGNMENT, duedate="2026-12-04 17:00:00 UTC")
        gb.update_or_create_assignment("undated")
        gb.add_student("alice")
    assert publish_calendar(course, published) is True
    calendar = published / CALENDAR
    assert json.loads(calendar.read_text()) == {ASSIGNMENT: "2026-12-04 17:00:00 UTC"}
    assert calendar.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in published.iterdir()] == [CALENDAR]
