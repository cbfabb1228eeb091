"""Reading and writing notebooks the same way everywhere, so that files diff cleanly."""

from __future__ import annotations

from pathlib import Path

import nbformat

NBFORMAT_MINOR = 5  # cell ids; every notebook of the course is written as nbformat 4.5
# The release's locked setup cells, the same for every student: the first installs what a bare
# Jupyter lacks, the other holds the check kit as a base64 zip. The website and the feedback
# pages leave them out.
PACKAGES_CELL, KIT_CELL = "setup_packages", "setup_kit"
SETUP_CELLS = (PACKAGES_CELL, KIT_CELL)


def nbgrader_meta(cell: object) -> dict:
    """A cell's nbgrader metadata, or {} where there is none or it is not an object: nbformat's
    schema lets a submission's metadata hold anything."""
    metadata = cell.get("metadata") if isinstance(cell, dict) else None
    meta = metadata.get("nbgrader") if isinstance(metadata, dict) else None
    return meta if isinstance(meta, dict) else {}


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def write(nb: nbformat.NotebookNode, path: Path) -> None:
    """Write with nbformat's stable layout (sorted keys, one-space indent, trailing newline)."""
    nb.nbformat, nb.nbformat_minor = 4, NBFORMAT_MINOR
    nbformat.validate(nb)
    nbformat.write(nb, path)
