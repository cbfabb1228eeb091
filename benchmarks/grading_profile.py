"""Where one batch's time goes: grade N generated submissions on one worker, in this process,
under cProfile, and print each stage's share of the whole.

    .venv/bin/python benchmarks/grading_profile.py --n 100

Stages (cumulative time of the functions named): the sandbox's start (the zygote imports torch
and d2l), the sandbox's round trips (fork of the student process and of one child per notebook,
confinement, the student's own code, exit), reading and parsing the notebooks, the policy
(reading the student's source), the oracle (reference results and error bounds, once per case
for the whole batch), the rest of scoring, and writing results, grades.csv, feedback and the
gradebook. cProfile slows the Python side a little; the shares are what to read.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from corpus import write_generated  # noqa: E402

from autograder.batch import grade_batch  # noqa: E402
from autograder.grading.grader import Policy  # noqa: E402

# (stage, [(module file, function)], [stages whose time is inside it and counted there]).
STAGES = [
    ("sandbox start (zygote imports torch, d2l)", [("runner.py", "_start")], []),
    ("sandbox round trips (forks, confinement, student code, exit)",
     [("runner.py", "run_all")], ["sandbox start (zygote imports torch, d2l)"]),
    ("reading and parsing notebooks",
     [("submission.py", "read_submitted"), ("submission.py", "parse_notebook")], []),
    ("policy (the student's source, in the reader process)",
     [("policy_reading.py", "read_policy")], []),
    ("oracle (answers, known wrong ones and bound, once per case)",
     [("judging.py", "_expected"), ("judging.py", "_bound"), ("judging.py", "_wrong")], []),
    ("scoring", [("judging.py", "score_exercise")],
     ["oracle (answers, known wrong ones and bound, once per case)"]),
    ("writing results, grades.csv, feedback",
     [("report.py", "save_result"), ("report.py", "write_grades_csv"),
      ("report.py", "write_feedback")], []),
    ("writing the gradebook (nbgrader's API)", [("gradebook.py", "write_gradebook")], []),
]  # fmt: skip


def cumulative(stats: pstats.Stats, functions: list[tuple[str, str]]) -> float:
    """Cumulative seconds of the named functions (outermost calls only: cProfile's own)."""
    total = 0.0
    for (path, _, name), (_, _, _, cum, _) in stats.stats.items():  # type: ignore[attr-defined]
        if (Path(path).name, name) in functions:
            total += cum
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100, help="number of submissions")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        course = Path(scratch)
        write_generated(course, args.n)
        profile = cProfile.Profile()
        start = time.perf_counter()
        profile.enable()
        grade_batch(course / "submitted", course / "out", policy=Policy(seed_salt=""))
        profile.disable()
        wall = time.perf_counter() - start
    stats = pstats.Stats(profile)
    seconds = {name: cumulative(stats, fns) for name, fns, _ in STAGES}
    for name, _, inside in STAGES:
        seconds[name] -= sum(seconds[other] for other in inside)
    print(
        f"{args.n} submissions on one worker: {wall:.1f} s ({wall / args.n:.3f} s each)"
    )
    for name, _, _ in STAGES:
        print(
            f"  {name:<62} {seconds[name]:7.2f} s  {100 * seconds[name] / wall:5.1f} %"
        )
    rest = wall - sum(seconds.values())
    print(f"  {'everything else':<62} {rest:7.2f} s  {100 * rest / wall:5.1f} %")


if __name__ == "__main__":
    main()
