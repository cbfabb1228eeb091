"""Reading a student's notebook: find each graded answer, and say plainly what cannot be graded.

Nothing here runs student code, but every byte of a submission is the student's: a file is read
only if it is a regular file reached without a link, within caps on size, JSON nesting, cells and
source, and every field the grader reads is type-checked. A broken or hostile file, a deleted or
duplicated answer cell, or an edited test cell becomes a ``Problem`` for that student, never an
exception that stops a batch.
"""

from __future__ import annotations

import collections
import functools
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import nbformat
from nbformat.v4.rwbase import rejoin_lines, strip_transient
from nbgrader.nbgraderformat import MetadataValidator
from nbgrader.utils import compute_checksum

from autograder import notebooks
from autograder.notebooks import nbgrader_meta
from autograder.paths import RELEASE_DIR
from autograder.untrusted import json_depth

# A course notebook is ~20 kB; anything far larger is not one.
MAX_NOTEBOOK_BYTES = 5_000_000
# The release nests JSON 6 deep: the cap keeps the parsers far from deep recursion.
MAX_DEPTH = 64
# The release has at most 59 cells of at most 3,700 characters each.
MAX_CELLS = 2_000
MAX_SOURCE_CHARS = 100_000
# nbgrader's layout is <submitted>/<student>/<assignment>/<file>: the student owns the last three
# names (a collected archive can make any of them a link); the folders above are the instructor's.
OWNED_NAMES = 3
MESSAGE_CHARS = 200  # of a parser's own words quoted in a message
AGAIN = "download it again from the course site and copy your answers over"


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


class _RefusedError(Exception):
    """A name the student owns is a link or not the expected kind of file (never opened)."""


class _MalformedError(Exception):
    """Valid JSON that no notebook tool writes (a repeated key)."""


def printable(text: str) -> str:
    """``text`` that any UTF-8 writer accepts: undecodable bytes and lone surrogates escaped."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _short(text: object) -> str:
    return printable(str(text))[:MESSAGE_CHARS]


def _kind(mode: int) -> str:
    kinds = {
        stat.S_ISLNK: "a symbolic link",
        stat.S_ISDIR: "a folder",
        stat.S_ISREG: "a regular file",
        stat.S_ISFIFO: "a named pipe",
        stat.S_ISSOCK: "a socket",
    }
    return next((what for test, what in kinds.items() if test(mode)), "a device")


def _open_owned(path: Path, owned: int, *, folder: bool = False) -> int:
    """A descriptor for ``path``, opened without following a link at its last ``owned`` names.

    Each of those names is checked with lstat and opened with O_NOFOLLOW relative to the folder
    above it; only folders and, at the end, a regular file (or a folder) are opened at all, since
    opening a device can have effects (a watchdog, a tape) and a FIFO can block. fstat then checks
    that the file opened is the one checked. Raises ``_RefusedError``, or ``OSError`` (missing).
    """
    path = Path(os.path.abspath(path))
    names = path.parts[1:][-owned:]
    fd = os.open(path.parents[len(names) - 1], os.O_RDONLY | os.O_DIRECTORY)
    try:
        for depth, name in enumerate(names, 1):
            info = os.stat(name, dir_fd=fd, follow_symlinks=False)
            last = depth == len(names)
            want = stat.S_ISREG if last and not folder else stat.S_ISDIR
            if not want(info.st_mode):
                shown = "/".join(names[:depth])
                raise _RefusedError(
                    f"{shown} is {_kind(info.st_mode)}, not "
                    + ("a regular file" if want is stat.S_ISREG else "a folder")
                )
            flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK
            opened = os.open(
                name, flags | (os.O_DIRECTORY if want is stat.S_ISDIR else 0), dir_fd=fd
            )
            os.close(fd)
            fd = opened
        now = os.fstat(fd)
        if not want(now.st_mode) or (now.st_dev, now.st_ino) != (
            info.st_dev,
            info.st_ino,
        ):
            raise _RefusedError(f"{path.name} changed while it was being opened")
        return fd
    except BaseException:
        os.close(fd)
        raise


def submitted_names(folder: Path) -> list[str]:
    """The names in a student's assignment folder (none if it or the student's folder is a link)."""
    try:
        fd = _open_owned(folder, OWNED_NAMES - 1, folder=True)
    except (OSError, _RefusedError):
        return []
    try:
        return sorted(printable(name) for name in os.listdir(fd))
    finally:
        os.close(fd)


# What nbformat.validate raises on a notebook that is not valid: it normalises cell ids before
# its schema check, and that step raises on odd types.
_INVALID = (nbformat.ValidationError, TypeError, ValueError, KeyError, AssertionError)


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    """An object whose keys all differ: parsers disagree on which of two equal keys counts."""
    obj = dict(pairs)
    if len(obj) < len(pairs):
        counts = collections.Counter(key for key, _ in pairs)
        repeated = next(key for key, count in counts.items() if count > 1)
        raise _MalformedError(
            f"the key {_short(repr(repeated))} appears twice in an object"
        )
    return obj


def _over_a_cap(cells: list[dict]) -> str | None:
    """Which cap the cells break, if any (the schema check then reports wrong types)."""
    if len(cells) > MAX_CELLS:
        return f"has {len(cells):,d} cells (at most {MAX_CELLS:,d})"
    for number, cell in enumerate(cells, 1):
        source = cell.get("source")
        lines = [source] if isinstance(source, str) else source
        if isinstance(lines, list):
            if sum(len(s) for s in lines if isinstance(s, str)) > MAX_SOURCE_CHARS:
                return f"has over {MAX_SOURCE_CHARS:,d} characters in cell {number}"
    return None


@functools.cache
def _nbgrader_schema() -> jsonschema.Draft4Validator:
    return jsonschema.Draft4Validator(MetadataValidator().schema)


def _nbgrader_metadata_error(meta: object) -> str | None:
    """Why nbgrader's own checks would reject a cell's nbgrader metadata, or None.

    A stock ``nbgrader autograde`` that meets a wrong ``schema_version`` stops the whole batch, and
    one that meets a non-object crashes on the student; the grader reads these fields too.
    """
    if not isinstance(meta, dict):
        return f"it is {type(meta).__name__}, not an object"
    if meta.get("schema_version") != MetadataValidator.schema_version:
        return f"schema_version is {_short(repr(meta.get('schema_version')))}"
    # Most cells carry the release's metadata unchanged: each distinct one is checked once.
    return _schema_error(json.dumps(meta, sort_keys=True))


@functools.lru_cache(maxsize=1024)
def _schema_error(meta_json: str) -> str | None:
    meta = json.loads(meta_json)
    error = jsonschema.exceptions.best_match(_nbgrader_schema().iter_errors(meta))
    return _short(error.message) if error else None


def _parse(text: str, name: str) -> nbformat.NotebookNode | Problem:
    if json_depth(text) > MAX_DEPTH:
        return Problem(
            "malformed-notebook",
            f"{name} nests its JSON more than {MAX_DEPTH} levels deep; {AGAIN}",
        )
    try:
        raw = json.loads(text, object_pairs_hook=_unique_keys)
    except _MalformedError as error:
        return Problem("malformed-notebook", f"{name}: {error}; {AGAIN}")
    except (ValueError, RecursionError) as error:
        return Problem(
            "not-a-notebook", f"{name} is not valid notebook JSON ({_short(error)})"
        )
    if not isinstance(raw, dict) or raw.get("nbformat") != 4:
        version = raw.get("nbformat") if isinstance(raw, dict) else None
        return Problem(
            "wrong-format",
            f"{name} is not an nbformat 4 notebook (nbformat={_short(repr(version))}); {AGAIN}",
        )
    cells, minor = raw.get("cells"), raw.get("nbformat_minor")
    if not isinstance(cells, list) or not all(isinstance(c, dict) for c in cells):
        return Problem("wrong-format", f"{name} has no list of cells; {AGAIN}")
    if not isinstance(minor, int) or isinstance(minor, bool):
        return Problem("wrong-format", f"{name} has no nbformat_minor version; {AGAIN}")
    if reason := _over_a_cap(cells):
        return Problem("malformed-notebook", f"{name} {reason}; {AGAIN}")
    try:
        json.dumps(raw, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return Problem(
            "malformed-notebook",
            f"{name} holds a lone surrogate escape (\\ud800-\\udfff), which is not text; {AGAIN}",
        )
    nb = nbformat.from_dict(raw)
    try:
        nbformat.validate(nb)
    except _INVALID as error:
        why = getattr(error, "message", None) or str(error) or type(error).__name__
        return Problem(
            "wrong-format", f"{name} is not a valid notebook ({_short(why)})"
        )
    for number, cell in enumerate(nb.cells, 1):
        if "nbgrader" in cell.metadata and (
            reason := _nbgrader_metadata_error(cell.metadata.nbgrader)
        ):
            return Problem(
                "malformed-notebook",
                f"{name}: the nbgrader metadata of cell {number} was altered ({reason}); {AGAIN}",
            )
    return strip_transient(rejoin_lines(nb))  # each cell's source as one string


def read_notebook(path: Path) -> nbformat.NotebookNode | Problem:
    """Parse a submitted file as an nbformat-4 notebook, or return the Problem with it.

    Statuses: ``missing-notebook``; ``not-a-regular-file`` (a link, even to the course's own
    files, a device, FIFO, socket or folder, or a file in a student or assignment folder that is a
    link: never followed nor opened); ``too-large``; ``not-a-notebook`` (empty, not UTF-8, not
    JSON); ``wrong-format`` (not nbformat 4, or not valid for its schema); ``malformed-notebook``
    (over a nesting, cell or source cap, a repeated key, a lone surrogate, or nbgrader metadata
    that nbgrader itself would reject).
    """
    data = read_submitted(path)
    return data if isinstance(data, Problem) else parse_notebook(data, path.name)


def read_submitted(path: Path) -> bytes | Problem:
    """A submitted file's bytes, read without following a link and never past the size cap:
    what the grader sends to a worker, which needs no access to the submissions folder."""
    name = path.name
    try:
        fd = _open_owned(path, OWNED_NAMES)
        with open(fd, "rb") as file:
            data = file.read(MAX_NOTEBOOK_BYTES + 1)  # never trust st_size
    except _RefusedError as refused:
        return Problem("not-a-regular-file", f"{refused}; submit the notebook itself")
    except OSError as error:
        return Problem(
            "missing-notebook", f"{name} was not submitted ({error.strerror})"
        )
    if len(data) > MAX_NOTEBOOK_BYTES:
        return Problem(
            "too-large",
            f"{name} is over {MAX_NOTEBOOK_BYTES:,d} bytes; clear its outputs and submit again",
        )
    return data


def parse_notebook(data: bytes, name: str) -> nbformat.NotebookNode | Problem:
    """The notebook in a submitted file's bytes (``read_notebook`` lists the statuses)."""
    if not data.strip():
        return Problem("not-a-notebook", f"{name} is empty")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        return Problem(
            "not-a-notebook", f"{name} is not UTF-8 text (byte {error.start:,d})"
        )
    try:
        return _parse(text, name)
    except Exception as error:  # a hostile file costs its own points, never the batch
        return Problem(
            "malformed-notebook",
            f"{name} could not be read as a notebook ({type(error).__name__}); {AGAIN}",
        )


def cells_with_id(
    nb: nbformat.NotebookNode, grade_id: str
) -> list[nbformat.NotebookNode]:
    """The cells of ``nb`` with this grade_id, whatever the rest of their metadata holds."""
    return [
        cell for cell in nb.cells if nbgrader_meta(cell).get("grade_id") == grade_id
    ]


def find_answer(nb: nbformat.NotebookNode, grade_id: str) -> Answer | Problem:
    """The answer cell with this grade_id; exactly one must exist and be a code cell."""
    cells = cells_with_id(nb, grade_id)
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
    source = cells[0].get("source")
    if cells[0].get("cell_type") != "code" or not isinstance(source, str):
        return Problem(
            "changed-cell", f"the answer cell {grade_id!r} is no longer a code cell"
        )
    return Answer(grade_id, source)


def edited_locked_cells(
    nb: nbformat.NotebookNode, release: nbformat.NotebookNode
) -> list[Problem]:
    """Locked and test cells of the release that the submission deleted, duplicated or changed.

    Uses nbgrader's own checksum, which covers source, type, points and grade_id. A notebook
    where no cell carries an id of the release's (its metadata dropped, or the answers pasted
    into a new notebook) gets one line for all of them: they run as released anyway.
    """
    if not any(nbgrader_meta(cell).get("grade_id") for cell in nb.cells):
        return [
            Problem(
                "edited-locked-cell",
                "no cell of this notebook carries the course's cell ids (an editor dropped "
                "the cell metadata, or the code was pasted into a new notebook): the locked "
                "and test cells were taken from the release",
            )
        ]
    problems = []
    for cell in release.cells:
        meta = cell.metadata.get("nbgrader", {})
        if not (meta.get("locked") or meta.get("grade")) or meta.get("solution"):
            continue
        grade_id = meta["grade_id"]
        found = cells_with_id(nb, grade_id)
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
    found = cells_with_id(nb, grade_id)
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
    """nbgrader's checksum of a submitted cell, or None where its fields have the wrong types."""
    try:
        return compute_checksum(cell)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


@functools.cache
def release_notebook(name: str) -> nbformat.NotebookNode:
    """The release's notebook ``name``, read once per process: every student's is compared
    with it, and nothing here changes it."""
    return notebooks.read(RELEASE_DIR / name)
