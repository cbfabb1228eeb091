"""Stock nbgrader autograde (tests run in the student's kernel) vs our sandboxed grader,
and our grader on this machine's cores vs on a Dask cluster.

All grade the same N generated submissions (honest answers and common mistakes from the test
corpus) in one run; prints seconds per submission and the ratios. `make bench-grading` runs it
with N=200 (about 1.5 hours for the stock side on a 2-core machine); pass --n for a quicker look.

    --ours-only      skip stock nbgrader (N up to 1000 and more)
    --dask           also start a `dask scheduler` and --workers `dask worker` processes on
                     127.0.0.1, grade through them, and time the scheduler's own cost per task
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from distributed import Client

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from corpus import write_generated  # noqa: E402

from autograder.batch import grade_batch  # noqa: E402
from autograder.course_build.release import nbgrader_env  # noqa: E402
from autograder.grading.grader import Policy  # noqa: E402

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
    parser.add_argument(
        "--ours-only", action="store_true", help="do not run stock nbgrader"
    )
    parser.add_argument(
        "--dask",
        action="store_true",
        help="also grade on a local Dask cluster (scheduler and workers as processes)",
    )
    args = parser.parse_args()
    stock_n = 0 if args.ours_only else min(args.stock_n or args.n, args.n)
    with tempfile.TemporaryDirectory() as scratch:
        course = Path(scratch)
        shutil.copy(ROOT / "nbgrader_config.py", course)
        with open(course / "nbgrader_config.py", "a") as f:
            f.write(STOCK)
        shutil.copytree(ROOT / "solutions", course / "solutions")
        write_generated(course, args.n)
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
        if stock_n:
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
        if args.dask:
            with dask_cluster(course / "dask", args.workers) as address:
                per_task = scheduler_cost(address, args.n)
                start = time.perf_counter()
                grade_batch(
                    course / "all",
                    course / "on-dask",
                    dask=address,
                    policy=Policy(seed_salt=""),
                )
                on_dask = time.perf_counter() - start
            same = (course / "ours" / "grades.csv").read_bytes() == (
                course / "on-dask" / "grades.csv"
            ).read_bytes()
    print(f"{args.n} submissions, {os.cpu_count()} cores, {args.workers} workers")
    if stock_n:
        print(
            f"stock nbgrader autograde: {stock / stock_n:7.3f} s per submission "
            f"({stock:.0f} s for the first {stock_n})"
        )
    print(
        f"grade command, local:     {ours / args.n:7.3f} s per submission ({ours:.1f} s, "
        "worker and sandbox start-up included)"
    )
    if args.dask:
        print(
            f"grade command, on Dask:   {on_dask / args.n:7.3f} s per submission "
            f"({on_dask:.1f} s, sandbox start-up included, the workers already running); "
            f"grades.csv {'identical' if same else 'DIFFERENT'}"
        )
        print(
            f"Dask scheduler's own cost: {1000 * per_task:.1f} ms per task (empty tasks)"
        )
    if stock_n:
        print(
            f"ratio: ours is {(stock / stock_n) / (ours / args.n):.1f}x faster per "
            "submission"
        )


@contextmanager
def dask_cluster(folder: Path, workers: int) -> Iterator[str]:
    """A scheduler and ``workers`` single-threaded workers as processes, as on a cluster."""
    folder.mkdir()
    dask = str(Path(sys.executable).with_name("dask"))
    scheduler_file = folder / "scheduler.json"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "cwd": ROOT}
    procs = [
        subprocess.Popen(
            [dask, "scheduler", "--host", "127.0.0.1", "--port", "0",
             "--dashboard-address", ":0", "--scheduler-file", str(scheduler_file)],
            **quiet,
        )
    ]  # fmt: skip
    try:
        while not scheduler_file.exists():
            time.sleep(0.1)
        time.sleep(0.5)  # the file is written in one go, but give it a moment
        address = json.loads(scheduler_file.read_text())["address"]
        for i in range(workers):
            procs.append(
                subprocess.Popen(
                    [dask, "worker", address, "--nthreads", "1", "--memory-limit", "0",
                     "--dashboard-address", ":0", "--local-directory", str(folder / str(i))],
                    **quiet,
                )
            )  # fmt: skip
        with Client(address) as client:
            client.wait_for_workers(workers, timeout=300)
        yield address
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait()


def scheduler_cost(address: str, n: int) -> float:
    """Seconds per task that the scheduler and the network add: ``n`` empty tasks, timed."""
    with Client(address) as client:
        client.gather(client.map(int, range(100), pure=False))  # warm
        start = time.perf_counter()
        client.gather(client.map(int, range(n), pure=False))
        return (time.perf_counter() - start) / n


if __name__ == "__main__":
    main()
