"""One line per notebook from nbval's JUnit XML: passed or not, cells, seconds, first failure.

Used by benchmarks/gpu_run.sh, whose summary must fit on a screen: nbval reports one test per
cell, and a reader of a GPU run wants to know which notebooks, not which of 300 cells, failed.
Standard library only, since it runs on the GPU machine before anything else is known to work.
"""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict

# Terminal colours in nbval's report; JUnit XML cannot hold ESC and writes it as "#x1B".
ANSI = re.compile(r"(?:\x1b|#x1B)\[[0-9;]*m")


def notebook_of(classname: str) -> str:
    """'solutions.channels.01-x.ipynb' -> 'solutions/channels/01-x.ipynb'."""
    parts = classname.removesuffix(".ipynb").split(".")
    return "/".join(parts) + ".ipynb"


def reason(problem: ET.Element) -> str:
    """What went wrong: nbval's line after "Traceback:" ("mismatch 'text/plain'"), else the last."""
    text = ANSI.sub("", problem.text or problem.get("message", ""))
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    after = [lines[i + 1] for i, ln in enumerate(lines[:-1]) if ln == "Traceback:"]
    return (after or lines[-1:] or ["no details"])[0][:160]


def summary_lines(junit_xml: str) -> list[str]:
    cells: dict[str, list[ET.Element]] = defaultdict(list)
    for case in ET.parse(junit_xml).getroot().iter("testcase"):
        cells[notebook_of(case.get("classname", "?"))].append(case)
    lines = []
    for notebook, cases in sorted(cells.items()):
        failed = [
            c
            for c in cases
            if c.find("failure") is not None or c.find("error") is not None
        ]
        skipped = sum(c.find("skipped") is not None for c in cases)
        seconds = sum(float(c.get("time", 0)) for c in cases)
        line = (
            f"{'FAIL' if failed else 'PASS'} {notebook}: {len(cases) - skipped} cells"
            f"{f' ({skipped} skipped)' if skipped else ''}, {seconds:.1f} s"
        )
        if failed:
            first = failed[0]
            problem = first.find("failure")
            if problem is None:
                problem = first.find("error")
            line += (
                f"; {len(failed)} failed, first {first.get('name')}: {reason(problem)}"
            )
        lines.append(line)
    return lines or ["FAIL nbval ran no notebook"]


if __name__ == "__main__":
    try:
        print("\n".join(summary_lines(sys.argv[1])))
    except (OSError, ET.ParseError) as error:
        print(f"FAIL nbval wrote no readable report: {error}")
