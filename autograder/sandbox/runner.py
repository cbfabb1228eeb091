"""Run student code where it can do no harm, and get plain data back.

The only module that starts processes. A ``Sandbox`` owns one zygote: ``harness.py`` running in
bubblewrap with no network, a read-only view of the Python installation and nothing else of this
machine (no solutions, gradebook, other submissions or home directories), as an unprivileged
user. The zygote imports torch once and never runs student code; each ``Session`` (one student)
is a process forked from it with a socket of its own, which forks a limited child per notebook,
so a job costs milliseconds instead of the seconds a fresh Python with torch would.

The grader enforces every deadline from here: a reply that does not come in time, is too long or
is not what the harness writes ends that student's process tree (the zygote kills it), and the
job gets a status, not an exception. What a child sends back is data that ``replies.py`` parses
and checks; nothing here believes it.
"""

from __future__ import annotations

import atexit
import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

# What the sandbox sees of this package: the harness and the two small modules it imports, the
# whole of inside/ but its package marker (the harness runs as a script there, not a package).
INSIDE = Path(__file__).with_name("inside")
HARNESS = INSIDE / "harness.py"
BOUND_FILES = [
    INSIDE / name for name in ("harness.py", "syscall_policy.py", "fingerprint.py")
]
SANDBOX_UID = 65534  # "nobody" inside the sandbox
WORKER_START_SECONDS = 180
# The probe runs /usr/bin/true (milliseconds); a bubblewrap that hangs must not hang a worker.
PROBE_SECONDS = 60
# Beyond a job's time limit: the fork, the student's cells and the reply's way back.
REPLY_MARGIN_SECONDS = 10.0
# The student process counts a job's time on the child's own clock, time spent waiting for a
# CPU left out (harness._OwnClock); from here only the wall clock can be read, so this side
# waits that many times longer: a backstop that a busy machine does not reach first.
BUSY_MACHINE_FACTOR = 5


@dataclass(frozen=True)
class Limits:
    """Per-job limits: rlimits inside the sandbox, the job's own clock inside (wall time less
    waiting for a CPU) and a wall-clock backstop from here."""

    wall_seconds: float = 10.0
    cpu_seconds: int = 10
    # Address space on top of what the warm process already maps.
    memory_bytes: int = 1 << 30
    output_bytes: int = 16_384  # of the student's prints kept for feedback
    result_bytes: int = 8 << 20
    # Not per job: raw bytes read from one student's session in all, whatever the framing and
    # escaping (an honest student's replies are about 20 kB in all).
    student_reply_bytes: int = 16 << 20


class SandboxUnavailableError(RuntimeError):
    """bubblewrap cannot isolate code on this machine; grading refuses unless told otherwise."""


def _bwrap_command(python: str, control_fd: int) -> list[str]:
    """The bubblewrap command line around the worker.

    Run by an ordinary user, bubblewrap maps that user to ``nobody`` in a user namespace. Run by
    root, that mapping would still be root outside the namespace (and exempt from RLIMIT_NPROC),
    so bubblewrap uses root's own privileges to build the sandbox and ``setpriv`` then drops to
    the real unprivileged user ``nobody``, with no capabilities, before Python starts.
    """
    as_root = os.geteuid() == 0
    ro_binds = ["/usr", "/etc/alternatives", "/etc/ld.so.cache", "/etc/fonts"]
    ro_binds += sorted({sys.base_prefix, sys.prefix})
    ro_binds = [path for path in ro_binds if Path(path).exists()]
    if as_root:
        namespaces = ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
                      "--unshare-cgroup-try"]  # fmt: skip
    else:
        namespaces = [
            "--unshare-all",
            "--uid",
            str(SANDBOX_UID),
            "--gid",
            str(SANDBOX_UID),
        ]
    cmd = [
        "bwrap", *namespaces, "--die-with-parent", "--new-session",
        "--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", "/tmp", "--chdir", "/tmp",
        "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
        "--symlink", "usr/bin", "/bin", "--symlink", "usr/sbin", "/sbin",
        "--clearenv", "--setenv", "HOME", "/tmp", "--setenv", "MPLCONFIGDIR", "/tmp",
        "--setenv", "MPLBACKEND", "Agg", "--setenv", "PYTHONDONTWRITEBYTECODE", "1",
    ]  # fmt: skip
    # Parent folders that bubblewrap would create as 0700, which nobody could not traverse.
    parents = {str(p) for path in ro_binds for p in Path(path).parents if str(p) != "/"}
    for parent in sorted(parents, key=lambda p: p.count("/")):
        cmd += ["--perms", "0755", "--dir", parent]
    for path in ro_binds:
        cmd += ["--ro-bind", path, path]
    cmd += ["--perms", "0755", "--dir", "/grader"]
    for path in BOUND_FILES:
        cmd += ["--ro-bind", str(path), f"/grader/{path.name}"]
    if as_root:
        cmd += ["/usr/bin/setpriv", f"--reuid={SANDBOX_UID}", f"--regid={SANDBOX_UID}"]
        cmd += [
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--no-new-privs",
            "--",
        ]
    else:
        cmd += ["--cap-drop", "ALL"]
    return [*cmd, python, "-I", "/grader/harness.py", str(control_fd)]


def sandbox_problem() -> str | None:
    """Why this machine cannot sandbox, or None if it can."""
    if shutil.which("bwrap") is None:
        return "bubblewrap (bwrap) is not installed: run `make setup` or apt-get install bubblewrap"
    try:
        probe = subprocess.run(
            ["bwrap", "--unshare-all", "--die-with-parent", "--ro-bind", "/usr", "/usr",
             "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64", "/usr/bin/true"],
            capture_output=True, text=True, check=False, timeout=PROBE_SECONDS,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return f"bubblewrap did not run /usr/bin/true in a sandbox within {PROBE_SECONDS} s"
    if probe.returncode != 0:
        return f"bubblewrap cannot create a sandbox here: {probe.stderr.strip()}"
    return None


# The status of the jobs of a student whose replies reached ``Limits.student_reply_bytes``.
STUDENT_BYTES_SPENT = "sent more than the grader reads from one student"


def _crashed(why: str) -> dict:
    return {"status": why, "child": "", "output": "", "seconds": 0.0}


class MalformedBatchError(ValueError):
    """The student process's reply is not what the harness writes."""


def _checked_replies(line: bytes, count: int) -> list[dict]:
    """The student process's ``count`` replies, each of the harness's shape; else
    ``MalformedBatchError`` saying what is wrong."""
    try:
        batch = json.loads(line)
    except (ValueError, RecursionError):
        raise MalformedBatchError("sent a reply that is not JSON") from None
    replies = batch.get("replies") if isinstance(batch, dict) else None
    fields = {"status": str, "child": str, "output": str, "seconds": float | int}
    if not (
        isinstance(replies, list)
        and len(replies) == count
        and all(
            isinstance(reply, dict)
            and all(isinstance(reply.get(key), kind) for key, kind in fields.items())
            for reply in replies
        )
    ):
        raise MalformedBatchError("sent a reply of the wrong shape")
    return [{key: reply[key] for key in fields} for reply in replies]


class Sandbox:
    """One zygote; ``session()`` gives a student a process tree of their own forked from it."""

    def __init__(self, limits: Limits | None = None, *, unsafe: bool = False) -> None:
        self.limits = limits or Limits()
        self.unsafe = unsafe
        self._proc: subprocess.Popen[bytes] | None = None
        self._control: socket.socket | None = None
        self._sessions = itertools.count(1)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Start the zygote now, not at the first student (a worker joining a cluster)."""
        if self._proc is None or self._proc.poll() is not None:
            self.close()
            self._start()

    def _start(self) -> None:
        if not self.unsafe and (problem := sandbox_problem()):
            raise SandboxUnavailableError(problem)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        fd = theirs.fileno()
        cmd = (
            [sys.executable, "-I", str(HARNESS), str(fd)]
            if self.unsafe
            else _bwrap_command(os.path.normpath(sys.executable), fd)
        )
        self._proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, pass_fds=(fd,),
        )  # fmt: skip
        theirs.close()
        self._control = ours
        ours.settimeout(WORKER_START_SECONDS)
        try:
            ready = json.loads(ours.recv(4096) or b"{}").get("ready")
        except (OSError, ValueError):
            ready = False
        if ready:  # and a student process can confine itself here
            probe = {
                "function": "_",
                "setup": [],
                "cells": [],
                "cases": [],
                "stand_ins": [],
            }
            with self.session() as session:
                ready = session.run(probe)["status"] == "ok"
        if not ready:
            self.close()
            raise SandboxUnavailableError(
                "the sandboxed zygote did not start, or a student process could not confine "
                "itself (user namespaces, seccomp)"
            )

    def _send(self, request: dict, fds: tuple[int, ...] = ()) -> bool:
        """A request to the zygote; False if it is gone (the caller starts a new one)."""
        if self._control is None:
            return False
        try:
            socket.send_fds(self._control, [json.dumps(request).encode()], list(fds))
            return True
        except OSError:
            return False

    def open_student(self) -> tuple[int, socket.socket]:
        """Fork a student process from the zygote (starting one if needed); its id and socket."""
        for _ in range(2):
            self.start()
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            number = next(self._sessions)
            sent = self._send({"op": "student", "session": number}, (theirs.fileno(),))
            theirs.close()
            if sent:
                return number, ours
            ours.close()
            self.close()
        raise SandboxUnavailableError("the sandboxed zygote keeps failing")

    def kill_student(self, number: int) -> None:
        """SIGKILL that student's process; its PID namespace, and everything in it, dies too."""
        self._send({"op": "kill", "session": number})

    def session(self) -> Session:
        return Session(self)

    def run(self, job: dict) -> dict:
        """One job in a process of its own (tests, and the sandbox's probe)."""
        return self.run_all([job])[0]

    def run_all(self, jobs: list[dict]) -> list[dict]:
        """Jobs in a student process of their own (tests, one notebook)."""
        with self.session() as session:
            return session.run_all(jobs)

    def close(self) -> None:
        if self._control is not None:
            self._control.close()
            self._control = None
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None


class Session:
    """One student's process tree: jobs run one after another, each in a child of its own.

    A job that ends the student process (a deadline missed, a reply too long or malformed) gets
    a status, and the next job of the same student starts a fresh process. All its replies
    together are read up to ``Limits.student_reply_bytes`` raw bytes: past that, every job left
    gets ``STUDENT_BYTES_SPENT``, and no process of this student runs again.
    """

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.limits = sandbox.limits
        self._student: tuple[int, socket.socket] | None = None
        self.received = 0  # raw bytes read from this student's processes so far

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, job: dict) -> dict:
        """Run one job (see harness.py); never raises for anything the student's code does."""
        return self.run_all([job])[0]

    def run_all(self, jobs: list[dict]) -> list[dict]:
        """Run jobs in order, in one child while it lasts (harness.run_jobs); a reply per
        job, never an exception for anything the student's code does."""
        limits = self.sandbox.limits
        left = limits.student_reply_bytes - self.received
        if left <= 0:
            return self._lost(jobs, STUDENT_BYTES_SPENT)
        if self._student is None:
            self._student = self.sandbox.open_student()
        _, sock = self._student
        line = json.dumps({"jobs": jobs, "limits": asdict(limits)}).encode() + b"\n"
        wait = (
            len(jobs) * limits.wall_seconds * BUSY_MACHINE_FACTOR + REPLY_MARGIN_SECONDS
        )
        deadline = time.monotonic() + wait
        # JSON writes a character as at most 6 bytes (\uXXXX); the rest is a few fields.
        cap = len(jobs) * (6 * (limits.result_bytes + limits.output_bytes) + 65_536)
        reply = bytearray()
        try:
            sock.settimeout(wait)
            sock.sendall(line)
            while not reply.endswith(b"\n"):
                sock.settimeout(max(0.001, deadline - time.monotonic()))
                chunk = sock.recv(min(1 << 20, left + 1))
                if not chunk:
                    return self._lost(jobs, "crashed the grader's student process")
                reply += chunk
                self.received += len(chunk)
                left -= len(chunk)
                if left < 0:
                    return self._lost(jobs, STUDENT_BYTES_SPENT)
                if len(reply) > cap:
                    return self._lost(jobs, "sent a reply longer than the grader reads")
        except TimeoutError:
            return self._lost(jobs, "timeout")
        except OSError:
            return self._lost(jobs, "crashed the grader's student process")
        try:
            return _checked_replies(bytes(reply), len(jobs))
        except MalformedBatchError as error:
            return self._lost(jobs, str(error))

    def _lost(self, jobs: list[dict], why: str) -> list[dict]:
        """The student process is ended; every job of the batch gets ``why``."""
        self.close()
        return [_crashed(why) for _ in jobs]

    def close(self) -> None:
        """End the student's processes, whatever they are doing."""
        if self._student is not None:
            number, sock = self._student
            sock.close()
            self.sandbox.kill_student(number)
            self._student = None


def lent_or_own(
    sandbox: Sandbox | None, limits: Limits, *, unsafe: bool = False
) -> AbstractContextManager[Sandbox]:
    """For a ``with``: the caller's warm ``sandbox``, left running for its next batch, or a new
    one of ``limits``, closed at the end (each new one imports torch and d2l in a zygote)."""
    return Sandbox(limits, unsafe=unsafe) if sandbox is None else nullcontext(sandbox)


# This process's shared sandboxes, the last used first (``shared``). Two: nbgrader's autograde
# grades at the course's limits, and a process that also grades at others (a test worker) would
# otherwise start a zygote at every switch. A zygote holds hundreds of MB, so no more.
_kept: list[Sandbox] = []
_KEPT_AT_MOST = 2


def shared(limits: Limits, *, unsafe: bool = False) -> Sandbox:
    """This process's warm sandbox of ``limits``, kept for whatever grades next in the process:
    nbgrader's autograde grades notebook after notebook, and a process that grades batch after
    batch (a test worker) spares each a new zygote. The least recently used of more than
    ``_KEPT_AT_MOST`` is closed."""
    key = (limits, unsafe)
    sandbox = next((s for s in _kept if (s.limits, s.unsafe) == key), None)
    if sandbox is None:
        sandbox = Sandbox(limits, unsafe=unsafe)
    else:
        _kept.remove(sandbox)
    _kept.insert(0, sandbox)
    while len(_kept) > _KEPT_AT_MOST:
        _kept.pop().close()
    return sandbox


@atexit.register
def _close_shared() -> None:
    while _kept:
        _kept.pop().close()
