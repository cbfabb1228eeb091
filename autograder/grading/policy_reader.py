"""The policy reader's process: ``check_policy`` on hostile source, outside the grader's process.

Run by ``policy_reading`` as ``python -I -S policy_reader.py POLICY_PY MEMORY_CAP``, once per
grader process and again after each reading that ran out. It imports the standard library and
``kit/policy.py``, loaded from its file (the kit's ``__init__`` imports torch, which a reader of
source does not need). One request per line of JSON on stdin, one reply per line on stdout.

Each reading has budgets of its own, so that no notebook costs the grader more than they allow:
CPU seconds of this process (a profiling timer, which counts CPU time and so does not depend on
how busy the machine is), resident memory, and characters of resolved paths (each dotted path
the reader resolves costs its length: the work and memory a long attribute chain makes it do,
counted deterministically). Past any of them the reading stops and the reply says which; after
one that ran out of memory, or left this process holding much, it exits and the grader starts
another.
Behind these, RLIMIT_CPU and RLIMIT_AS end a process that a long C call kept from noticing.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import resource
import signal
import sys
import time

TICK_SECONDS = 0.005  # of CPU time between two looks at the budgets


class OutOfBudgetError(BaseException):
    """A budget ran out. Not an ``Exception``: ``check_policy`` turns those into verdicts."""


def load_policy(path: str):
    """``kit/policy.py`` as a module of its own, without the kit's package (and its torch)."""
    spec = importlib.util.spec_from_file_location("channels_policy", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


class Budget:
    """The budgets of the reading in progress (none between readings)."""

    def __init__(self) -> None:
        self.armed = False
        self.cpu_deadline = 0.0
        self.memory_bytes = 0
        self.path_chars = 0
        self.chars = 0

    def start(self, request: dict) -> None:
        self.cpu_deadline = time.process_time() + request["cpu_seconds"]
        self.memory_bytes = request["memory_bytes"]
        self.path_chars, self.chars = request["path_chars"], 0
        self.armed = True

    def tick(self, *_: object) -> None:
        """The profiling timer's handler: stop the reading once a budget is spent."""
        if not self.armed:
            return
        if time.process_time() > self.cpu_deadline:
            raise OutOfBudgetError("time")
        if resident_bytes() > self.memory_bytes:
            raise OutOfBudgetError("memory")

    def count(self, paths) -> None:
        self.chars += 1 + sum(map(len, paths))
        if self.armed and self.chars > self.path_chars:
            raise OutOfBudgetError("steps")


def resident_bytes() -> int:
    with open("/proc/self/statm", "rb") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_resident_bytes() -> int:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited from the
    grader's process, whose torch makes it hundreds of MB)."""
    with open("/proc/self/status", "rb") as f:
        for line in f:
            if line.startswith(b"VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def count_resolved_paths(policy, budget: Budget) -> bool:
    """Charge every path the reader resolves to ``budget``; False where the reader has no
    such step (its rules changed): the time and memory budgets still hold."""
    program = getattr(policy, "_Program", None)
    resolve = getattr(program, "_resolve", None)
    if resolve is None:
        return False

    def counted(self, node):
        paths = resolve(self, node)
        budget.count(paths)
        return paths

    program._resolve = counted
    return True


def read(policy, budget: Budget, request: dict) -> dict:
    """One reading: the verdict, or which budget ran out; and the CPU seconds it took."""
    start = time.process_time()
    used = resource.getrusage(resource.RUSAGE_SELF)
    spent = used.ru_utime + used.ru_stime
    # Behind the timer: a C call that runs on past it ends the process (SIGXCPU).
    cap = math.ceil(spent + request["cpu_seconds"]) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cap, resource.RLIM_INFINITY))
    try:
        try:
            budget.start(request)
            signal.setitimer(signal.ITIMER_PROF, TICK_SECONDS, TICK_SECONDS)
            verdict = policy.check_policy(
                request["sources"],
                frozenset(request["forbidden"]),
                function=request["function"],
                preamble=request["preamble"],
                refused_at_run_time=request.get("refused_at_run_time") is True,
            )
            budget.armed = False
            reply = {"kind": verdict.kind, "found": verdict.found}
        finally:
            budget.armed = False
            signal.setitimer(signal.ITIMER_PROF, 0, 0)
    except OutOfBudgetError as spent_out:
        reply = {"ran_out": str(spent_out)}
    except MemoryError:
        reply = {"ran_out": "memory"}
    # Peak memory past the budget between two ticks counts as well.
    peak = peak_resident_bytes()
    if peak > budget.memory_bytes:
        reply = {"ran_out": "memory"}
    reply["peak"] = peak
    reply["cpu"] = time.process_time() - start
    reply["counted"] = budget.chars
    # A process that holds much (a big reading's cache, or its fragments) is replaced, so that
    # every reading starts from about the same memory and its verdict does not depend on the
    # readings before it. Time and steps stop a reading at a bytecode boundary, in code that
    # keeps nothing of an unfinished reading (the cache stores finished ones): no restart.
    reply["exit"] = (
        reply.get("ran_out") == "memory" or resident_bytes() > budget.memory_bytes // 2
    )
    return reply


def main() -> None:
    policy_path, memory_cap = sys.argv[1], int(sys.argv[2])
    resource.setrlimit(resource.RLIMIT_AS, (memory_cap, memory_cap))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    policy = load_policy(policy_path)
    budget = Budget()
    counting = count_resolved_paths(policy, budget)
    signal.signal(signal.SIGPROF, budget.tick)
    out = sys.stdout
    out.write(json.dumps({"ready": True, "counting": counting}) + "\n")
    out.flush()
    cached = getattr(getattr(policy, "_program", None), "cache_clear", None)
    last = None
    for line in sys.stdin:
        request = json.loads(line)
        # The reader's cache serves the functions of one notebook, and holds no one else's.
        key = (request["sources"], request["preamble"])
        if key != last and cached is not None:
            cached()
        last = key
        reply = read(policy, budget, request)
        out.write(json.dumps(reply) + "\n")
        out.flush()
        if reply["exit"]:
            return  # a fresh process for the next reading


if __name__ == "__main__":
    main()
