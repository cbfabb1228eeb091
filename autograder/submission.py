"""Reading a student's notebook: find each graded answer, and say plainly what cannot be graded.

Nothing here runs student code. A broken file, a deleted or duplicated answer cell, or an edited
test cell becomes a ``Problem`` for that student, never an exception that stops a batch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbgrader.utils import compute_checksum

MAX_NOTEBOOK_BYTES = (
    5_000_000  # a course notebook is ~20 kB; anything far larger is not one
)


@dataclass(frozen=True)
class Problem:
    """Why (part of) a submission cannot be graded, worded for the student and the instructor."""

    status: str  # short machine-readable code: not-a-notebook, missing-cell, duplicated-cell, ...
    message: str


@dataclass(frozen=True)
class Answer:
    """The source of one graded answer cell, as the student left it."""

    grade_id: str
    source: str


def read_notebook(path: Path) -> nbformat.NotebookNode | Problem:
    """Parse a submitted file as an nbformat-4 notebook, or return the Problem with it."""
    try:
        size = path.stat().st_size
    except OSError as error:
        return Problem(
            "missing-notebook", f"{path.name} was not submitted ({error.strerror})"
        )
    if size == 0:
        return Problem("not-a-notebook", f"{path.name} is empty")
    if size > MAX_NOTEBOOK_BYTES:
        return Problem(
            "not-a-notebook", f"{path.name} is {size:,d} bytes; clear its outputs"
        )
    try:
        text = path.read_bytes().decode("utf-8")
        raw = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        return Problem(
            "not-a-notebook", f"{path.name} is not valid notebook JSON ({error})"
        )
    if not isinstance(raw, dict) or raw.get("nbformat") != 4:
        version = raw.get("nbformat") if isinstance(raw, dict) else None
        return Problem(
            "wrong-format",
            f"{path.name} is not an nbformat 4 notebook (nbformat={version!r}); "
            "download it again from the course site and copy your answers over",
        )
    try:
        nb = nbformat.reads(text, as_version=4)  # joins each cell's source lines
        nbformat.validate(nb)
    except (nbformat.ValidationError, KeyError, TypeError, AttributeError) as error:
        return Problem("wrong-format", f"{path.name} is not a valid notebook ({error})")
    return nb


def _cells_with_id(
    nb: nbformat.NotebookNode, grade_id: str
) -> list[nbformat.NotebookNode]:
    return [
        cell
        for cell in nb.cells
        if isinstance(cell.get("metadata", {}).get("nbgrader"), dict)
        and cell.metadata.nbgrader.get("grade_id") == grade_id
    ]


def find_answer(nb: nbformat.NotebookNode, grade_id: str) -> Answer | Problem:
    """The answer cell with this grade_id; exactly one must exist and be a code cell."""
    cells = _cells_with_id(nb, grade_id)
    if not cells:
        return Problem(
            "missing-cell",
            f"the answer cell {grade_id!r} was deleted; restore it from the course site",
        )
    if len(cells) > 1:
        return Problem(
            "duplicated-cell",
            f"the answer cell {grade_id!r} appears {len(cells)} times; keep only one",
        )
    if cells[0].cell_type != "code":
        return Problem(
            "changed-cell", f"the answer cell {grade_id!r} is no longer a code cell"
        )
    return Answer(grade_id, cells[0].source)


def edited_locked_cells(
    nb: nbformat.NotebookNode, release: nbformat.NotebookNode
) -> list[Problem]:
    """Locked and test cells of the release that the submission deleted, duplicated or changed.

    Uses nbgrader's own checksum, which covers source, type, points and grade_id.
    """
    problems = []
    for cell in release.cells:
        meta = cell.metadata.get("nbgrader", {})
        if not (meta.get("locked") or meta.get("grade")) or meta.get("solution"):
            continue
        grade_id = meta["grade_id"]
        found = _cells_with_id(nb, grade_id)
        if len(found) != 1:
            what = "was deleted" if not found else f"appears {len(found)} times"
            problems.append(
                Problem("edited-locked-cell", f"locked cell {grade_id!r} {what}")
            )
        elif _safe_checksum(found[0]) != meta.get("checksum"):
            problems.append(
                Problem("edited-locked-cell", f"locked cell {grade_id!r} was edited")
            )
    return problems


def written_answer(
    nb: nbformat.NotebookNode, release_cell: nbformat.NotebookNode
) -> Problem | None:
    """A manually graded answer cell: None if the student wrote something a grader should read.

    As nbgrader's own autograde: an answer left as released ("YOUR ANSWER HERE", same checksum)
    scores zero without a human; a deleted or duplicated cell is a problem to report.
    """
    grade_id = release_cell.metadata.nbgrader["grade_id"]
    found = _cells_with_id(nb, grade_id)
    if len(found) != 1:
        what = "was deleted" if not found else f"appears {len(found)} times"
        status = "missing-cell" if not found else "duplicated-cell"
        return Problem(status, f"the answer cell {grade_id!r} {what}")
    if _safe_checksum(found[0]) == release_cell.metadata.nbgrader.get("checksum"):
        return Problem(
            "no-answer", f"the answer cell {grade_id!r} was left as released"
        )
    return None


def _safe_checksum(cell: nbformat.NotebookNode) -> str | None:
    try:
        return compute_checksum(cell)
    except (KeyError, TypeError, ValueError):
        return None
