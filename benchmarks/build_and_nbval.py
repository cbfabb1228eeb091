"""Time what a maintainer waits for: a cold and a warm `make build`, and the nbval run.

Run with `make bench`. Prints seconds and ratios measured in this one run, and the machine.
Not a test: timings depend on the machine; the README records what was measured where.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NBVAL = [
    sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2", "--dist", "loadfile",
    "--nbval", "--nbval-current-env", "--nbval-sanitize-with", "tests/nbval_sanitize.cfg",
    "solutions", "chapters",
]  # fmt: skip


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(
        cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return time.perf_counter() - start


def main() -> None:
    import torch

    device = (
        torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device"
    )
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; {device}"
    )
    shutil.rmtree(ROOT / "_build", ignore_errors=True)
    cold = timed(["make", "--no-print-directory", "build"])
    warm = timed(["make", "--no-print-directory", "build"])
    site_warm = timed(["make", "--no-print-directory", "site"])
    nbval = timed(NBVAL)
    print(f"cold `make build` (install done, _build removed): {cold:6.1f} s")
    print(
        f"warm `make build` (nothing changed):               {warm:6.1f} s  "
        f"({cold / warm:.1f}x faster)"
    )
    print(f"  of which the site build alone:                   {site_warm:6.1f} s")
    count = len(list(ROOT.glob("solutions/channels/*.ipynb"))) + len(
        list(ROOT.glob("chapters/channels/*.ipynb"))
    )
    print(f"nbval, {count} notebooks on 2 workers:                  {nbval:6.1f} s")


if __name__ == "__main__":
    main()
