"""Stock nbgrader autograde (tests run in the student's kernel) vs our sandboxed grader.

Both grade the same N generated submissions (honest answers and common mistakes from the test
corpus) in one run; prints seconds per submission and the ratio. `make bench-grading` runs it
with N=200 (about 1.5 hours for the stock side on a 2-core machine); pass --n for a quicker look.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from itertools import cycle, islice
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from conftest import write_submission  # noqa: E402
from corpus import CORPUS, typed  # noqa: E402

from autograder.grader import Policy, grade_batch  # noqa: E402
from autograder.release import nbgrader_env  # noqa: E402

STOCK = """
# Benchmark: nbgrader's own autograde pipeline (runs the notebooks in a kernel).
c.Autograde.autograde_preprocessors = [
    "nbgrader.preprocessors.Execute", "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor", "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades", "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=200, help="number of submissions")
    parser.add_argument(
        "--workers", type=int, default=2, help="sandboxes for our grader"
    )
    parser.add_argument(
        "--stock-n",
        type=int,
        default=None,
        help="grade only the first K submissions with stock nbgrader (about 55 s each), "
        "all N with ours; the ratio compares seconds per submission (default: K = N)",
    )
    args = parser.parse_args()
    stock_n = min(args.stock_n or args.n, args.n)
    styles = [
        entry
        for name, entry in CORPUS.items()
        if name.startswith(("honest", "mistake"))
    ]
    with tempfile.TemporaryDirectory() as scratch:
        course = Path(scratch)
        shutil.copy(ROOT / "nbgrader_config.py", course)
        with open(course / "nbgrader_config.py", "a") as f:
            f.write(STOCK)
        shutil.copytree(ROOT / "solutions", course / "solutions")
        for i, entry in enumerate(islice(cycle(styles), args.n)):
            write_submission(course, f"student{i:04d}", typed(entry))
        # Stock grades the first K of the same submissions, in a folder of its own.
        shutil.copytree(course / "submitted", course / "all")
        for extra in sorted((course / "submitted").iterdir())[stock_n:]:
            shutil.rmtree(extra)
        env = nbgrader_env()
        nbgrader = [sys.executable, "-m", "nbgrader"]
        quiet = {"cwd": course, "env": env, "check": True, "capture_output": True}
        subprocess.run(
            [*nbgrader, "generate_assignment", "channels", "--force"], **quiet
        )
        start = time.perf_counter()
        subprocess.run([*nbgrader, "autograde", "channels"], **quiet)
        stock = time.perf_counter() - start
        start = time.perf_counter()
        # The public seeds, on which the stock side's hidden tests (autograder.check) run too.
        grade_batch(
            course / "all",
            course / "ours",
            workers=args.workers,
            policy=Policy(seed_salt=""),
        )
        ours = time.perf_counter() - start
    print(f"{args.n} submissions, {os.cpu_count()} cores")
    print(
        f"stock nbgrader autograde: {stock / stock_n:7.2f} s per submission "
        f"({stock:.0f} s for the first {stock_n})"
    )
    print(
        f"sandboxed grade command:  {ours / args.n:7.2f} s per submission ({ours:.1f} s, "
        f"{args.workers} workers, sandbox start-up included)"
    )
    print(
        f"ratio: ours is {(stock / stock_n) / (ours / args.n):.1f}x faster per submission"
    )


if __name__ == "__main__":
    main()
