"""Grade a batch on Dask workers: this machine's cores (``--workers N``) or a cluster (``--dask``).

Each worker holds one warm sandbox (``SandboxPlugin``), kept for the next batch of the same
limits on a long-lived cluster; the instructor's process reads each
student's files, sends them as data (a worker needs no access to the submissions folder), and
saves each plain result as it comes back, so a killed client resumes where it stopped. Dask
reschedules the students of a worker that dies; a student whose grading has killed workers
``distributed.scheduler.allowed-failures`` times (3 by default) is reported as ``KilledWorker``
and gets status ``grader-error``, and the cluster goes on with everyone else.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from distributed import Client, LocalCluster, WorkerPlugin, as_completed, get_worker

from autograder.grading.grader import (
    Policy,
    Submission,
    grade_submission,
    grader_error_result,
    read_submission,
)
from autograder.sandbox.runner import Limits, Sandbox, SandboxUnavailableError

PLUGIN = "autograder-sandbox"
CONNECT_TIMEOUT = "30s"
# Students sent ahead of the results per worker thread: enough to keep every worker busy while
# results travel back, few enough that the client never holds a MOOC's notebooks at once.
AHEAD_PER_THREAD = 4


class ClusterUnavailableError(RuntimeError):
    """No Dask scheduler answers at the address given."""


class SandboxPlugin(WorkerPlugin):
    """One warm sandbox per worker, started when the worker joins (or restarts after dying).

    A zygote that dies is started again by the sandbox itself on the next student. A worker
    with several threads grades one student at a time: one sandbox is one zygote. Registered
    under a name that says its limits, and ``idempotent``: the next batch with the same limits
    finds the workers' zygotes warm instead of importing torch on each again.
    """

    idempotent = True

    def __init__(self, limits: Limits, unsafe: bool) -> None:
        self.limits = limits
        self.unsafe = unsafe
        self.sandbox: Sandbox | None = None
        # Made on the worker, in setup: a lock cannot travel.
        self.lock: threading.Lock | None = None

    async def setup(self, worker) -> None:
        self.lock = threading.Lock()
        self.sandbox = Sandbox(self.limits, unsafe=self.unsafe)
        # Starting imports torch in the zygote (seconds): off the worker's event loop.
        await asyncio.get_running_loop().run_in_executor(None, self.sandbox.start)

    def teardown(self, worker) -> None:
        if self.sandbox is not None:
            self.sandbox.close()


def plugin_name(limits: Limits, unsafe: bool) -> str:
    """The worker plugin's name for these settings (the same in every process)."""
    settings = hashlib.sha256(repr((limits, unsafe)).encode()).hexdigest()[:12]
    return f"{PLUGIN}-{settings}"


def _sandbox_plugins(dask_scheduler) -> list[str]:
    """Run on the scheduler: the sandbox plugins registered there."""
    return [name for name in dask_scheduler.worker_plugins if name.startswith(PLUGIN)]


def grade_on_worker(
    submission: Submission, policy: Policy, sandbox_plugin: str
) -> dict:
    """The task: one student, graded in this worker's sandbox, as plain data."""
    plugin = get_worker().plugins[sandbox_plugin]
    with plugin.lock:
        return grade_submission(submission, plugin.sandbox, policy)


@contextmanager
def connect(address: str | None, workers: int) -> Iterator[Client]:
    """A client of the cluster at ``address``, or of ``workers`` local worker processes."""
    if address:
        try:
            client = Client(address, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as error:
            raise ClusterUnavailableError(
                f"no Dask scheduler answers at {address} ({error})"
            ) from error
        with client:
            yield client
        return
    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",  # any free port: never in the way of another run
            silence_logs=logging.ERROR,
        ) as local,
        Client(local) as client,
    ):
        yield client


def grade_on_cluster(
    todo: list[Path],
    save: Callable[[dict], None],
    *,
    address: str | None,
    workers: int,
    policy: Policy,
    limits: Limits,
    unsafe: bool,
) -> None:
    """Grade the students in ``todo`` on Dask workers; ``save`` each result as it arrives.

    Raises SandboxUnavailableError when a worker cannot sandbox (no bubblewrap there): no one
    is graded unconfined, and the results saved so far stay for a resumed run.
    """
    with connect(address, workers) as client:
        name = plugin_name(limits, unsafe)
        # One zygote per worker: a sandbox of other limits left by an earlier batch goes (so
        # two batches of different limits at once on one cluster still disturb each other;
        # two of the same limits no longer do).
        for stale in client.run_on_scheduler(_sandbox_plugins):
            if stale != name:
                client.unregister_worker_plugin(stale)
        client.register_plugin(SandboxPlugin(limits, unsafe), name=name)
        threads = max(1, sum(client.nthreads().values()))
        pending = iter(todo)
        names: dict[str, str] = {}
        batch = uuid.uuid4().hex[:8]  # keys of this batch only, on a long-lived cluster

        def submit(student_dir: Path):
            submission = read_submission(student_dir)
            future = client.submit(
                grade_on_worker,
                submission,
                policy,
                name,
                key=f"grade-{submission.student}-{batch}",
                pure=False,
            )
            names[future.key] = submission.student
            return future

        running = as_completed(
            [submit(d) for d in itertools.islice(pending, AHEAD_PER_THREAD * threads)]
        )
        for future in running:
            student = names.pop(future.key)
            error = future.exception()
            if isinstance(error, SandboxUnavailableError):
                client.cancel(list(running.futures))
                raise error
            save(
                future.result()
                if error is None
                else grader_error_result(student, error)
            )
            future.release()
            if (student_dir := next(pending, None)) is not None:
                running.add(submit(student_dir))
