"""nbval plugin: compare a stored SVG figure only with one drawn by the same matplotlib.

The notebooks store their figures as SVG (real text, for screen readers and search), and CI
re-draws them with the pinned matplotlib, where the bytes must match: a figure that changes is a
finding. Another matplotlib (the GPU machine's 3.11 against the course's 3.7.2) lays out the same
figure with other font metrics and other element ids, so byte equality says nothing there; such
a cell's SVG is skipped, as nbval always skips PNG, and its ``text/plain`` (``<Figure size ...>``)
is still compared. The stored SVG names the matplotlib that drew it in its metadata.

Loaded with ``-p tests.nbval_figures`` (the Makefile and ``benchmarks/gpu_run.sh``).
"""

from __future__ import annotations

import re

import matplotlib
import pytest

SVG = "image/svg+xml"
DRAWN_BY = re.compile(r"<dc:title>Matplotlib v([^,<]+),")


def stored_svg_versions(cell: dict) -> set[str]:
    """The matplotlib versions named by a cell's stored SVG outputs."""
    return {
        match.group(1)
        for output in cell.get("outputs", [])
        if isinstance(svg := output.get("data", {}).get(SVG), str)
        and (match := DRAWN_BY.search(svg))
    }


def pytest_report_header() -> str:
    return (
        f"nbval_figures: matplotlib {matplotlib.__version__}; a stored SVG figure drawn by "
        "another version is not compared byte for byte (its text/plain still is)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        cell = getattr(item, "cell", None)
        skip = getattr(item.parent, "skip_compare", None)
        if cell is None or skip is None:
            continue
        if stored_svg_versions(cell) - {matplotlib.__version__}:
            compare = item.compare_outputs
            item.compare_outputs = (  # type: ignore[attr-defined]
                lambda test, ref, skip_compare=None, compare=compare, skip=skip: (
                    compare(test, ref, skip_compare or (*skip, SVG))
                )
            )
