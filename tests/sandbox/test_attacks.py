"""Students who run native code against the grader: each costs only its own points.

Written as the attacker would write it: answer cells that reach for the process that forked
them, leave state for a later student, forge the reply on the result pipe, or close their pipes
and sleep. Every batch is graded on one worker, so each attacker runs before bystanders who share
its zygote; the bystanders must get exactly their honest scores, the batch must finish, and a
resumed batch must end with identical files. The same students go through stock ``nbgrader
autograde`` in ``test_attacks_under_stock_nbgrader.py``.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from attackers import (
    ATTACKERS,
    BYSTANDERS,
    FIND_STATE,
    FULL,
    HONEST,
    LEAVE_STATE,
    LIMITS,
    cell_scores,
    honest_scores,
    write_students,
)
from conftest import (
    NOTEBOOK_OF,
    resume_after_a_kill,
    same_files,
    write_submission,
)
from corpus import ADDS, MULTI_IN, Entry, typed

from autograder import EXERCISES, notebooks
from autograder.batch import grade_batch
from autograder.grading import grader
from autograder.grading.grader import Policy
from autograder.integration import plugin
from autograder.outputs import report
from autograder.paths import RELEASE_DIR, ROOT
from autograder.sandbox import runner
from autograder.sandbox.runner import Limits

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]


@pytest.fixture(scope="module")
def graded(tmp_path_factory, warm_sandbox) -> tuple[Path, dict[str, dict]]:
    course = tmp_path_factory.mktemp("attacks")
    write_students(course)
    out = course / "out"
    results = grade_batch(course / "submitted", out, sandbox=warm_sandbox(LIMITS))
    return out, {r["student"]: r for r in results}


@pytest.mark.parametrize("student", sorted(BYSTANDERS))
def test_bystanders_graded_after_every_attack_get_exactly_their_honest_scores(
    graded, student
):
    _, results = graded
    assert cell_scores(results[student]) == honest_scores(student)


@pytest.mark.parametrize("student", sorted(ATTACKERS))
def test_each_attacker_loses_only_the_function_it_attacked_with(graded, student):
    _, results = graded
    scores = cell_scores(results[student])
    for cell, (score, status) in honest_scores(student).items():
        if cell in ATTACKERS[student].expected:
            assert scores[cell][0] == 0.0, cell
            # A policy check may flag the attack for review first; never a pass.
            assert scores[cell][1] in {status, "needs-review"}, cell
        else:
            assert scores[cell] == (score, status), cell


def test_forged_text_reaches_no_file_as_control_characters_or_surrogates(graded):
    out, _ = graded
    files = [out / "grades.csv", *(out / "feedback").glob("*.html")]
    files += (out / "results").glob("*.json")
    for path in files:
        text = path.read_bytes().decode("utf-8")  # raises on a lone surrogate
        assert "\x1b" not in text and "\x00" not in text and "\\ud800" not in text, path


def test_a_reply_full_of_errors_costs_kilobytes_not_megabytes(graded):
    out, _ = graded
    assert (out / "results" / "attack_megabytes_of_errors.json").stat().st_size < 50_000


def test_the_attacked_batch_resumes_to_identical_files(graded, tmp_path, warm_sandbox):
    out, _ = graded
    killed_before = [
        "attack_takeover",
        "attack_closes_pipes_and_sleeps",
        "bystander_solved",
    ]
    assert same_files(
        out, resume_after_a_kill(out, tmp_path, killed_before, warm_sandbox(LIMITS))
    )


def test_a_grader_exception_costs_one_student_and_is_logged(
    tmp_path, monkeypatch, caplog, warm_sandbox
):
    """Whatever input makes the grader's own code raise (none is known: each found so far is a
    test above) costs that student alone, as grader-error, and the resumed batch agrees."""
    unforeseen = HONEST + "  # the input that breaks the grader"
    write_submission(
        tmp_path, "a_breaks_the_grader", typed(Entry({MULTI_IN: unforeseen}))
    )
    write_submission(tmp_path, "b_bystander", typed(Entry({})))
    real = grader.prepare_file

    def fails_for_one_student(name, data, *args, **kwargs):
        if b"breaks the grader" in data:
            raise RecursionError("a case nobody foresaw")
        return real(name, data, *args, **kwargs)

    monkeypatch.setattr(grader, "prepare_file", fails_for_one_student)
    out = tmp_path / "out"
    results = {
        r["student"]: r
        for r in grade_batch(tmp_path / "submitted", out, sandbox=warm_sandbox(LIMITS))
    }
    assert cell_scores(results["b_bystander"]) == FULL
    broken = cell_scores(results["a_breaks_the_grader"])
    assert (
        set(broken.values()) == {(0.0, "grader-error")} and broken.keys() == FULL.keys()
    )
    assert "grader-error for a_breaks_the_grader: RecursionError" in caplog.text
    assert same_files(
        out, resume_after_a_kill(out, tmp_path, ["b_bystander"], warm_sandbox(LIMITS))
    )


def test_a_grader_exception_under_stock_nbgrader_costs_that_notebook(
    monkeypatch, caplog, warm_sandbox
):
    name = NOTEBOOK_OF[MULTI_IN]

    def raises(*args, **kwargs):
        raise ValueError("a case nobody foresaw")

    monkeypatch.setattr(plugin, "grade_notebook_node", raises)
    nb = notebooks.read(RELEASE_DIR / name)
    result = plugin._grade_guarded(nb, name, warm_sandbox(LIMITS), Policy())
    assert result.notebook == name
    assert {(i.score, i.status) for i in result.items} == {(0.0, "grader-error")}
    assert f"grader-error in {name}: ValueError" in caplog.text


def test_state_left_by_one_student_is_gone_for_the_next(tmp_path, warm_sandbox):
    """A shared-memory segment, a message queue, a semaphore, a key in the user keyring and a
    file in /tmp, left by one student: the next student on the same zygote finds none."""
    write_submission(tmp_path, "a_leaves", typed(Entry({MULTI_IN: LEAVE_STATE})))
    write_submission(tmp_path, "b_looks", typed(Entry({MULTI_IN: FIND_STATE})))
    results = {
        r["student"]: cell_scores(r)
        for r in grade_batch(
            tmp_path / "submitted", tmp_path / "out", sandbox=warm_sandbox(LIMITS)
        )
    }
    found = results["b_looks"]["test_corr2d_multi_in_example"]
    assert found == (0.0, "failed"), "the second student found what the first left"
    message = next(
        row["message"]
        for r in report.load_results(tmp_path / "out")
        for row in report.rows(r)
        if r["student"] == "b_looks" and row["item"] == "test_corr2d_multi_in_example"
    )
    assert "nothing was left behind" in message


ORDINARY_UID = 4242  # any unprivileged uid: no account is needed


def as_ordinary_user(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run ``argv`` as an unprivileged user, as a course without root runs the grader.

    Root's home is private on many machines, so the Python installation under it is bound
    into a view where it can be reached; nothing else changes.
    """
    view = ["bwrap", "--dev-bind", "/", "/"]
    # pyenv under /root: bind its whole folder, as the interpreter resolves itself there.
    if sys.base_prefix.startswith("/root/"):
        install = "/root/" + Path(sys.base_prefix).relative_to("/root").parts[0]
        view += ["--tmpfs", "/root", "--ro-bind", install, install]
    drop = ["setpriv", f"--reuid={ORDINARY_UID}", f"--regid={ORDINARY_UID}",
            "--clear-groups", "--inh-caps=-all", "--"]  # fmt: skip
    return subprocess.run(
        [*view, "--chdir", str(cwd), *drop, *argv], capture_output=True, text=True
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="root sets up the ordinary user's run")
def test_as_an_ordinary_user_the_attacks_cost_the_same_and_nothing_more(graded):
    """Without root, bubblewrap maps the grader's user to nobody in a user namespace, and the
    student processes nest their own inside it: the same scores, byte for byte."""
    out, _ = graded
    course = Path(tempfile.mkdtemp(prefix="ordinary-"))
    try:
        shutil.copytree(out.parent / "submitted", course / "submitted")
        shutil.copy(ROOT / "nbgrader_config.py", course)
        for path in [course, *course.rglob("*")]:
            os.chown(path, ORDINARY_UID, ORDINARY_UID)
        done = as_ordinary_user(
            [sys.executable, "-m", "autograder", "grade", "--public-seeds",
             "--submitted", "submitted", "--out", "out"],
            course,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        assert (course / "out" / "grades.csv").read_bytes() == (
            out / "grades.csv"
        ).read_bytes()
    finally:
        shutil.rmtree(course)


@pytest.mark.skipif(platform.machine() != "x86_64", reason="x86_64 system call numbers")
def test_the_system_calls_of_an_escape_are_refused_in_a_grading_child(warm_sandbox):
    """Each call an escape needs, made by hand: EPERM from the filter (EACCES for the zygote's
    /proc files, which a non-dumpable process keeps to root)."""
    probe = """
import ctypes, errno, os
libc = ctypes.CDLL(None, use_errno=True)
ppid = os.getppid()
calls = {
    "ptrace": (101, 16, ppid, 0, 0), "process_vm_readv": (310, ppid, 0, 0, 0, 0, 0),
    "kill parent": (62, ppid, 0), "kill all": (62, -1, 0), "tgkill": (234, ppid, ppid, 0),
    "pidfd_open": (434, ppid, 0), "shmget": (29, 0, 1 << 20, 0o1600),
    "msgget": (68, 0, 0o1600), "semget": (64, 0, 1, 0o1600),
    "add_key": (248, b"user", b"k", b"v", 1, -4), "keyctl": (250, 0, -4, 0),
    "io_uring_setup": (425, 1, ctypes.create_string_buffer(120)),
    "unshare": (272, 0x10000000), "setns": (308, 0, 0), "mount": (165, 0, 0, 0, 0, 0),
    "bpf": (321, 0, 0, 0), "perf_event_open": (298, 0, 0, -1, -1, 0),
    "userfaultfd": (323, 0), "fork": (57,), "execve": (59, b"/bin/true", 0, 0),
    "setsid": (112,),
}
seen = {}
for name, (number, *args) in calls.items():
    result = libc.syscall(number, *args)
    seen[name] = "ok" if result >= 0 else errno.errorcode[ctypes.get_errno()]
for path in (f"/proc/{ppid}/mem", f"/proc/{ppid}/fd/0", "/proc/2/mem"):
    try:
        open(path, "rb").close()
        seen[path] = "ok"
    except OSError as error:
        seen[path] = errno.errorcode[error.errno]
print(seen)
"""
    job = {"function": "f", "setup": [], "stand_ins": [], "cells": [probe], "cases": []}
    reply = warm_sandbox(LIMITS).run(job)
    seen = eval(reply["output"])  # the dict the probe printed
    for name, error in seen.items():
        assert error == ("EACCES" if name.startswith("/proc") else "EPERM"), (
            name,
            error,
        )


def test_a_child_that_closes_its_pipes_and_sleeps_is_killed_at_its_wall_limit(
    warm_sandbox,
):
    sleeper = "import os, time\nos.closerange(0, 4096)\ntime.sleep(600)\n"
    job = {
        "function": "f",
        "setup": [],
        "stand_ins": [],
        "cells": [sleeper],
        "cases": [],
    }
    with warm_sandbox(LIMITS).session() as session:
        reply = session.run(job)
        after = session.run({**job, "cells": ["print('still here')"]})
    assert reply["status"] == "timeout"
    assert reply["seconds"] < LIMITS.wall_seconds + 1.0
    assert after["status"] == "ok" and after["output"] == "still here\n"


def test_a_busy_machine_turns_no_honest_answer_into_a_timeout():
    """The sandbox gets one CPU and shares it with four processes that spin on it: an answer
    that computes for 0.4 s of its own then takes about 2 s of wall clock, over its 1 s limit,
    and is still graded, because its limit runs on its own clock (the time it waited for the
    CPU left out). Sleeping is the answer's own time: a sleeper is still stopped at 1 s."""
    limits = Limits(wall_seconds=1.0, cpu_seconds=3)
    computes = (
        "import time\nt = time.process_time()\n"
        "while time.process_time() - t < 0.4:\n    pass\nprint('done')\n"
    )
    sleeps = "import time\ntime.sleep(30)\n"
    job = {"function": "f", "setup": [], "stand_ins": [], "cases": []}
    cpus = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cpus)})  # the sandbox and the spinners inherit it
    spinners: list[subprocess.Popen] = []
    try:
        with runner.Sandbox(limits) as box, box.session() as session:
            assert session.run({**job, "cells": ["1"]})["status"] == "ok"  # warm
            spin = [sys.executable, "-c", "while True: pass"]
            # Each in a session of its own: with autogroup scheduling, CPU time is shared
            # between sessions first.
            spinners = [
                subprocess.Popen(spin, start_new_session=True) for _ in range(4)
            ]
            wall = time.monotonic()
            computed = session.run({**job, "cells": [computes]})
            wall = time.monotonic() - wall
            slept = session.run({**job, "cells": [sleeps]})
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()
        os.sched_setaffinity(0, cpus)
    assert (
        wall > limits.wall_seconds
    )  # the machine really was too busy for a wall clock
    assert computed["status"] == "ok" and computed["output"] == "done\n"
    # Two clocks: the answer counts 0.4 s of process_time (every thread of its process), the
    # grader its main thread's wall time less run-queue waits; under four spinners they have
    # differed by 14 ms (0.386 s). What matters is that the wait is not counted: well under 1 s.
    assert 0.4 * 0.9 <= computed["seconds"] < limits.wall_seconds
    assert slept["status"] == "timeout"
    assert slept["seconds"] < limits.wall_seconds + 0.5


def test_an_answer_that_hangs_or_kills_its_child_costs_only_itself(
    tmp_path, warm_sandbox
):
    """The exercises notebook's five answers run in one child, one after another, as one
    kernel would run them. One that never returns, and the next that ends the child, cost
    their own points: a fresh child grades each answer after them."""
    entry = Entry(
        {
            ADDS: "\n    while True:\n        pass",
            "conv2d_memory": "\n    import os\n    os._exit(0)",
        }
    )
    write_submission(tmp_path, "a_hangs_then_dies", typed(entry))
    write_submission(tmp_path, "b_bystander", typed(Entry({})))
    results = {
        r["student"]: r
        for r in grade_batch(
            tmp_path / "submitted", tmp_path / "out", sandbox=warm_sandbox(LIMITS)
        )
    }
    lost_cells = {
        item.cell: (0.0, status)
        for name, status in ((ADDS, "timeout"), ("conv2d_memory", "crashed"))
        for item in EXERCISES[name].rubric
    }
    assert cell_scores(results["a_hangs_then_dies"]) == FULL | lost_cells
    assert cell_scores(results["b_bystander"]) == FULL
