"""The grade command on a real Dask cluster: a ``dask scheduler`` and two ``dask worker``
processes on 127.0.0.1, started the way a cluster runs them (each worker under its nanny).

The cluster must write exactly the files of a local run; so must a batch whose worker is
SIGKILLed mid-way (Dask reschedules its students) and a batch whose client is killed and then
resumed. A student whose grading keeps killing its worker costs that student alone.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import same_files, write_submission
from conftest import wait_for as wait_until
from corpus import BROKEN_FILES, CORPUS, typed, write_corpus
from distributed import Client

from autograder import __main__ as cli
from autograder.__main__ import class_files
from autograder.batch import grade_batch
from autograder.deadlines.schedule import load_calendar
from autograder.grading.cluster import PLUGIN, plugin_name
from autograder.outputs import report
from autograder.paths import ASSIGNMENT, ROOT
from autograder.sandbox.runner import Limits

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]
# Polled every 50 ms: a student's task on a worker runs for well under a second.
wait_for = functools.partial(wait_until, interval=0.05)
# What the grade command uses with ``c.TrustedAutograde.wall_seconds = 3``.
LIMITS = Limits(wall_seconds=3.0)
DASK = str(Path(sys.executable).with_name("dask"))
# A task that was running on this many killed workers is given up (KilledWorker): one kill is
# rescheduled, the second is not. The scheduler's own setting, as a cluster would set it.
ALLOWED_FAILURES = 1
SLOW_STUDENT = "hostile_endless_loop_ignoring_sigint"  # runs into its 3 s limit


class DaskCluster:
    """A scheduler and two nanny-supervised workers as separate processes, and an observer."""

    def __init__(self, folder: Path, workers: int = 2, worker_path: str = "") -> None:
        env = os.environ | {
            "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": str(ALLOWED_FAILURES)
        }
        self.workers = workers
        self.logs = logs = folder / "logs"
        logs.mkdir(parents=True)
        scheduler_file = folder / "scheduler.json"
        self.processes = [
            self._start(
                [DASK, "scheduler", "--host", "127.0.0.1", "--port", "0",
                 "--dashboard-address", ":0", "--scheduler-file", str(scheduler_file)],
                env, logs / "scheduler.log",
            )
        ]  # fmt: skip
        wait_for(scheduler_file.exists, 60, "scheduler file")
        self.address = wait_for(
            lambda: json.loads(scheduler_file.read_text() or "{}").get("address"),
            60,
            "scheduler address",
        )
        # A worker machine's PATH (without bubblewrap on it, for one test).
        worker_env = env | {"PATH": worker_path} if worker_path else env
        for i in range(workers):
            self.processes.append(
                self._start(
                    [DASK, "worker", self.address, "--name", f"worker{i}",
                     "--nthreads", "1", "--nworkers", "1", "--memory-limit", "0",
                     "--dashboard-address", ":0", "--local-directory",
                     str(folder / f"worker{i}")],
                    worker_env, logs / f"worker{i}.log",
                )
            )  # fmt: skip
        self.observer = Client(self.address, timeout="60s")
        self.ready()

    @staticmethod
    def _start(cmd: list[str], env: dict, log: Path) -> subprocess.Popen:
        with log.open("wb") as out:
            return subprocess.Popen(
                cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT
            )

    def ready(self) -> None:
        """Every worker up (a killed one is restarted by its nanny); if not, what the
        processes logged says why (the logs live in a temporary folder CI does not keep)."""
        try:
            self.observer.wait_for_workers(self.workers, timeout=180)
        except TimeoutError as error:
            tails = "\n".join(
                f"--- {log.name} (last 40 lines)\n"
                + "\n".join(log.read_text(errors="replace").splitlines()[-40:])
                for log in sorted(self.logs.glob("*.log"))
            )
            raise AssertionError(f"{error}\n{tails}") from None

    def kill_worker_running(self, key_part: str, not_on: str = "") -> str:
        """SIGKILL the worker process (not its nanny) that is grading a task whose key
        contains ``key_part``, as soon as there is one (on a worker other than ``not_on``,
        which died already); its address."""

        def running() -> str | None:
            for address, keys in self.observer.processing().items():
                if address != not_on and any(key_part in str(key) for key in keys):
                    return address
            return None

        address = wait_for(running, 120, f"task {key_part} on a worker")
        pid = self.observer.run(os.getpid, workers=[address])[address]
        os.kill(pid, signal.SIGKILL)
        return address

    def close(self) -> None:
        self.observer.close()
        for proc in reversed(self.processes):
            proc.terminate()
        for proc in self.processes:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[DaskCluster]:
    running = DaskCluster(tmp_path_factory.mktemp("dask"))
    try:
        yield running
    finally:
        running.close()


@pytest.fixture(scope="module")
def course(tmp_path_factory, warm_sandbox) -> Path:
    """The corpus as one course, graded once locally: the files every cluster run must match."""
    course = tmp_path_factory.mktemp("course")
    shutil.copy(ROOT / "nbgrader_config.py", course)
    with (course / "nbgrader_config.py").open("a") as config:
        config.write("\nc.TrustedAutograde.wall_seconds = 3\n")
    write_corpus(course, BROKEN_FILES)
    grade_batch(course / "submitted", course / "local", sandbox=warm_sandbox(LIMITS))
    return course


def identical(a: Path, b: Path) -> bool:
    return same_files(a, b) and same_files(b, a)


def in_background(fn: Callable[[], object]) -> Callable[[float], None]:
    """Run ``fn`` in a thread; the returned function joins it (failing on its error)."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            fn()
        except BaseException as error:  # reported by join
            errors.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def join(seconds: float) -> None:
        thread.join(seconds)
        assert not thread.is_alive(), f"the batch still runs after {seconds} s"
        if errors:
            raise errors[0]

    return join


def graded_count(out: Path) -> int:
    return len(report.graded_students(out))


def test_the_cluster_writes_the_files_of_a_local_run(cluster, course, tmp_path):
    cluster.ready()
    out = tmp_path / "out"
    grade_batch(course / "submitted", out, dask=cluster.address, limits=LIMITS)
    assert identical(course / "local", out)
    assert graded_count(out) == len(CORPUS) + len(BROKEN_FILES) + 2


def test_a_worker_killed_mid_batch_changes_no_file(cluster, course, tmp_path):
    cluster.ready()
    out = tmp_path / "out"
    join = in_background(
        lambda: grade_batch(
            course / "submitted", out, dask=cluster.address, limits=LIMITS
        )
    )
    wait_for(lambda: graded_count(out) >= 5, 300, "five graded students")
    cluster.kill_worker_running("grade-")
    join(600)
    assert identical(course / "local", out)
    cluster.ready()  # its nanny started it again


def test_a_killed_client_resumes_to_identical_files(cluster, course, tmp_path):
    cluster.ready()
    out = tmp_path / "out"
    command = [
        sys.executable, "-m", "autograder", "grade", "--course", str(course),
        "--submitted", str(course / "submitted"), "--out", str(out),
        "--public-seeds", "--dask", cluster.address,
    ]  # fmt: skip
    client = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_for(lambda: graded_count(out) >= 5, 300, "five graded students")
    client.kill()
    client.wait()
    assert graded_count(out) < len(CORPUS) + len(BROKEN_FILES) + 2
    # Run again without --resume: refused, nothing changed.
    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert again.returncode == 2
    assert "--resume" in again.stderr
    resumed = subprocess.run(
        [*command, "--resume"], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr
    # The command also writes the class report, the guide and the exports: from an
    # uninterrupted local run's results they come out the same, byte for byte.
    local = tmp_path / "local"
    shutil.copytree(course / "local", local)
    # The command read the course's calendar (none set: nobody is late), as this does.
    calendar = load_calendar(course, ASSIGNMENT)
    class_files(
        course / "submitted", local, report.load_results(local), calendar, course
    )
    assert identical(local, out)


def test_a_student_who_keeps_killing_workers_costs_only_that_student(
    cluster, tmp_path, warm_sandbox
):
    """The victim's grading is running each time its worker dies (as under the kernel's OOM
    killer, or a crash in native code): Dask gives it up after ``ALLOWED_FAILURES`` retries,
    the student gets ``grader-error``, the bystanders their own scores, and both workers
    come back."""
    cluster.ready()
    students = {
        "a_bystander": typed(CORPUS["honest_loops"]),
        "b_bystander": typed(CORPUS["mistake_flipped_kernel"]),
        "victim": typed(CORPUS[SLOW_STUDENT]),
    }
    for student, answers in students.items():
        write_submission(tmp_path, student, answers)
    local = tmp_path / "local"
    grade_batch(tmp_path / "submitted", local, sandbox=warm_sandbox(LIMITS))
    out = tmp_path / "out"
    join = in_background(
        lambda: grade_batch(
            tmp_path / "submitted", out, dask=cluster.address, limits=LIMITS
        )
    )
    wait_for(lambda: graded_count(out) >= 2, 300, "the bystanders' results")
    first = cluster.kill_worker_running("grade-victim")
    cluster.kill_worker_running("grade-victim", not_on=first)
    join(300)
    for bystander in ("a_bystander", "b_bystander"):
        name = f"results/{bystander}.json"
        assert (out / name).read_bytes() == (local / name).read_bytes()
    victim = json.loads((out / "results" / "victim.json").read_text())
    statuses = {i["status"] for nb in victim["notebooks"] for i in nb["items"]}
    assert statuses == {"grader-error"}
    cluster.ready()


def test_the_next_batch_of_the_same_limits_finds_each_workers_zygote_warm(
    cluster, tmp_path
):
    """On a long-lived cluster each worker keeps its zygote for the next batch of the same
    limits (no second import of torch); a batch of other limits replaces it, one per worker.
    Last of the tests on ``cluster``: the others grade with ``LIMITS`` on the warm zygotes."""
    cluster.ready()
    for student in ("honest_loops", "mistake_flipped_kernel"):
        write_submission(tmp_path, student, typed(CORPUS[student]))

    def zygotes() -> dict[str, dict[str, int]]:
        """Per worker: each sandbox plugin's name and its zygote's pid."""

        def on_worker(dask_worker) -> dict[str, int]:
            return {
                name: plugin.sandbox._proc.pid
                for name, plugin in dask_worker.plugins.items()
                if name.startswith(PLUGIN) and plugin.sandbox._proc is not None
            }

        return cluster.observer.run(on_worker)

    def batch(out: str, limits: Limits) -> Path:
        grade_batch(
            tmp_path / "submitted", tmp_path / out, dask=cluster.address, limits=limits
        )
        return tmp_path / out

    first = batch("first", LIMITS)
    warm = zygotes()
    assert len(warm) == 2 and all(len(plugins) == 1 for plugins in warm.values())
    second = batch("second", LIMITS)
    assert zygotes() == warm
    assert identical(first, second)
    batch("other-limits", Limits(wall_seconds=4.0))
    replaced = zygotes()
    assert set(replaced) == set(warm)
    for address, plugins in replaced.items():
        ((name, pid),) = plugins.items()
        assert name == plugin_name(Limits(wall_seconds=4.0), False)
        assert pid not in warm[address].values()


def test_a_worker_without_bubblewrap_grades_no_one(course, tmp_path, capsys):
    """A worker machine without bubblewrap: the grade command stops with the sandbox's
    refusal, as on one machine, and no student is graded unconfined."""
    no_tools = tmp_path / "bin"
    no_tools.mkdir()
    bare = DaskCluster(tmp_path / "dask", workers=1, worker_path=str(no_tools))
    try:
        out = tmp_path / "out"
        code = cli.main(
            ["grade", "--course", str(course), "--submitted", str(course / "submitted"),
             "--out", str(out), "--public-seeds", "--dask", bare.address]
        )  # fmt: skip
    finally:
        bare.close()
    assert code == 2
    error = capsys.readouterr().err
    assert "bubblewrap" in error and "--unsafe-no-sandbox" in error
    assert graded_count(out) == 0
