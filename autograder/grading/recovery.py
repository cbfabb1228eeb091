"""Answers whose cell lost its identity: found by the code that defines the graded function.

Some editors drop cell metadata, and some students paste their functions into a fresh notebook
or merge cells; the answer cell's nbgrader id is then gone. Such an answer is graded from the
unique top-level definition of the function among the student's code cells, with status
``recovered-cell``; an ambiguous one (two definitions, or one in a cell that also defines
another graded function) is ``needs-review``. Whatever the submission holds, the release's
locked and test cells never come from it: every top-level statement that is one of the
release's own (a test, a demo, a locked helper, merged into a student's cell) is left out, and
a cell that carries a locked or test cell's id is not the student's at all.

A written answer (nbgrader's "manually graded answer" cell) that lost its id is found by the
question it follows: the markdown cells after the release's question cell, up to the next cell
of the release. It goes to the instructor as any written answer does, with a note that says
where it was found (``recover_written_answer``).

Trusted side: the student's text is parsed (``ast``), never run; a cell that does not parse is
kept as written, for the sandbox to report.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from dataclasses import dataclass

from autograder.grading.submission import Answer, Problem, cells_with_id

RECOVERED = "recovered-cell"
NEEDS_REVIEW = "needs-review"


@dataclass(frozen=True)
class Recovered:
    """A graded function's answer found by its definition, and what its job runs."""

    answer: Answer  # the cell that defines it, the release's statements blanked out
    cells: list[
        str
    ]  # that cell and the student's other code that defines no graded function
    note: str  # for the instructor: where the answer was found


def _nbgrader(cell) -> dict:
    metadata = cell.get("metadata") if isinstance(cell, dict) else None
    meta = metadata.get("nbgrader") if isinstance(metadata, dict) else None
    return meta if isinstance(meta, dict) else {}


def _text(cell) -> str:
    source = cell.get("source", "")
    return source if isinstance(source, str) else ""


def _parse(source: str) -> ast.Module | None:
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


# Release statements that a cell with code of the student's own keeps: they only bind names (a
# helper copied from the book's prose, an import), as an intact answer cell would run them;
# every other release statement (a test, a demo, a figure, a stand-in for a graded function)
# is left out, and a cell of release statements only is the release's.
_INERT = (
    ast.Import,
    ast.ImportFrom,
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.ClassDef,
)
_Facts = tuple[frozenset[str], frozenset[str], frozenset[str]]
_FACTS: dict[
    int, tuple[object, _Facts]
] = {}  # id() -> (the release notebook, its facts)


def _release_facts(release_nb) -> _Facts:
    """The release's own statements (every code cell but the answer cells), its stubs (the
    answer cells' definitions as released), and the grade_ids of its locked and test cells.

    Read once per release notebook (the grader reads each once per process)."""
    held = _FACTS.get(id(release_nb))
    if held is not None and held[0] is release_nb:
        return held[1]
    statements: set[str] = set()
    stubs: set[str] = set()
    locked: set[str] = set()
    for cell in release_nb.cells:
        meta = _nbgrader(cell)
        if cell.get("cell_type") != "code":
            continue
        tree = _parse(_text(cell))
        body = tree.body if tree else []
        if meta.get("solution"):
            stubs |= {ast.dump(s) for s in body}
            continue
        statements |= {ast.dump(s) for s in body}
        if meta.get("grade_id") and (meta.get("locked") or meta.get("grade")):
            locked.add(meta["grade_id"])
    facts = frozenset(statements), frozenset(stubs), frozenset(locked)
    _FACTS[id(release_nb)] = (release_nb, facts)
    return facts


@dataclass
class _Cell:
    """A student's code cell: its source with the release's statements blanked out (line
    numbers kept), and the graded names it defines at its top level (stubs apart)."""

    source: str
    defines: dict[
        str, int
    ]  # name -> how many definitions that are not the release's stub
    stubs: set[str]
    number: int = 0  # its place among the notebook's code cells, from 1


def _student_cell(source: str, release: frozenset[str], stubs: frozenset[str], names):
    tree = _parse(source)
    if tree is None:  # kept as written: the sandbox, or syntax_problem, reports it
        found = {
            n: 1 for n in names if re.search(rf"^(async\s+)?def\s+{n}\b", source, re.M)
        }
        return _Cell(source, found, set())
    lines = source.splitlines(keepends=True)
    kept: set[int] = set()
    dropped: set[int] = set()
    own = False  # whether any statement is the student's own
    defines: dict[str, int] = {}
    stub_names: set[str] = set()
    for statement in tree.body:
        first = min(
            [statement.lineno]
            + [d.lineno for d in getattr(statement, "decorator_list", ())]
        )
        span = set(range(first, (statement.end_lineno or statement.lineno) + 1))
        dump = ast.dump(statement)
        if (
            dump in release
            and (not isinstance(statement, _INERT) or _bound_names(statement) & names)
        ):  # a test, a demo, or a stand-in for a graded function (the grader has its own)
            dropped |= span
            continue
        own = own or dump not in release
        kept |= span
        for name in _bound_names(statement) & names:
            if dump in stubs:
                stub_names.add(name)
            else:
                defines[name] = defines.get(name, 0) + 1
    if not own:  # the release's cell (or comments): nothing of the student's runs here
        return _Cell("", {}, set())
    blank = dropped - kept
    text = "".join(
        ("\n" if line.endswith("\n") else "") if number in blank else line
        for number, line in enumerate(lines, 1)
    )
    return _Cell(text, defines, stub_names)


def _bound_names(statement: ast.stmt) -> set[str]:
    """Names a top-level statement defines: a def, a class, or an assignment to a plain name."""
    if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return {statement.name}
    targets: list[ast.expr] = []
    if isinstance(statement, ast.Assign):
        targets = statement.targets
    elif isinstance(statement, ast.AnnAssign | ast.AugAssign):
        targets = [statement.target]
    return {t.id for t in targets if isinstance(t, ast.Name)}


def student_cells(nb, release_nb, names: frozenset[str]) -> list[_Cell]:
    """The student's code cells, in order, without the release's statements: every code cell
    but those that carry a locked or test cell's id (the release's, whatever they hold)."""
    release, stubs, locked = _release_facts(release_nb)
    cells = []
    code = [cell for cell in nb.cells if cell.get("cell_type") == "code"]
    for number, cell in enumerate(code, 1):
        if _nbgrader(cell).get("grade_id") in locked:
            continue
        found = _student_cell(_text(cell), release, stubs, names)
        found.number = number
        if found.source.strip():
            cells.append(found)
    return cells


def recovered_sources(nb, release_nb, names: frozenset[str]) -> list[str]:
    """Every code cell the student wrote, as the policy reads it where an answer was recovered."""
    return [cell.source for cell in student_cells(nb, release_nb, names)]


def recover_answer(
    nb, release_nb, grade_id: str, names: frozenset[str]
) -> Recovered | Problem:
    """The answer of ``grade_id`` from the unique top-level definition among the student's
    cells (``names``: every graded function), or why there is none to grade.

    Only called where no cell carries the answer's id (``missing-cell``).
    """
    missing = Problem(
        "missing-cell",
        f"the answer cell {grade_id!r} was deleted and no cell defines {grade_id}; "
        "restore it from the course site",
    )
    cells = student_cells(nb, release_nb, names)
    defining = [i for i, c in enumerate(cells) if c.defines.get(grade_id)]
    if not defining:  # only the release's stub, if anything: graded as the stub
        defining = [i for i, c in enumerate(cells) if grade_id in c.stubs]
        if len(defining) != 1:
            return missing
    count = sum(cells[i].defines.get(grade_id, 1) for i in defining)
    if count > 1:
        return Problem(
            NEEDS_REVIEW,
            f"{grade_id}: its answer cell lost its id and {count} cells or statements define "
            f"{grade_id}; an instructor will review which one to grade (0 points until then)",
        )
    at = defining[0]
    others = sorted(
        n for n, k in cells[at].defines.items() if k and n != grade_id and n in names
    )
    if others:
        return Problem(
            NEEDS_REVIEW,
            f"{grade_id}: its answer cell lost its id, and the cell that defines it also "
            f"defines {', '.join(others)}; an instructor will review it (0 points until then)",
        )
    job_cells = [
        c.source
        for i, c in enumerate(cells)
        if i == at or not (set(c.defines) | c.stubs) & names
    ]
    return Recovered(
        Answer(grade_id, cells[at].source),
        job_cells,
        f"{grade_id}: its answer cell lost its nbgrader id (an editor dropped the cell "
        f"metadata, or the code was pasted or merged); graded from the code cell that defines "
        f"it (code cell {cells[at].number}), with the release's own statements left out",
    )


def has_lost_answers(nb, names: Iterable[str]) -> bool:
    """Whether some graded answer of this notebook has no cell with its id."""
    return any(not cells_with_id(nb, name) for name in names)


@dataclass(frozen=True)
class WrittenAnswer:
    """A written answer found by the question it follows: the student's cells (their places
    in the notebook), their text, and the note for the instructor."""

    cells: tuple[int, ...]
    text: str
    note: str


def _words(cell) -> str:
    """A cell's text with its spacing evened out (an editor may rewrap or re-end lines)."""
    return " ".join(_text(cell).split())


def recover_written_answer(nb, release_nb, grade_id: str) -> WrittenAnswer | Problem:
    """The written answer ``grade_id`` of a notebook where no cell carries its id: the text
    cells (markdown or raw) that follow the release's question cell, found once in ``nb``,
    up to the next of the release's own cells, a code cell or a cell with nbgrader's
    metadata; or why there is none to grade."""
    missing = Problem("missing-cell", f"the answer cell {grade_id!r} was deleted")
    cells = list(release_nb.cells)
    at = next(
        (i for i, c in enumerate(cells) if _nbgrader(c).get("grade_id") == grade_id),
        None,
    )
    if not at:  # not in the release, or with no question before it
        return missing
    question, blank = _words(cells[at - 1]), _words(cells[at])
    release = {_words(c) for c in cells}
    asked = [
        i
        for i, c in enumerate(nb.cells)
        if c.get("cell_type") in ("markdown", "raw") and _words(c) == question
    ]
    if len(asked) > 1:
        return Problem(
            NEEDS_REVIEW,
            f"{grade_id}: its answer cell lost its id, and its question appears "
            f"{len(asked)} times; an instructor will look for the answer (0 points until "
            "then)",
        )
    taken: list[int] = []
    for i in range(asked[0] + 1, len(nb.cells)) if asked else ():
        cell = nb.cells[i]
        words = _words(cell)
        if words == blank and not taken:
            return Problem(
                "no-answer", f"the answer cell {grade_id!r} was left as released"
            )
        if (
            cell.get("cell_type") not in ("markdown", "raw")
            or words in release
            or _nbgrader(cell).get("grade_id")
        ):
            break
        if words:
            taken.append(i)
    if not taken:
        return missing
    where = (
        f"cell {taken[0] + 1}"
        if len(taken) == 1
        else f"cells {taken[0] + 1} to {taken[-1] + 1}"
    )
    return WrittenAnswer(
        tuple(taken),
        "\n\n".join(_text(nb.cells[i]) for i in taken),
        f"{grade_id}: its answer cell lost its nbgrader id (an editor dropped the cell "
        f"metadata, or the notebook was rebuilt); the text after its question ({where} of "
        "the notebook) is taken as the answer: check that it is the whole answer",
    )
