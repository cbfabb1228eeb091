"""The course policy read under a budget, in a process of its own; one student's trusted work
counted.

``check_policy`` parses what the student wrote, and legal notebooks (import aliases, ``or``-unions
through long attribute chains, under every cap) once cost the grader 27 s and 850 MB each in its
own process. So the reading runs in one long-lived reader process per grader process
(``policy_reader.py``, a Python without torch, started once, not per student, so that an honest
reading costs a round trip of a few milliseconds): a reading that runs out of CPU time, memory
or steps stops there, the notebook gets ``needs-review`` with a message that says the grader's
reading budget ran out, and a reader that ran out of memory (or died, or missed the wall-clock
backstop) is replaced by a fresh one. What the student made the reader build never lives in the
grader's memory.

``StudentBudget`` counts one student's trusted work in CPU seconds (the reader's for reading, this
thread's for parsing replies and scoring), never in wall time, so that a grade does not depend on
how busy the machine is. Past it, that student's remaining items get ``grader-budget``; the
other students of the batch have budgets of their own.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from autograder.grading.submission import Problem
from autograder.kit.policy import (
    CLEAN,
    CLEAN_VERDICT,
    FORBIDDEN,
    NEEDS_REVIEW,
    PolicyVerdict,
)

READER = Path(__file__).with_name("policy_reader.py")
POLICY = Path(__file__).parent.parent / "kit" / "policy.py"
GRADER_BUDGET = "grader-budget"
# Of one reply line from the reader: a verdict is a few dozen characters.
MAX_REPLY_BYTES = 65_536
START_SECONDS = 30.0


@dataclass(frozen=True)
class ReadingLimits:
    """What reading one student's code may cost. The course's honest answers (up to 3.3 kB of
    code a notebook) read in at most 9 ms of CPU, 13 MB of memory and 430 path characters."""

    # CPU seconds of the reader for all of one student's readings together.
    cpu_seconds: float = 0.3
    # The reader's resident memory during one reading (it starts at about 12 MB).
    memory_bytes: int = 128 << 20
    # Characters of the dotted paths one reading resolves (deterministic: no clock involved).
    path_chars: int = 250_000
    # Backstops only: wall time per reading (a machine too busy to give the reader its CPU
    # seconds), and the reader's address space (an allocation the memory check missed).
    wall_seconds: float = 30.0
    address_space_bytes: int = 1 << 30


# The defaults; read when a student's budget is made, so that a test may change them.
READING = ReadingLimits()
# One student's trusted work (reading, reply parsing, scoring), in CPU seconds; an honest
# student's is about 0.1 s (README, Benchmarks).
STUDENT_CPU_SECONDS = 5.0


@dataclass
class StudentBudget:
    """One student's trusted work: what is spent so far, and the readings that ran out."""

    cpu_seconds: float = field(default_factory=lambda: STUDENT_CPU_SECONDS)
    reading: ReadingLimits = field(default_factory=lambda: READING)
    spent: float = 0.0
    reading_spent: float = 0.0
    # Verdicts of the readings that ran out, by (sources, preamble): a notebook's other
    # functions are not read again.
    ran_out: dict[tuple, PolicyVerdict] = field(default_factory=dict)

    @property
    def exhausted(self) -> bool:
        return self.spent >= self.cpu_seconds

    def problem(self, function: str) -> Problem:
        """Status ``grader-budget`` for an item the budget did not reach."""
        return Problem(
            GRADER_BUDGET,
            f"{function}: the grader spent all the time it gives one student "
            f"({self.cpu_seconds:g} CPU seconds of its own work) before this item; "
            "an instructor will look",
        )

    @contextlib.contextmanager
    def measured(self) -> Iterator[None]:
        """Charge the CPU time this thread spends in the block (waiting costs nothing)."""
        start = time.thread_time()
        try:
            yield
        finally:
            self.spent += time.thread_time() - start


def ran_out(what: str) -> PolicyVerdict:
    """The verdict of a reading stopped by its budget: an instructor looks."""
    return PolicyVerdict(
        NEEDS_REVIEW, f"code on which the grader's reading budget ran out ({what})"
    )


def read_policy(
    sources: Sequence[str],
    forbidden: frozenset[str],
    *,
    function: str,
    preamble: Sequence[str],
    budget: StudentBudget,
    refused_at_run_time: bool = False,
) -> PolicyVerdict | Problem:
    """``check_policy`` in the reader process, charged to ``budget``: its verdict, a
    ``needs-review`` verdict when the reading ran out, or the problem of a spent budget."""
    if not forbidden:
        return CLEAN_VERDICT
    if budget.exhausted:
        return budget.problem(function)
    key = (tuple(sources), tuple(preamble))
    if key in budget.ran_out:
        return budget.ran_out[key]
    limits = budget.reading
    cpu = min(
        limits.cpu_seconds - budget.reading_spent, budget.cpu_seconds - budget.spent
    )
    if cpu <= 0:
        budget.ran_out[key] = ran_out("time")
        return budget.ran_out[key]
    request = {
        "sources": list(sources),
        "preamble": list(preamble),
        "function": function,
        "forbidden": sorted(forbidden),
        "refused_at_run_time": refused_at_run_time,
        "cpu_seconds": cpu,
        "memory_bytes": limits.memory_bytes,
        "path_chars": limits.path_chars,
    }
    reply = READER_PROCESS.read(request, limits)
    charged = reply.get("cpu")
    # A reader that died or was ended is charged all it was given.
    charged = cpu if not isinstance(charged, float | int) else min(float(charged), cpu)
    budget.reading_spent += charged
    budget.spent += charged
    verdict = _verdict(reply)
    if "ran_out" in reply:
        budget.ran_out[key] = verdict
    return verdict


def _verdict(reply: dict) -> PolicyVerdict:
    if "ran_out" in reply:
        what = reply["ran_out"]
        return ran_out(what if what in {"time", "memory", "steps"} else "time")
    kind, found = reply.get("kind"), reply.get("found")
    if kind not in {CLEAN, FORBIDDEN, NEEDS_REVIEW} or not isinstance(found, str):
        return ran_out("time")
    return PolicyVerdict(kind, found)


class ReaderProcess:
    """One reader process for this grader process, started on first use and again after each
    one that ended (a reading that ran out, a crash); a forked grader starts its own."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._owner = 0
        self._limits: ReadingLimits | None = None
        self._lock = threading.Lock()
        self.counting = False  # whether the reader counts resolved paths
        self.started = 0  # readers started so far
        self.peak_bytes = 0  # the highest peak memory a reader reported

    def read(self, request: dict, limits: ReadingLimits) -> dict:
        """The reader's reply to ``request``; ``{"ran_out": ...}`` for a reader that died or
        missed the wall-clock backstop (it is ended, and the next request starts another)."""
        with self._lock:
            proc = self._process(limits)
            try:
                assert proc.stdin is not None
                proc.stdin.write(json.dumps(request).encode() + b"\n")
                proc.stdin.flush()
                reply = json.loads(self._line(proc, limits.wall_seconds))
            except (OSError, ValueError, TimeoutError) as error:
                # Past the wall clock, or ended by RLIMIT_CPU: time; else by RLIMIT_AS.
                late = isinstance(error, TimeoutError)
                late = late or proc.returncode in (None, -signal.SIGXCPU)
                self.close()
                return {"ran_out": "time" if late else "memory"}
            if not isinstance(reply, dict):
                self.close()
                return {"ran_out": "time"}
            if isinstance(reply.get("peak"), int):
                self.peak_bytes = max(self.peak_bytes, reply["peak"])
            if reply.get("exit", True):
                self.close()
            return reply

    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def _process(self, limits: ReadingLimits) -> subprocess.Popen[bytes]:
        """The reader, started anew unless it is this process's, alive, and was started for
        the same memory limits (its peak and its holdings were judged against those)."""
        if self._proc is not None and self._owner == os.getpid():
            if self._proc.poll() is None and self._limits == limits:
                return self._proc
            self.close()
        self._proc = (
            None  # a forked grader's: its parent's reader, not ours to use or end
        )
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", str(READER), str(POLICY),
             str(limits.address_space_bytes)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self._proc, self._owner, self._limits = proc, os.getpid(), limits
        self.started += 1
        try:
            ready = json.loads(self._line(proc, START_SECONDS))
        except (OSError, ValueError, TimeoutError) as error:
            self.close()
            raise RuntimeError(f"the policy reader did not start ({error})") from None
        self.counting = bool(ready.get("counting"))
        return proc

    @staticmethod
    def _line(proc: subprocess.Popen[bytes], seconds: float) -> bytes:
        """One line from the reader within ``seconds`` (TimeoutError), at most a cap long."""
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        deadline = time.monotonic() + seconds
        line = bytearray()
        while not line.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                raise TimeoutError("the reader took too long")
            chunk = os.read(fd, MAX_REPLY_BYTES)
            if not chunk:
                proc.wait()
                raise OSError("the reader ended")
            line += chunk
            if len(line) > MAX_REPLY_BYTES:
                raise ValueError("the reader's reply is too long")
        return bytes(line)

    def close(self) -> None:
        """End the reader, whatever it is doing."""
        if self._proc is not None and self._owner == os.getpid():
            self._proc.kill()
            self._proc.wait()
            for pipe in (self._proc.stdin, self._proc.stdout):
                if pipe is not None:
                    pipe.close()
        self._proc = None


# The grader process's reader (one per process: each Dask worker has its own), ended with the
# process: left to the interpreter's shutdown it outlived its grader for a moment, unwaited.
READER_PROCESS = ReaderProcess()
atexit.register(READER_PROCESS.close)
