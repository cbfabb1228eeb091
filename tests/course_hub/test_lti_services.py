"""The roster and passback commands against a real LTI 1.3 platform (lti1p3platform, over TLS).

The local LMS (``lti_platform.py``) runs in its own process with a certificate from a local CA;
the commands run as an instructor runs them (``python -m course_hub.lti ...`` in a course
folder), sign their service requests with the tool's key, and the LMS checks those against the
key set it was given. The course is an nbgrader gradebook with the release's real notebooks,
graded as the grade command records it, a late student under the course's late rule, and
written answers awaiting a grader. ``canvas.csv`` comes from ``python -m autograder export``.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import readme_blocks, recorded_result, run_block
from local_lms import (
    LEARNER,
    LocalLms,
    make_tls,
    platform_config,
    registration,
    start_lms,
    user_id,
)
from nbgrader.api import Gradebook

from autograder.course_build.release import assignment_gradebook
from autograder.integration.gradebook import write_gradebook
from autograder.paths import ASSIGNMENT, ROOT
from course_hub.lti.keys import new_key, public_key_set
from course_hub.lti.services import PlatformServices

pytestmark = pytest.mark.slow

LOST = {"test_corr2d_multi_in_hidden"}
# Students of the gradebook before any roster: alice and chen are the LMS's (not yet bound);
# eve was bound to an LMS user who is gone; zed was added by hand and is no one in the LMS.
GRADED = {"alice": set(), "chen": LOST, "eve": set(), "zed": LOST}
LATE = "chen"  # submitted a day and a bit late: 20 % off under 10 % per started day


def make_course(
    course: Path, graded: dict[str, set[str]], course_id: str = "channels-a"
) -> None:
    """An nbgrader course folder: config with a late rule, gradebook, the LMS's times."""
    course.mkdir()
    (course / "nbgrader_config.py").write_text(
        "c = get_config()  # noqa: F821\n"
        f"c.CourseDirectory.course_id = {course_id!r}\n"
        "c.CourseCalendar.percent_per_day = 10.0\n"
    )
    results = [recorded_result(s, lost) for s, lost in graded.items()]
    write_gradebook(course, results, assignment_gradebook())
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", course_id=course_id) as gb:
        gb.update_or_create_assignment(ASSIGNMENT, duedate="2026-12-01 17:00:00 UTC")
        if "eve" in graded:
            gb.update_or_create_student("eve", first_name="Eve", lms_user_id="u-e5e5")
    times = course / "intake" / ASSIGNMENT / "times.csv"
    times.parent.mkdir(parents=True)
    times.write_text(
        "student,submitted_at,lms_late\n"
        "alice,2026-12-01 16:00:00 UTC,false\n"
        f"{LATE},2026-12-02 18:30:00 UTC,true\n"
    )


class World:
    def __init__(self, folder: Path, lms: LocalLms) -> None:
        self.folder, self.lms = folder, lms
        self.course = folder / "course"
        self.registration = folder / "lti.json"

    def run(self, *args: str) -> subprocess.CompletedProcess:
        """``python -m course_hub.lti ...`` as the instructor types it, in the course."""
        env = {**os.environ, "SSL_CERT_FILE": str(self.lms.tls.ca_file)}
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "course_hub.lti",
                *args,
                f"--registration={self.registration}",
            ],
            cwd=self.course,
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )

    def export(self) -> dict[str, str]:
        """``python -m autograder export``'s canvas.csv: total by SIS Login ID."""
        out = self.folder / "exports"
        subprocess.run(
            [sys.executable, "-m", "autograder", "export", "--gradebook",
             str(self.course / "gradebook.db"), "--out", str(out), "--course", str(self.course)],
            check=True, capture_output=True, cwd=ROOT,
        )  # fmt: skip
        with (out / "canvas.csv").open(newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
        total = rows[0].index(ASSIGNMENT)
        return {row[3]: row[total] for row in rows[2:]}

    def students(self) -> dict[str, tuple]:
        with Gradebook(f"sqlite:///{self.course / 'gradebook.db'}", "channels-a") as gb:
            return {
                s.id: (s.first_name, s.last_name, s.email, s.lms_user_id)
                for s in gb.students
            }

    def lms_scores(self) -> tuple[list[dict], dict[str, dict]]:
        book = self.lms.gradebook()
        items = [i for i in book["lineitems"] if "/contexts/ctx-a/" in i["id"]]
        return items, {u: s for i in items for u, s in book["scores"][i["id"]].items()}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lti-services")
    tls = make_tls(folder)
    keys = folder / "lti-keys"
    new_key(keys)
    tool = {  # no hub in this file: the LMS was given the tool's key set, as pasted
        "jwks": public_key_set(keys),
        "login_url": "https://localhost:9/hub/lti13/oauth_login",
        "redirect_uris": ["https://localhost:9/hub/lti13/oauth_callback"],
        "target_link_uri": "https://localhost:9/hub/",
    }
    lms = start_lms(folder, tls, platform_config(tool))
    try:
        w = World(folder, lms)
        w.registration.write_text(
            json.dumps(
                registration(
                    lms.url, keys, {"channels-a": "ctx-a", "channels-b": "ctx-b"}
                )
            )
        )
        make_course(w.course, GRADED)
        yield w
    finally:
        lms.stop()


def set_member(lms: LocalLms, uid: str, **member) -> None:
    config = lms.config()
    members = config["contexts"]["ctx-a"]["members"]
    if member:
        members[uid] = member
    else:
        members.pop(uid, None)
    lms.write_config(config)


def add_user(lms: LocalLms, uid: str, given: str, family: str, email: str) -> None:
    config = lms.config()
    config["users"][uid] = {"given_name": given, "family_name": family, "email": email}
    lms.write_config(config)


# --- The README's commands, as written ---------------------------------------------------


def test_the_readmes_roster_export_and_passback_run_as_written_in_a_course(
    world, tmp_path, monkeypatch
):
    """Section B's course (channels-b, LMS course ctx-b): every student is the LMS's, so the
    block ends with status 0 and the LMS has each total of the course's canvas.csv."""
    (block,) = readme_blocks("tests/course_hub/test_lti_services.py")
    course = tmp_path / "channels-b"
    make_course(course, {"bilal": set(), "chen": LOST}, course_id="channels-b")
    (course / ".venv").symlink_to(ROOT / ".venv")
    shutil.copy(world.registration, course / "lti.json")
    monkeypatch.setenv("SSL_CERT_FILE", str(world.lms.tls.ca_file))
    out = run_block(block, course)
    assert (
        "added 0" in out
        and "updated 2: bilal, chen" in out
        and "2 sent, 0 not sent" in out
    )
    with (course / "canvas.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    totals = {row[3]: float(row[rows[0].index(ASSIGNMENT)]) for row in rows[2:]}
    book = world.lms.gradebook()
    (item,) = [i for i in book["lineitems"] if "/contexts/ctx-b/" in i["id"]]
    sent = {u: s["scoreGiven"] for u, s in book["scores"][item["id"]].items()}
    assert sent == {user_id("bilal"): totals["bilal"], user_id("chen"): totals["chen"]}


# --- Roster (Names and Role Provisioning) ---------------------------------------------------


def test_the_roster_fills_the_gradebook_with_each_lms_learner_and_their_lms_user_id(
    world,
):
    add_user(world.lms, "u-da7a", "Dana", "Scully", "dana@example.edu")
    set_member(world.lms, "u-da7a", roles=[LEARNER])
    done = world.run("roster")
    assert done.returncode == 0, done.stdout + done.stderr
    students = world.students()
    assert students["alice"] == (
        "Alice",
        "Liddell",
        "alice@example.edu",
        user_id("alice"),
    )
    assert students["chen"][3] == user_id("chen")
    assert students["dana"] == ("Dana", "Scully", "dana@example.edu", "u-da7a")
    # The LMS's instructor and TA are staff, not nbgrader students.
    assert "ada" not in students and "tomas" not in students
    assert "added 1: dana" in done.stdout and "updated 2: alice, chen" in done.stdout
    # Never deleted: eve's LMS user is gone from the course, zed was never in it.
    assert (
        "left the LMS course (kept in the gradebook with their work): eve"
        in done.stdout
    )
    assert "in the gradebook, not in the LMS course: zed" in done.stdout
    assert {"eve", "zed"} <= set(students)


def test_a_second_roster_run_changes_nothing(world):
    before = world.students()
    done = world.run("roster")
    assert done.returncode == 0, done.stdout
    assert "added 0" in done.stdout and "updated 0" in done.stdout
    assert world.students() == before


def test_a_student_who_leaves_the_lms_course_is_reported_and_kept_with_their_id(world):
    set_member(world.lms, "u-da7a", roles=[LEARNER], status="Inactive")
    try:
        done = world.run("roster")
        assert (
            "left the LMS course (kept in the gradebook with their work): dana"
            in done.stdout
        )
        assert world.students()["dana"][3] == "u-da7a"
    finally:
        set_member(world.lms, "u-da7a", roles=[LEARNER])


def test_an_lms_user_who_would_take_anothers_id_or_has_no_institution_email_is_refused(
    world,
):
    """Many LMSs let a user set their own email: one set to alice's address must not become
    alice, one outside the institution gets no id; everyone else still syncs."""
    add_user(world.lms, "u-bad1", "Mallory", "M", "alice@example.edu")
    add_user(world.lms, "u-bad2", "Trudy", "T", "trudy@elsewhere.org")
    set_member(world.lms, "u-bad1", roles=[LEARNER])
    set_member(world.lms, "u-bad2", roles=[LEARNER])
    try:
        before = world.students()
        done = world.run("roster")
        assert done.returncode == 1
        assert (
            "refused LMS user Mallory M (u-bad1): the account 'alice' belongs to another"
            in (done.stdout)
        )
        assert (
            "refused LMS user Trudy T (u-bad2): the LMS gave no email address in"
            in (done.stdout)
        )
        assert world.students() == before
    finally:
        set_member(world.lms, "u-bad1")
        set_member(world.lms, "u-bad2")


def test_the_roster_refuses_a_memberships_url_of_another_lms_course(world):
    """One hub course, one LMS course: a URL pasted from the wrong course syncs nothing."""
    reg = json.loads(world.registration.read_text())
    good = reg["courses"]["channels-a"]["memberships_url"]
    reg["courses"]["channels-a"]["memberships_url"] = good.replace("ctx-a", "ctx-b")
    world.registration.write_text(json.dumps(reg))
    try:
        before = world.students()
        done = world.run("roster")
        assert done.returncode == 2
        assert "lists the members of another LMS course" in done.stdout
        assert world.students() == before
    finally:
        reg["courses"]["channels-a"]["memberships_url"] = good
        world.registration.write_text(json.dumps(reg))


# --- Scores (Assignment and Grade Services) -------------------------------------------------


def test_the_passback_puts_canvas_csvs_totals_into_the_lms_gradebook(world):
    csv_totals = world.export()
    done = world.run("passback", f"--assignment={ASSIGNMENT}")
    assert done.returncode == 1, done.stdout + done.stderr  # eve and zed: below
    items, scores = world.lms_scores()
    assert len(items) == 1 and "(created)" in done.stdout
    assert items[0]["resourceId"] == ASSIGNMENT and items[0]["tag"] == "nbgrader"
    bound = {s: v[3] for s, v in world.students().items() if v[3]}
    sent = {s: uid for s, uid in bound.items() if uid in scores}
    assert set(sent) == {"alice", "chen", "dana"}
    for student, uid in sent.items():
        assert scores[uid]["scoreGiven"] == float(csv_totals[student]), student
    # Written answers await a grader for those who submitted; dana submitted nothing: 0, as in
    # the CSV, with nothing pending.
    progress = {
        s: (scores[u]["activityProgress"], scores[u]["gradingProgress"])
        for s, u in sent.items()
    }
    assert progress == {
        "alice": ("Completed", "PendingManual"),
        "chen": ("Completed", "PendingManual"),
        "dana": ("Initialized", "FullyGraded"),
    }
    assert csv_totals["dana"] == "0"
    # The late penalty is in both: chen lost the hidden test and 20 % of the rest.
    assert float(csv_totals["chen"]) < float(csv_totals["alice"]) * 0.8


def test_a_student_the_lms_refuses_or_cannot_name_is_reported_and_the_others_still_go(
    world,
):
    done = world.run("passback", f"--assignment={ASSIGNMENT}")
    lines = done.stdout.splitlines()
    assert any(
        ln.startswith("not sent eve: POST ") and ": 403" in ln for ln in lines
    ), lines
    assert "not sent zed: no LMS user id: run the roster command" in lines
    assert "3 sent, 2 not sent" in lines and done.returncode == 1


def test_a_second_passback_finds_the_line_item_and_never_duplicates_it(world):
    done = world.run("passback", f"--assignment={ASSIGNMENT}")
    items, _ = world.lms_scores()
    assert len(items) == 1 and "(found)" in done.stdout


def test_once_the_written_answers_are_graded_the_lms_gets_fully_graded_and_the_new_total(
    world,
):
    with Gradebook(f"sqlite:///{world.course / 'gradebook.db'}", "channels-a") as gb:
        submission = gb.find_submission(ASSIGNMENT, "alice")
        for notebook in submission.notebooks:
            for grade in notebook.grades:
                if grade.needs_manual_grade:  # as formgrader saves a grade
                    grade.manual_score = grade.max_score / 2
                    grade.needs_manual_grade = False
        gb.db.commit()
    csv_totals = world.export()
    done = world.run("passback", f"--assignment={ASSIGNMENT}")
    assert "(found)" in done.stdout
    _, scores = world.lms_scores()
    alice = scores[user_id("alice")]
    assert alice["gradingProgress"] == "FullyGraded"
    assert alice["scoreGiven"] == float(csv_totals["alice"])
    assert scores[user_id("chen")]["gradingProgress"] == "PendingManual"


def test_two_line_items_for_the_assignment_stop_the_passback_instead_of_a_guess(world):
    from course_hub.lti.passback import LINEITEM, LINEITEM_SCOPE
    from course_hub.lti.registration import read_registration

    services = PlatformServices(read_registration(world.registration))
    os.environ["SSL_CERT_FILE"] = str(world.lms.tls.ca_file)
    try:
        lineitems = f"{world.lms.url}/contexts/ctx-a/lineitems"
        services.call(
            "POST", lineitems, (LINEITEM_SCOPE,), LINEITEM,
            {"label": "by hand", "scoreMaximum": 10, "resourceId": ASSIGNMENT, "tag": "nbgrader"},
            content_type=LINEITEM,
        )  # fmt: skip
    finally:
        del os.environ["SSL_CERT_FILE"]
    _, before = world.lms_scores()
    done = world.run("passback", f"--assignment={ASSIGNMENT}")
    assert done.returncode == 2
    assert "2 line items of the LMS course are 'channels'" in done.stdout
    items, after = world.lms_scores()
    assert len(items) == 2 and after == before


def test_the_lms_refuses_a_service_request_signed_with_a_retired_key(world):
    """Key rotation as the README tells it; a key the LMS was never given is refused."""
    keys = json.loads(world.registration.read_text())["key_dir"]
    old = world.run("keys", "--public")
    (old_kid,) = [k["kid"] for k in json.loads(old.stdout)["keys"]]
    new_kid = world.run("keys", "--new").stdout.strip()
    assert {
        k["kid"] for k in json.loads(world.run("keys", "--public").stdout)["keys"]
    } == {
        old_kid,
        new_kid,
    }
    refused = world.run("keys", f"--retire={old_kid}")
    assert refused.returncode == 2 and "is the signing key" in refused.stderr
    # The LMS has only the old key: signing with the new one is refused at the token URL.
    assert world.run("keys", f"--use={new_kid}").returncode == 0
    done = world.run("roster")
    assert done.returncode == 2 and "/token: 400" in done.stdout
    # Given the new set (as pasted, or fetched from the hub's key set URL), it is accepted.
    config = world.lms.config()
    config["tool"]["jwks"] = public_key_set(Path(keys))
    world.lms.write_config(config)
    assert world.run("roster").returncode == 0
    assert world.run("keys", f"--retire={old_kid}").returncode == 0
    assert [k["kid"] for k in public_key_set(Path(keys))["keys"]] == [new_kid]
