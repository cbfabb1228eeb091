"""Run student code where it can do no harm, and get plain data back.

The only module that starts processes. A ``Sandbox`` owns one worker: ``harness.py`` running in
bubblewrap with no network, a read-only view of the Python installation and nothing else of this
machine (no solutions, gradebook, other submissions or home directories), as an unprivileged
user. The worker imports torch once and forks a limited child per job, so a job costs tens of
milliseconds instead of the seconds a fresh Python with torch would. Whatever a child does, the
reply is JSON data that the trusted side parses and checks; a worker that dies or hangs is
replaced, and the job that killed it gets a status, not an exception.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

HARNESS = Path(__file__).with_name("harness.py")
SANDBOX_UID = 65534  # "nobody" inside the sandbox
WORKER_START_SECONDS = 180


@dataclass(frozen=True)
class Limits:
    """Per-job limits, enforced inside the sandbox (rlimits) and by the worker (wall clock)."""

    wall_seconds: float = 10.0
    cpu_seconds: int = 10
    memory_bytes: int = (
        1 << 30
    )  # address space on top of what the warm worker already maps
    output_bytes: int = 16_384  # of the student's prints kept for feedback
    result_bytes: int = 8 << 20


class SandboxUnavailableError(RuntimeError):
    """bubblewrap cannot isolate code on this machine; grading refuses unless told otherwise."""


def _bwrap_command(python: str) -> list[str]:
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
    cmd += [
        "--perms",
        "0755",
        "--dir",
        "/grader",
        "--ro-bind",
        str(HARNESS),
        "/grader/harness.py",
    ]
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
    return [*cmd, python, "-I", "/grader/harness.py"]


def sandbox_problem() -> str | None:
    """Why this machine cannot sandbox, or None if it can."""
    if shutil.which("bwrap") is None:
        return "bubblewrap (bwrap) is not installed: run `make setup` or apt-get install bubblewrap"
    probe = subprocess.run(
        ["bwrap", "--unshare-all", "--ro-bind", "/usr", "/usr", "--symlink", "usr/lib", "/lib",
         "--symlink", "usr/lib64", "/lib64", "/usr/bin/true"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if probe.returncode != 0:
        return f"bubblewrap cannot create a sandbox here: {probe.stderr.strip()}"
    return None


class Sandbox:
    """One sandboxed worker; ``run(job)`` returns the worker's reply or a failure status."""

    def __init__(self, limits: Limits | None = None, *, unsafe: bool = False) -> None:
        self.limits = limits or Limits()
        self.unsafe = unsafe
        self._proc: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> None:
        if self.unsafe:
            cmd = [sys.executable, "-I", str(HARNESS)]
        else:
            problem = sandbox_problem()
            if problem:
                raise SandboxUnavailableError(problem)
            cmd = _bwrap_command(sys.executable)
        self._proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True, bufsize=1,
        )  # fmt: skip
        self._lines = queue.Queue()
        threading.Thread(
            target=self._pump, args=(self._proc, self._lines), daemon=True
        ).start()
        ready = self._next_line(WORKER_START_SECONDS)
        if ready is None or not json.loads(ready).get("ready"):
            self.close()
            raise SandboxUnavailableError(
                "the sandboxed worker did not start (is torch installed?)"
            )

    @staticmethod
    def _pump(proc: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    def _next_line(self, timeout: float) -> str | None:
        try:
            return self._lines.get(timeout=timeout)
        except queue.Empty:
            return None

    def run(self, job: dict) -> dict:
        """Run one job (see harness.py); never raises for anything the student's code does."""
        if self._proc is None or self._proc.poll() is not None:
            self._start()
        assert self._proc is not None and self._proc.stdin is not None
        job = {**job, "limits": asdict(self.limits)}
        try:
            self._proc.stdin.write(json.dumps(job) + "\n")
            self._proc.stdin.flush()
        except OSError:
            self.close()
            return {
                "status": "the grader's worker died before the job",
                "child": "",
                "output": "",
            }
        line = self._next_line(self.limits.wall_seconds + 30)
        if line is None:  # the child killed its worker, or the worker hung
            self.close()
            return {"status": "crashed the grader's worker", "child": "", "output": ""}
        return json.loads(line)

    def close(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            for stream in (self._proc.stdin, self._proc.stdout):
                if stream is not None:
                    stream.close()
            self._proc = None
