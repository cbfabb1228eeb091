"""What one student costs the grader's own (trusted) side: honest students vs the worst notebooks
that the caps allow (issue 23).

    .venv/bin/python benchmarks/pathological.py --n 10 [--before]

Grades N honest students (the instructor's answers) and N attackers (the same answers, plus
``tests/corpus.py``'s pathological cells in every notebook with a policy: aliases, ``or``-unions
and long attribute chains, about 160 kB a notebook) with one sandbox, each kind in a fresh
Python, after one honest student to warm the caches. Prints, per student, the trusted CPU time
(the grader's process, and the policy reader's processes) and the peak memory (the grader's
process, and the highest a reader reported), and the attacker's over the honest student's.
``--before`` also reads one pathological notebook in this process, as the grader did before the
reading had a budget (tens of seconds).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from corpus import (  # noqa: E402
    MULTI_IN,
    pathological_cells,
    solved,
    write_pathological,
    write_submission,
)

KINDS = ("honest", "pathological")


def vm_hwm() -> int:
    """This process's peak resident memory, in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def measure(course: Path, kind: str) -> dict:
    """Grade ``kind``'s students here; the trusted cost per student (run in a fresh Python)."""
    from autograder.grading.grader import Policy, grade_submission, read_submission
    from autograder.grading.policy_reading import READER_PROCESS
    from autograder.sandbox import runner
    from autograder.sandbox.runner import Sandbox, sandbox_problem

    received: list[int] = []  # raw bytes read from each student's processes
    close = runner.Session.close

    def counted(session: runner.Session) -> None:
        received.append(session.received)
        close(session)

    runner.Session.close = counted  # type: ignore[method-assign]

    submitted = course / "submitted"
    students = sorted(submitted.glob(f"{kind}-*"))
    with Sandbox(unsafe=sandbox_problem() is not None) as sandbox:
        sandbox.start()
        grade_submission(read_submission(submitted / "warm-up" / "channels"), sandbox)
        READER_PROCESS.close()  # reaped: its CPU is in RUSAGE_CHILDREN before the start
        READER_PROCESS.peak_bytes = 0
        received.clear()
        hwm_before = vm_hwm()
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu, wall = time.process_time(), time.monotonic()
        statuses: Counter[str] = Counter()
        for student in students:
            result = grade_submission(
                read_submission(student / "channels"), sandbox, Policy()
            )
            statuses.update(
                item["status"] for nb in result["notebooks"] for item in nb["items"]
            )
        cpu, wall = time.process_time() - cpu, time.monotonic() - wall
        READER_PROCESS.close()  # reaped, so its CPU time is counted below
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        reader_cpu = (after.ru_utime + after.ru_stime) - (
            children.ru_utime + children.ru_stime
        )
    n = len(students)
    return {
        "kind": kind,
        "students": n,
        "grader_cpu": cpu / n,
        "reader_cpu": reader_cpu / n,
        "trusted_cpu": (cpu + reader_cpu) / n,
        "wall": wall / n,
        "grader_peak": vm_hwm(),
        "grader_growth": vm_hwm() - hwm_before,
        "reader_peak": READER_PROCESS.peak_bytes,
        "readers_started": READER_PROCESS.started,
        "statuses": dict(statuses),
        "reply_bytes": max(received, default=0),
    }


def before() -> tuple[float, int]:
    """One pathological notebook read in this process with no budget: CPU seconds, peak RSS."""
    from autograder import EXERCISES
    from autograder.kit.policy import check_policy

    sources = [*pathological_cells(), solved()[MULTI_IN]]
    start = time.process_time()
    check_policy(sources, EXERCISES[MULTI_IN].forbidden, function=MULTI_IN)
    return time.process_time() - start, vm_hwm()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=10, help="students of each kind")
    parser.add_argument("--before", action="store_true", help="also read in-process")
    parser.add_argument("--measure", choices=KINDS, help=argparse.SUPPRESS)
    parser.add_argument("--course", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.course, args.measure)))
        return
    if args.in_process:
        print(json.dumps(before()))
        return
    with tempfile.TemporaryDirectory() as scratch:
        course = Path(scratch)
        write_submission(course, "warm-up", solved())
        for i in range(args.n):
            write_submission(course, f"honest-{i:03d}", solved())
            write_pathological(course, f"pathological-{i:03d}")
        sizes = [
            p.stat().st_size
            for p in (course / "submitted" / "pathological-000" / "channels").iterdir()
        ]
        print(
            f"{args.n} students of each kind; an attacker's notebooks are "
            f"{min(sizes) / 1e3:.0f}-{max(sizes) / 1e3:.0f} kB"
        )
        rows = {}
        for kind in KINDS:
            out = subprocess.run(
                [sys.executable, __file__, "--measure", kind, "--course", str(course)],
                capture_output=True,
                text=True,
                check=True,
            )
            rows[kind] = json.loads(out.stdout.splitlines()[-1])
    mb = 1 << 20
    for kind, row in rows.items():
        print(
            f"{kind:>13}: trusted CPU {row['trusted_cpu'] * 1e3:6.1f} ms per student "
            f"(grader {row['grader_cpu'] * 1e3:.1f} ms, reader {row['reader_cpu'] * 1e3:.1f}"
            f" ms), wall {row['wall'] * 1e3:.0f} ms; peak memory: grader "
            f"{row['grader_peak'] / mb:.0f} MB (+{row['grader_growth'] / mb:.1f} MB while "
            f"grading), reader {row['reader_peak'] / mb:.1f} MB; readers started "
            f"{row['readers_started']}; replies read {row['reply_bytes'] / 1e6:.2f} MB at "
            f"most; statuses {row['statuses']}"
        )
    honest, worst = rows["honest"], rows["pathological"]
    memory = [r["grader_peak"] + r["reader_peak"] for r in (honest, worst)]
    print(
        f"attacker / honest: trusted CPU {worst['trusted_cpu'] / honest['trusted_cpu']:.2f}"
        f"x, peak memory (grader + reader) {memory[1] / memory[0]:.2f}x"
    )
    if args.before:
        out = subprocess.run(
            [sys.executable, __file__, "--in-process"],
            capture_output=True,
            text=True,
            check=True,
        )
        seconds, peak = json.loads(out.stdout.splitlines()[-1])
        print(
            f"before (one pathological notebook read in the grader's process, no budget): "
            f"{seconds:.1f} s CPU, peak memory {peak / mb:.0f} MB"
        )


if __name__ == "__main__":
    main()
