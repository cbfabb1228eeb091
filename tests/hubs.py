"""What the two files that start a real JupyterHub share: one hub per machine at a time, and
stopping everything it started.

The hub makes the roster's Unix accounts and their homes are the machine's, so two hubs at once
would share students: each hub fixture holds ``exclusive_hub()`` for its whole module.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

from conftest import stop_group

from course_hub.provision import layout

LOCK = Path("/run/lock/course-hub-test.lock")
# SIGTERM, then this long for the hub to stop its services and servers before SIGKILL. Quiet, it
# stops in about a second; at a load of 10 its service clean-up has run past 60 s, time the
# tests gain nothing from (the folder is deleted next).
STOP_SECONDS = 20


@contextlib.contextmanager
def exclusive_hub() -> Iterator[None]:
    """Hold the machine's hub lock (another test file's hub waits for this one to stop)."""
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def stop_hub(proc: subprocess.Popen, root: Path) -> None:
    """Stop the hub started with ``start_new_session`` in ``root``, and whatever it left."""
    stop_group(proc, seconds=STOP_SECONDS)
    kill_leftovers(root)


def kill_leftovers(root: Path) -> None:
    """SIGKILL what the hub in ``root`` started and left running, and nothing else: the
    processes whose command line names the root (the servers' and services' views do) and
    the proxy, which runs in its own session and names only ports (its pid file is in root)."""
    try:
        proxy = (layout(root)["hub"] / "proxy.pid").read_text().strip()
    except OSError:
        proxy = ""
    pids = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if str(root).encode() in cmdline or (
            entry.name == proxy and b"configurable-http-proxy" in cmdline
        ):  # a pid file can outlive its process and the number be reused
            pids.add(int(entry.name))
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
