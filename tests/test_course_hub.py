"""The course run end to end on one machine: `make hub`, two courses, real accounts, a browser.

The README's "Run the course on one machine" block starts the hub exactly as written (with its
root and port moved out of the way); then Chromium walks the course as its people do: both
instructors release in their formgrader, three students log in with their Unix passwords, see
exactly their courses, fetch, write an answer, run its visible test, validate and submit (one
of them twice); the instructor collects and autogrades, the TA grades a written answer, the
instructor releases feedback and every student reads it. Beside the loop, what each person can
reach is tried as that person: in the student's own view of the machine, with the student's
Unix account, and through the hub with their login.

The tests share one hub and run in file order, each a step of the course.
"""

from __future__ import annotations

import csv
import fcntl
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest
from corpus import CORPUS, typed

from autograder.paths import ASSIGNMENT, ROOT
from course_hub.provision import DEMO_MARK, course_dir, layout
from course_hub.receipts import read_receipts, received_at
from course_hub.roster import DEMO_ROSTER, demo_password, read_roster
from course_hub.views import student_view

pytestmark = [
    pytest.mark.slow,
    pytest.mark.sandbox,
    pytest.mark.skipif(
        os.geteuid() != 0, reason="the hub makes Unix accounts: root only, as on CI"
    ),
]

MARK = "<!-- run as written by tests/test_course_hub.py -->"
ROSTER = read_roster(DEMO_ROSTER)
A, B = ROSTER.courses
NOTEBOOK = "01-multiple-input-channels"
# What each student types into corr2d_multi_in; chen submits twice, and the second counts.
ANSWERS = {
    "alice": ["honest_book_d2l"],
    "bilal": ["honest_einsum_unfold"],
    "chen": ["mistake_not_summed", "honest_loops"],
}
LOCK = Path(
    "/run/lock/course-hub-test.lock"
)  # one hub test per machine: the accounts are shared
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"


def readme_block() -> str:
    text = (ROOT / "README.md").read_text()
    found = re.findall(re.escape(MARK) + r"\n```bash\n(.*?)```", text, re.S)
    assert len(found) == 1, "the README has one block for this test"
    return found[0]


def free_base_port() -> int:
    """A port P with P, P+1, P+2 (proxy, hub, proxy API) and P+10... (services) free."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        wanted = [base, base + 1, base + 2, *(base + 10 + i for i in range(4))]
        if max(wanted) < 65000 and all(_free(p) for p in wanted):
            return base
    raise RuntimeError("no free ports")


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def wait_for(condition, timeout: float, what: str, interval: float = 0.25):
    """Poll ``condition`` until it returns something true; its value, or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0


@dataclass
class Hub:
    url: str
    root: Path
    log: Path
    pages: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)


@pytest.fixture(scope="module")
def hub():
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        Path("/srv").mkdir(exist_ok=True)
        root = Path(tempfile.mkdtemp(prefix="course-hub-test-", dir="/srv"))
        for user in ROSTER.people:  # the demo accounts start with empty homes
            try:
                home = Path(pwd.getpwnam(user).pw_dir)
            except KeyError:
                continue
            if not (home / DEMO_MARK).exists():
                pytest.fail(f"{user} is this machine's own account, not the hub's demo")
            for child in home.iterdir():
                if child.name != DEMO_MARK:
                    shutil.rmtree(child) if child.is_dir() else child.unlink()
        port = free_base_port()
        out_dir = (
            ROOT / "_build" / "course-hub"
        )  # the hub's log and the figures it measured
        out_dir.mkdir(parents=True, exist_ok=True)
        log = out_dir / "hub.log"
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("VIRTUAL_ENV", "PYTHONPATH")
        } | {"HUB_ROOT": str(root), "HUB_PORT": str(port)}
        started = time.monotonic()
        with open(log, "w") as out:
            proc = subprocess.Popen(
                ["bash", "-e", "-c", readme_block()],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        url = f"http://127.0.0.1:{port}"
        try:

            def up():
                assert proc.poll() is None, log.read_text()[-4000:]
                return (
                    all(
                        http_status(f"{url}{path}") == 200
                        for path in (
                            "/hub/login",
                            *(f"/services/{c.id}/formgrader" for c in ROSTER.courses),
                        )
                    )
                    or None
                )

            # A service without a login answers 200 with the hub's login page after the
            # redirects; a route not there yet answers the hub's 404.
            wait_for(up, 240, "make hub to start both courses", interval=1)
            h = Hub(url, root, log)
            h.timings["make hub to ready, s"] = round(time.monotonic() - started, 1)
            yield h
            h.timings["whole module, s"] = round(time.monotonic() - started, 1)
            print(json.dumps(h.timings))
            (out_dir / "figures.json").write_text(json.dumps(h.timings, indent=1))
        finally:
            stop(proc)
            kill_leftovers(root)
            shutil.rmtree(root, ignore_errors=True)
            print(f"hub log: {log}")


def stop(proc: subprocess.Popen) -> None:
    """Stop make and the hub it runs (the hub stops every server and service it started)."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def kill_leftovers(root: Path) -> None:
    """SIGKILL whatever this hub started and left running: every process whose command line
    names its root (the servers' and services' views do), and nothing else."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if str(root).encode() in cmdline:
            try:
                os.kill(int(entry.name), signal.SIGKILL)
            except ProcessLookupError:
                pass


def login(browser, hub: Hub, user: str, next_url: str = ""):
    """A page logged in as ``user`` with their Unix password (the demo's), at ``next_url``."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(90_000)
    page.goto(f"{hub.url}/hub/login?next={next_url}")
    page.fill("#username_input", user)
    page.fill("#password_input", demo_password(user))
    page.click("#login_submit")
    return page


def open_assignments(page) -> None:
    page.get_by_text("Nbgrader", exact=True).click()
    page.get_by_text("Assignment List", exact=True).click()
    page.wait_for_selector("#released_assignments_list_loading", state="hidden")


def student_lab(browser, hub: Hub, user: str):
    """The student's JupyterLab (spawned on first use), kept for the later steps."""
    if user not in hub.pages:
        started = time.monotonic()
        page = login(browser, hub, user)
        page.wait_for_url(f"**/user/{user}/lab**")
        page.get_by_text("Nbgrader", exact=True).wait_for()
        hub.timings.setdefault("login to JupyterLab, s", []).append(
            round(time.monotonic() - started, 1)
        )
        hub.pages[user] = page
        rss = subprocess.run(
            ["ps", "-u", user, "-o", "rss="], capture_output=True, text=True
        ).stdout.split()
        hub.timings.setdefault("idle student server, MB", []).append(
            round(sum(map(int, rss)) / 1024)
        )
    return hub.pages[user]


def formgrader(browser, hub: Hub, user: str, course: str, path: str = ""):
    page = login(browser, hub, user, f"/services/{course}/formgrader/{path}")
    page.wait_for_url(f"**/services/{course}/formgrader/**")
    return page


def as_user(user: str, argv: list[str]) -> subprocess.CompletedProcess:
    """``argv`` run as ``user`` (their Unix account, their groups), outside any view."""
    drop = ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--"]
    return subprocess.run([*drop, *argv], capture_output=True, text=True)


def in_student_view(
    hub: Hub, user: str, argv: list[str]
) -> subprocess.CompletedProcess:
    """``argv`` run exactly where the student's server runs: their view, their account."""
    paths = layout(hub.root)
    view = student_view(user, paths["exchange"], paths["student_config"])
    return subprocess.run([*view, *argv], capture_output=True, text=True)


def as_grader(hub: Hub, course, argv: list[str]) -> subprocess.CompletedProcess:
    from course_hub.views import grader_view

    env = {
        "PATH": f"{Path(sys.prefix) / 'bin'}:/usr/bin:/bin",
        "HOME": str(layout(hub.root)["graders"] / course.grader),
        "LANG": "C.UTF-8",
    }
    return subprocess.run(
        [*grader_view(course.grader, course_dir(hub.root, course)), *argv],
        capture_output=True,
        text=True,
        env=env,
    )


def serious_axe_violations(page, scope: str = "html") -> list[str]:
    """axe-core's serious and critical violations (WCAG 2.2 A and AA rules) inside ``scope``."""
    page.evaluate(AXE.read_text(encoding="utf-8") + "\n;undefined")
    tags = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]
    result = page.evaluate(
        "([scope, tags]) => axe.run(document.querySelector(scope),"
        " {runOnly: {type: 'tag', values: tags}})",
        [scope, tags],
    )
    return [
        f"{rule['id']}: {' '.join(map(str, node['target']))}"
        for rule in result["violations"]
        if rule["impact"] in ("serious", "critical")
        for node in rule["nodes"]
    ]


# nbgrader 0.9.6's own markup, not this project's: its list of downloaded assignments is a
# role="tablist" whose items are not tabs. Named here so that any other violation fails.
NBGRADER_KNOWN = {"aria-required-children: #fetched_assignments_list"}


# --- 1. Both instructors release; each student sees exactly their courses ----------------


def test_each_instructor_releases_the_assignment_in_their_courses_formgrader(
    hub, browser
):
    for course in ROSTER.courses:
        (instructor,) = course.instructors
        page = formgrader(browser, hub, instructor, course.id, "manage_assignments")
        page.click("td.release a")
        page.wait_for_selector(".modal-dialog")
        assert f"Successfully released '{ASSIGNMENT}'" in page.inner_text(
            ".modal-dialog"
        )
        page.context.close()
        outbound = layout(hub.root)["exchange"] / course.id / "outbound" / ASSIGNMENT
        assert (outbound / f"{NOTEBOOK}.ipynb").is_file()


def test_each_student_sees_exactly_their_courses_in_the_assignments_tab(hub, browser):
    for user in ANSWERS:
        page = student_lab(browser, hub, user)
        open_assignments(page)
        page.wait_for_selector("#released_assignments_list .list_item")
        enrolled = [c.id for c in ROSTER.courses if user in c.students]
        # The course menu lists every course the student is in, and only those; the list
        # below it shows the chosen course's assignments.
        assert sorted(page.locator("#course_list li").all_inner_texts()) == enrolled, (
            user
        )
        listed = page.locator(
            "#released_assignments_list .item_course"
        ).all_inner_texts()
        assert listed == [page.inner_text("#course_list_default")], user


def test_the_students_assignments_page_has_no_serious_axe_violation(hub, browser):
    """The Assignments panel (nbgrader's); JupyterLab's own file browser around it is not in
    scope (its toolbar buttons carry aria-pressed, which axe rejects on their role)."""
    found = set(serious_axe_violations(hub.pages["alice"], "#assignments"))
    assert found - NBGRADER_KNOWN == set()


# --- 2. Fetch, write, run the visible test, validate, submit --------------------------------


def fetch(page, course: str) -> None:
    item = page.locator("#released_assignments_list .list_item", has_text=course)
    started = time.monotonic()
    item.get_by_role("button", name="Fetch").click()
    page.locator(
        "#fetched_assignments_list .list_item", has_text=course
    ).first.wait_for()
    return time.monotonic() - started


def type_answer(
    hub: Hub, page, user: str, course: str, style: str, run: bool = True
) -> str:
    """Open the notebook in JupyterLab, replace the answer cell, run it and its visible test
    (and every cell above them); the visible test's output."""
    path = f"{course}/{ASSIGNMENT}/{NOTEBOOK}.ipynb"
    page.goto(f"{hub.url}/user/{user}/lab/tree/{path}")
    page.wait_for_selector(".jp-Notebook .jp-Cell")
    cell = page.locator(".jp-CodeCell", has_text="def corr2d_multi_in(").first
    cell.locator(".cm-content").click()
    page.keyboard.press("Control+a")
    page.keyboard.insert_text(typed(CORPUS[style])["corr2d_multi_in"])
    test = page.locator(".jp-CodeCell", has_text="visible_test(").first
    output = ""
    if run:
        test.locator(".jp-InputArea-prompt").click()  # select the cell, not its editor
        page.get_by_text("Run", exact=True).click()
        page.get_by_text("Run All Above Selected Cell").click()
        page.keyboard.press("Shift+Enter")
        # The visible test ran when its prompt shows an execution count.
        test.locator(".jp-InputArea-prompt", has_text=re.compile(r"\[\d+\]")).wait_for(
            timeout=180_000
        )
        output = test.locator(".jp-OutputArea").inner_text()
    page.keyboard.press("Control+s")
    # Saved: the notebook's tab loses its unsaved-changes mark.
    page.wait_for_selector(".lm-TabBar-tab.jp-mod-dirty", state="detached")
    return output


def validate_and_submit(page, course: str, validate: bool = True) -> str:
    page.get_by_role("tab", name="Assignments").or_(
        page.locator(".lm-TabBar-tab", has_text="Assignments")
    ).first.click()
    item = page.locator("#fetched_assignments_list .list_item", has_text=course).first
    item.locator("a.assignment-notebooks-link").click()
    verdict = ""
    if validate:
        row = page.locator(".nested_list_item", has_text=NOTEBOOK).first
        row.get_by_role("button", name="Validate").click()
        dialog = page.locator(".jp-Dialog")
        dialog.wait_for(timeout=180_000)
        verdict = dialog.inner_text()
        dialog.locator("button.jp-mod-accept").click()
    before = page.locator("#submitted_assignments_list .list_item").count()
    item.get_by_role("button", name="Submit").click()
    wait_for(
        lambda: page.locator("#submitted_assignments_list .list_item").count() > before,
        180,
        "the submission to be listed",
    )
    return verdict


def test_students_fetch_write_run_the_visible_test_validate_and_submit(hub, browser):
    for user, styles in ANSWERS.items():
        page = student_lab(browser, hub, user)
        open_assignments(page)
        course = next(c.id for c in ROSTER.courses if user in c.students)
        hub.timings.setdefault("fetch, s", []).append(round(fetch(page, course), 1))
        for again, style in enumerate(styles):
            output = type_answer(hub, page, user, course, style, run=not again)
            assert again or "corr2d_multi_in" in output, output
            started = time.monotonic()
            verdict = validate_and_submit(page, course, validate=not again)
            hub.timings.setdefault("validate and submit, s", []).append(
                round(time.monotonic() - started, 1)
            )
            assert again or "passes" in verdict.lower() or verdict, verdict
    inbound = layout(hub.root)["exchange"] / A.id / "inbound"
    chen = [p for p in os.listdir(inbound) if p.startswith("chen+")]
    assert len(chen) == 2


# --- 3. Collect, autograde, grade by hand, release feedback ---------------------------------


def test_the_instructor_collects_and_autogrades_as_the_courses_grading_account(
    hub, browser
):
    (instructor,) = A.instructors
    page = formgrader(browser, hub, instructor, A.id, "manage_assignments")
    page.click("td.collect a")
    page.wait_for_selector(".modal-dialog")
    assert "Successfully collected" in page.inner_text(".modal-dialog")
    page.goto(f"{hub.url}/services/{A.id}/formgrader/manage_submissions/{ASSIGNMENT}")
    students = sorted(u for u in ANSWERS if u in A.students)
    started = time.monotonic()
    for student in students:
        row = page.locator("tr", has_text=student).first
        row.locator("td.autograde a").click()
        dialog = page.locator(".modal-dialog")
        dialog.wait_for(timeout=240_000)
        assert "Successfully autograded" in dialog.inner_text(), dialog.inner_text()
        dialog.get_by_role("button", name="OK").or_(
            dialog.locator("button.close")
        ).first.click()
        dialog.wait_for(state="detached")
    hub.timings["autograde per student, s"] = round(
        (time.monotonic() - started) / len(students), 1
    )
    page.context.close()
    # The later of chen's two submissions is the one collected and graded.
    folder = course_dir(hub.root, A)
    grader_uid = pwd.getpwnam(A.grader).pw_uid
    for student in students:
        graded = folder / "autograded" / student / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
        assert graded.stat().st_uid == grader_uid  # written by the grading account
    assert (folder / "gradebook.db").stat().st_uid == grader_uid


WRITTEN = (
    "05-exercises"  # the notebook with the written answers (nbgrader manual cells)
)


def test_the_ta_grades_a_written_answer_in_formgrader(hub, browser):
    (ta,) = A.tas
    page = formgrader(browser, hub, ta, A.id, f"gradebook/{ASSIGNMENT}/{WRITTEN}")
    page.locator("a", has_text="Submission #1").click()
    score = page.locator("input.score[id^='answer_']").first
    score.wait_for()
    page.wait_for_load_state(
        "networkidle"
    )  # the page binds its fields once its data is in
    score.fill("1")
    score.press("Tab")  # the page saves a score when its field loses focus
    wait_for(
        lambda: any(s > 0 for s in manual_scores(hub).values()),
        180,  # a condition, not a pause: generous for a machine busy with other tests
        "the TA's score saved",
    )
    page.context.close()


def manual_scores(hub: Hub) -> dict[str, float]:
    """Each student's manual points in course A's gradebook (read as root, as a backup would)."""
    from nbgrader.api import Gradebook

    db = course_dir(hub.root, A) / "gradebook.db"
    with Gradebook(f"sqlite:///{db}") as gb:
        return {
            s.student.id: sum(
                g.manual_score or 0 for n in s.notebooks for g in n.grades
            )
            for s in gb.assignment_submissions(ASSIGNMENT)
        }


def test_the_ta_cannot_open_the_other_courses_formgrader(hub, browser):
    (ta,) = A.tas
    page = login(browser, hub, ta, f"/services/{B.id}/formgrader/")
    page.wait_for_load_state()
    assert "403" in page.title() + page.inner_text("body")
    assert "Manage Assignments" not in page.inner_text("body")
    page.context.close()


def test_the_instructor_generates_and_releases_feedback(hub, browser):
    (instructor,) = A.instructors
    page = formgrader(browser, hub, instructor, A.id, "manage_assignments")
    for action, done in (
        ("td.generate-feedback a", "Successfully generated feedback"),
        ("td.release-feedback a", "Successfully released feedback"),
    ):
        page.click(action)
        dialog = page.locator(".modal-dialog")
        dialog.wait_for(timeout=180_000)
        assert done in dialog.inner_text(), dialog.inner_text()
        dialog.locator("button", has_text="OK").or_(
            dialog.locator("button.close")
        ).first.click()
        dialog.wait_for(state="detached")
    page.context.close()


def test_each_student_fetches_their_feedback_and_reads_their_rubric_lines(hub, browser):
    for user in sorted(u for u in ANSWERS if u in A.students):
        page = student_lab(browser, hub, user)
        page.goto(f"{hub.url}/user/{user}/lab")
        open_assignments(page)
        item = page.locator(
            "#submitted_assignments_list .list_item", has_text=A.id
        ).first
        item.get_by_role("button", name="Fetch Feedback").click()
        home = Path(pwd.getpwnam(user).pw_dir)
        feedback = wait_for(
            lambda home=home: sorted(
                home.glob(f"{A.id}/{ASSIGNMENT}/feedback/*/{NOTEBOOK}.html")
            ),
            180,
            f"{user}'s feedback",
        )[-1]
        rel = feedback.relative_to(home)
        page.goto(f"{hub.url}/user/{user}/files/{rel}")
        text = page.inner_text("body")
        assert "corr2d_multi_in" in text and "points" in text.lower(), text[:2000]
        if user == "alice":
            assert serious_axe_violations(page) == []


# --- 4. Who can read what, tried as each person ---------------------------------------------

PROBE = (
    "import os, sys\n"
    "print(' '.join(str(int(os.access(p, os.R_OK))) for p in sys.argv[1:]))\n"
)


def readable(hub: Hub, user: str, paths: list[Path], view: bool = True) -> list[bool]:
    """Which of ``paths`` ``user`` can read: in their server's view, or as their account."""
    argv = [str(Path(sys.prefix) / "bin" / "python"), "-c", PROBE, *map(str, paths)]
    done = in_student_view(hub, user, argv) if view else as_user_python(user, argv)
    assert done.returncode == 0, done.stderr
    return [flag == "1" for flag in done.stdout.split()]


def as_user_python(user: str, argv: list[str]) -> subprocess.CompletedProcess:
    """The probe as ``user``'s account in the machine as it is (Python's install under /root
    made reachable, as for the grading accounts; nothing else changes)."""
    from course_hub.views import grader_view

    view = grader_view(user, Path("/"))
    return subprocess.run([*view, *argv], capture_output=True, text=True)


def instructor_files(hub: Hub) -> list[Path]:
    course = course_dir(hub.root, A)
    return [
        ROOT / "solutions" / ASSIGNMENT / f"{NOTEBOOK}.ipynb",
        ROOT / "autograder" / "grading" / "reference.py",
        ROOT / "nbgrader_config.py",
        course / "solutions" / ASSIGNMENT / f"{NOTEBOOK}.ipynb",
        course / "gradebook.db",
        course / ".autograder-secret",
        course / "submitted",
    ]


def test_a_students_server_has_the_release_and_kit_and_no_instructor_file(hub):
    home = Path(pwd.getpwnam("alice").pw_dir)
    fetched = home / A.id / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
    assert "setup_kit" in fetched.read_text()  # the check kit travels in the notebook
    assert readable(hub, "alice", [fetched, *instructor_files(hub)]) == [True] + [
        False
    ] * len(instructor_files(hub))
    done = in_student_view(
        hub,
        "alice",
        [str(Path(sys.prefix) / "bin" / "python"), "-c", "import autograder"],
    )
    assert "ModuleNotFoundError" in done.stderr


def test_file_modes_alone_keep_students_out_of_the_courses_folders(hub):
    """Outside their view too: the course folders, secret and gradebook are the grading
    account's (the checkout itself is hidden by the view only; keep it private on a real
    machine, README)."""
    course_files = instructor_files(hub)[3:]
    for user in ANSWERS:
        assert readable(hub, user, course_files, view=False) == [False] * len(
            course_files
        )


def test_a_student_cannot_list_the_inbox_or_reach_a_course_they_are_not_in(hub):
    exchange = layout(hub.root)["exchange"]
    for user in ANSWERS:
        lister = in_student_view(hub, user, ["ls", str(exchange / A.id / "inbound")])
        assert lister.returncode != 0 and "Permission denied" in lister.stderr, user
        for course in ROSTER.courses:
            seen = in_student_view(hub, user, ["ls", str(exchange / course.id)])
            assert (seen.returncode == 0) == (user in course.students), (
                user,
                course.id,
            )


# --- 5. The submission time: measured forgeable, then taken where the student cannot reach ----

FORGE = """
import datetime, sys, types
import nbgrader.exchange.abc.exchange as exchange
class Then(datetime.datetime):
    @classmethod
    def now(cls, tz=None):
        return datetime.datetime(2020, 1, 1, tzinfo=tz)
exchange.datetime = types.SimpleNamespace(datetime=Then)  # the student's own process
from nbgrader.apps.nbgraderapp import main
sys.argv = ["nbgrader", *sys.argv[1:]]
main()
"""


def test_a_student_can_forge_the_exchanges_time_but_not_the_receipt(hub):
    """chen fetches and submits course B from a terminal in their own server, with their
    process's clock set to 2020: nbgrader collects that time; the receipt has the real one."""
    python = str(Path(sys.prefix) / "bin" / "python")
    env = [
        "env",
        f"HOME={pwd.getpwnam('chen').pw_dir}",
        f"JUPYTER_CONFIG_PATH={layout(hub.root)['student_config']}",
    ]
    flags = [
        f"--course={B.id}",
        "--Authenticator.plugin_class=nbgrader.auth.NoAuthPlugin",
    ]
    for command in (["fetch_assignment", ASSIGNMENT], ["submit", ASSIGNMENT]):
        done = in_student_view(
            hub, "chen", [*env, python, "-c", FORGE, *command, *flags]
        )
        assert done.returncode == 0, done.stderr[-2000:]
    before = time.time()
    collected = as_grader(
        hub, B, [str(Path(sys.prefix) / "bin" / "nbgrader"), "collect", ASSIGNMENT]
    )
    assert collected.returncode == 0, collected.stderr[-2000:]
    stamp = (
        course_dir(hub.root, B) / "submitted" / "chen" / ASSIGNMENT / "timestamp.txt"
    )
    assert stamp.read_text().startswith(
        "2020-01-01"
    )  # measured: nbgrader takes the forgery
    receipt = wait_for(
        lambda: [
            r for r in read_receipts(course_dir(hub.root, B)) if r["student"] == "chen"
        ],
        180,
        "the receipt of chen's submission",
    )[-1]
    assert receipt["claimed"].startswith("2020-01-01")
    taken = datetime.fromisoformat(receipt["received_at"]).timestamp()
    assert before - 600 < taken <= time.time()
    assert received_at(course_dir(hub.root, B), "chen", ASSIGNMENT).year >= 2026


def test_the_courses_exports_match_the_grade_command_on_the_same_files(hub):
    """What formgrader's autograde put in the gradebook, and the LMS file exported from it,
    are what `python -m autograder grade` gives on the collected files (the TA's point aside)."""
    course = course_dir(hub.root, A)
    python = str(Path(sys.prefix) / "bin" / "python")
    for argv in (
        ["grade", "--submitted", "submitted", "--out", "grade-command"],
        ["export", "--gradebook", "gradebook.db", "--out", "exports"],
    ):
        done = as_grader(hub, A, [python, "-m", "autograder", *argv])
        assert done.returncode == 0, done.stderr[-2000:]
    with open(course / "grade-command" / "grades.csv", newline="") as f:
        command = {
            (r["student"], r["notebook"].removesuffix(".ipynb"), r["item"]): float(
                r["score"] or 0
            )
            for r in csv.DictReader(f)
        }
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        book = {
            (s.student.id, nb.name, g.name): g.auto_score or 0.0
            for s in gb.assignment_submissions(ASSIGNMENT)
            for nb in s.notebooks
            for g in nb.grades
            if g.auto_score is not None
        }
    assert book and {k: v for k, v in command.items() if k in book} == book
    totals = {
        s: sum(v for k, v in command.items() if k[0] == s) for s in ("alice", "chen")
    }
    manual = manual_scores(hub)
    with open(course / "exports" / "canvas.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("SIS Login ID") in totals]
    for row in rows:
        student = row["SIS Login ID"]
        assert float(row[ASSIGNMENT]) == pytest.approx(
            totals[student] + manual[student]
        )
    assert len(rows) == 2
