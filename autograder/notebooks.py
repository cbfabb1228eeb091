"""Reading, executing and writing notebooks the same way everywhere, so that files diff cleanly."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

NBFORMAT_MINOR = 5  # cell ids; every notebook of the course is written as nbformat 4.5


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def write(nb: nbformat.NotebookNode, path: Path) -> None:
    """Write with nbformat's stable layout (sorted keys, one-space indent, trailing newline)."""
    nb.nbformat, nb.nbformat_minor = 4, NBFORMAT_MINOR
    nbformat.validate(nb)
    nbformat.write(nb, path)


def execute_in_place(path: Path, timeout: int = 600) -> None:
    """Re-run a notebook top to bottom in its own folder and store its outputs (no timing metadata).

    Used to refresh the stored outputs of ``solutions/`` after an edit; nbval then checks that a
    fresh run reproduces them.
    """
    nb = read(path)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        record_timing=False,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    write(nb, path)
