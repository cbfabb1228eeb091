"""The grade command of an earlier commit against this checkout's, on the same submissions.

For a change to the grader's process structure: both grade the same N generated submissions
(honest styles and common mistakes of the test corpus) with the same number of workers, one
after the other, on the public seeds; prints seconds per submission for each and whether their
grades.csv files are identical. The earlier commit is checked out into a scratch git worktree.

    .venv/bin/python benchmarks/grading_vs_commit.py 37280ce --n 1000
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from corpus import write_generated  # noqa: E402

# Run in a fresh interpreter whose autograder package is the given tree's: the layout of issue 22
# (autograder/batch.py, autograder/grading/), or an earlier commit's flat package.
GRADE = """
import sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
try:
    from autograder.batch import grade_batch
    from autograder.grading.grader import Policy
except ImportError:
    from autograder.grader import Policy, grade_batch
start = time.perf_counter()
grade_batch(Path(sys.argv[2]), Path(sys.argv[3]), workers=int(sys.argv[4]),
            policy=Policy(seed_salt=""))
print(time.perf_counter() - start)
"""


def grade(tree: Path, submitted: Path, out: Path, workers: int) -> float:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            GRADE,
            str(tree),
            str(submitted),
            str(out),
            str(workers),
        ],
        cwd=tree,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(done.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("commit", help="the earlier commit (any git revision)")
    parser.add_argument("--n", type=int, default=1000, help="number of submissions")
    parser.add_argument("--workers", type=int, default=2, help="sandboxes in parallel")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        before = scratch / "before"
        git = ["git", "-C", str(ROOT)]
        subprocess.run([*git, "worktree", "add", "--detach", str(before), args.commit],
                       check=True, capture_output=True)  # fmt: skip
        try:
            write_generated(scratch, args.n)
            seconds = {
                label: grade(
                    tree,
                    scratch / "submitted",
                    scratch / f"graded-{label}",
                    args.workers,
                )
                for label, tree in (("before", before), ("after", ROOT))
            }
        finally:
            subprocess.run(
                [*git, "worktree", "remove", "--force", str(before)], check=True
            )
        same = (scratch / "graded-before" / "grades.csv").read_bytes() == (
            scratch / "graded-after" / "grades.csv"
        ).read_bytes()
    print(
        f"{args.n} six-notebook submissions, {args.workers} workers, {os.cpu_count()} cores"
    )
    for label, total in seconds.items():
        print(f"{label + ':':7} {total / args.n:.3f} s per submission ({total:.1f} s)")
    print(f"identical grades.csv: {same}")


if __name__ == "__main__":
    main()
