"""Stock ``nbgrader autograde`` with the trusted scores: a preprocessor that replaces execution.

Configured in ``nbgrader_config.py`` in place of nbgrader's ``Execute``: the student's notebook is
never run in a kernel with the instructor's permissions. Each answer is graded in the sandbox,
and every test cell gets outputs that nbgrader's own partial-credit rule reads as the trusted
score (a stdout line with the status and message, then the score as the cell's value). Test cells
get their release source back, so no hidden test reaches the feedback. Gradebook, export,
formgrader and generate_feedback then work unchanged.
"""

from __future__ import annotations

import copy
import os
import secrets
import stat
from pathlib import Path

import nbformat
from nbconvert.exporters import NotebookExporter
from nbconvert.exporters.exporter import ResourcesDict
from nbgrader.api import Gradebook
from nbgrader.converters import base as nbgrader_base
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import AssignLatePenalties, NbGraderPreprocessor
from traitlets import Bool, Enum, Float, Int, Unicode
from traitlets.config.loader import PyFileConfigLoader

from autograder import notebooks
from autograder.deadlines.schedule import load_calendar, record_lateness
from autograder.grading.grader import (
    NotebookResult,
    Policy,
    grade_notebook_node,
    grader_error,
    unreadable_notebook,
)
from autograder.grading.recovery import WrittenAnswer, recover_written_answer
from autograder.grading.scoring import ItemScore, cell_totals
from autograder.grading.submission import (
    Problem,
    edited_locked_cells,
    read_notebook,
    release_notebook,
)
from autograder.integration.course_config import (
    CONFIG_FILE,
    CourseConfigError,
    CourseSettings,
    course_secret,
    limits_of,
    settings_of,
)
from autograder.notebooks import nbgrader_meta
from autograder.outputs.report import MESSAGE_CHARS
from autograder.paths import RELEASE_DIR
from autograder.sandbox.runner import Sandbox, SandboxUnavailableError, shared
from autograder.untrusted import clean_text, plain_name

# Notebook metadata key: the submitted file could not be read (see TolerantNotebookExporter).
UNREADABLE = "autograder_unreadable"
# Notebook metadata key: grade_ids that appeared more than once (see SetDuplicatesAside).
DUPLICATED = "autograder_duplicated"
# Notebook metadata key: the locked cells the student edited (see NoteEditedLockedCells).
EDITED = "autograder_edited"
# Notebook metadata key: written answers found after their questions (see NoteRecoveredAnswers).
RECOVERED_WRITTEN = "autograder_recovered_written"
# Proves a mark is this process's own (nbgrader's two passes run in one process), not a
# student's: a notebook that carries one of these marks without it loses the mark.
_MARK_KEY = secrets.token_hex(16)
_MARKS = (UNREADABLE, DUPLICATED, EDITED, RECOVERED_WRITTEN)


class TolerantNotebookExporter(NotebookExporter):
    """Reads each submitted file as the grade command does (``c.Autograde.exporter_class``).

    Stock nbgrader reads a file itself and, on one that is not a notebook, drops the student's
    whole submission. Here an unreadable file (also a link, FIFO or device, never opened) becomes
    the release notebook marked with the problem, so only that notebook's items score zero, with
    the reason as their status. A readable one is handed over as checked: nbgrader never reads
    the file a second time. Making one also hardens nbgrader's copying (``harden_nbgrader``).
    """

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        harden_nbgrader()

    def from_filename(self, filename: str, resources=None, **kw):
        path = Path(filename)
        if resources is None:
            resources = ResourcesDict()
        if not resources.get("metadata"):
            resources["metadata"] = ResourcesDict()
        resources["metadata"].update(name=path.stem, path=str(path.parent))
        nb = read_notebook(path)
        if not isinstance(nb, Problem):
            for name in _MARKS:
                mark = nb.metadata.pop(name, None)
                if isinstance(mark, dict) and mark.pop("key", None) == _MARK_KEY:
                    nb.metadata[name] = mark  # ours, from nbgrader's first pass
            return self.from_notebook_node(nb, resources, **kw)
        stand_in = RELEASE_DIR / path.name
        if not stand_in.exists():  # not one of this course's: fail, as nbgrader would
            raise ValueError(f"{path.name}: {nb.status}: {nb.message}")
        marked = notebooks.read(stand_in)
        marked.metadata[UNREADABLE] = {
            "status": nb.status,
            "message": nb.message,
            "key": _MARK_KEY,
        }
        return self.from_notebook_node(marked, resources, **kw)


def _plain_file(path: str) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


# What a browser runs as a page or script when formgrader serves a submission's files from its
# own origin (``/formgrader/submissions/<id>/<file>``, with the instructor's session).
ACTIVE_SUFFIXES = frozenset(
    {
        ".html",
        ".htm",
        ".xhtml",
        ".shtml",
        ".svg",
        ".svgz",
        ".xml",
        ".xsl",
        ".js",
        ".mjs",
    }
)


def _active(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in ACTIVE_SUFFIXES


def _in_linked_folder(folder: str) -> bool:
    """Whether a student's assignment folder, or the student's folder above it, is a link."""
    folder = os.path.normpath(folder)
    return os.path.islink(folder) or os.path.islink(os.path.dirname(folder))


def harden_nbgrader() -> None:
    """Make nbgrader, in this process, touch only a submission's regular files (idempotent).

    Before any notebook is read, nbgrader's ``BaseConverter.init_assignment`` copies every other
    file of ``submitted/<student>/<assignment>/`` into ``autograded/`` with ``shutil.copy``, which
    follows links and reads FIFOs and devices: a link to ``.autograder-secret``, ``solutions/`` or
    the gradebook would be copied, and ``generate_feedback`` hands ``autograded/``'s files back to
    the student; a FIFO or ``/dev/zero`` hangs the run or fills the disk; an HTML, SVG or
    script file would be served by formgrader from its own origin, a page that runs with the
    instructor's session. Likewise ``CourseDirectory.get_existing_timestamp`` opens the
    student's ``timestamp.txt``. Both now skip what is not a regular file in an unlinked folder,
    and copying skips active files. The notebooks themselves nbgrader only lists; this exporter
    reads them.
    """
    if getattr(nbgrader_base.find_all_files, "hardened", False):
        return
    find_all_files = nbgrader_base.find_all_files
    get_existing_timestamp = CourseDirectory.get_existing_timestamp

    def regular_files(path: str, exclude=None) -> list[str]:
        if _in_linked_folder(path):
            return []
        return [
            f
            for f in find_all_files(path, exclude)
            if _plain_file(f) and not _active(f)
        ]

    def plain_timestamp(self, dest_path: str):
        timestamp = os.path.join(dest_path, "timestamp.txt")
        if not os.path.lexists(timestamp):
            return None
        if _in_linked_folder(dest_path) or not _plain_file(timestamp):
            self.log.warning("Ignoring %s: not a regular file", timestamp)
            return None
        return get_existing_timestamp(self, dest_path)

    regular_files.hardened = True  # type: ignore[attr-defined]
    nbgrader_base.find_all_files = regular_files
    CourseDirectory.get_existing_timestamp = plain_timestamp


class SetDuplicatesAside(NbGraderPreprocessor):
    """nbgrader's ``DeduplicateIds`` minus its batch-stopper (in ``sanitize_preprocessors``).

    A student who copies a graded cell in Jupyter copies its nbgrader metadata too. nbgrader's own
    step empties the copy's metadata, which its next step, ``CheckCellMetadata``, rejects as an
    outdated schema: that student's whole submission fails. Here, as there, the last copy keeps
    the metadata; the others lose it entirely, and the notebook is marked with the grade_ids, so
    that ``TrustedAutograde`` gives those answers ``duplicated-cell``, as the grade command does.
    """

    def preprocess(self, nb, resources):
        seen: set[str] = set()
        duplicated: set[str] = set()
        for cell in reversed(nb.cells):
            meta = cell.metadata.get("nbgrader")
            if not isinstance(meta, dict) or not (
                meta.get("grade") or meta.get("solution") or meta.get("locked")
            ):
                continue
            grade_id = str(meta.get("grade_id"))
            if grade_id in seen:
                del cell.metadata["nbgrader"]
                duplicated.add(grade_id)
            seen.add(grade_id)
        if duplicated:
            nb.metadata[DUPLICATED] = {
                "grade_ids": sorted(duplicated),
                "key": _MARK_KEY,
            }
        return nb, resources


class NoteEditedLockedCells(NbGraderPreprocessor):
    """Records which locked cells the student edited, before nbgrader restores them.

    First in ``sanitize_preprocessors`` (where it also refuses a student id that is not plain:
    formgrader's submission view prints the id into its page as it is). ``OverwriteCells`` later
    puts the gradebook's copy of every locked and test cell back (hidden tests included), after
    which an edit can no longer be seen and a hidden-test cell no longer matches the release.
    The grade command compares the submitted notebook itself; this gives ``TrustedAutograde``
    the same evidence.
    """

    def preprocess(self, nb, resources):
        student = resources["nbgrader"]["student"]
        if not plain_name(student):  # formgrader prints the id into its pages unescaped
            raise ValueError(
                f"not grading the student id {clean_text(student, 200)!r}: an id is letters, "
                "digits and . _ @ + - only (rename the folder in submitted/)"
            )
        name = resources["nbgrader"]["notebook"] + ".ipynb"
        if (RELEASE_DIR / name).exists() and UNREADABLE not in nb.metadata:
            edited = edited_locked_cells(nb, release_notebook(name))
            nb.metadata[EDITED] = {
                "problems": [[p.status, p.message] for p in edited],
                "key": _MARK_KEY,
            }
        return nb, resources


def _edits_noted(nb) -> list[Problem]:
    """The edits ``NoteEditedLockedCells`` saw; none if it did not run (not configured)."""
    mark = nb.metadata.get(EDITED, {})
    return [Problem(status, message) for status, message in mark.get("problems", ())]


def _as_submitted(nb) -> nbformat.NotebookNode:
    """The notebook as the student submitted it, for grading: the copies that
    ``SetDuplicatesAside`` stripped count again (a copy of the kept cell stands for them)."""
    duplicated = set(nb.metadata.get(DUPLICATED, {}).get("grade_ids", ()))
    if not duplicated:
        return nb
    graded = copy.deepcopy(nb)
    graded.cells += [  # read type-checked: a student's metadata may be a string, a list, ...
        copy.deepcopy(cell)
        for cell in nb.cells
        if any(nbgrader_meta(cell).get("grade_id") == g for g in duplicated)
    ]
    return graded


def _grade_guarded(nb, name: str, sandbox: Sandbox, policy: Policy) -> NotebookResult:
    """One notebook in a student process of its own; a failure of the grader's own code is
    that notebook's ``grader-error``, logged, and nbgrader goes on with the next."""
    try:
        with sandbox.session() as session:
            return grade_notebook_node(
                nb, name, session, policy, locked_edits=_edits_noted(nb)
            )
    except SandboxUnavailableError:
        raise
    except Exception as error:
        return unreadable_notebook(name, grader_error(f"in {name}", error, "notebook"))


def item_lines(items: list[ItemScore]) -> list[str]:
    """One line per rubric item of a test cell: its points and what happened, for the feedback
    (nbgrader itself shows only the cell's total)."""
    return [
        f"- {item.item}: {item.score:g} of {item.max_score:g} points"
        + ("" if item.status == "passed" else f" ({item.status})")
        + (f". {clean_text(item.message, MESSAGE_CHARS)}" if item.message else "")
        for item in items
    ]


class TrustedAutograde(NbGraderPreprocessor):
    """Grade in the sandbox and write the scores where nbgrader's SaveAutoGrades reads them."""

    conv_policy = Enum(
        ["zero", "report"],
        "zero",
        help="torch's conv in a by-hand answer: no points, or a note",
    ).tag(config=True)
    seed_salt = Unicode(
        "",
        help="A course secret that picks the graded random inputs; unset, the one in "
        ".autograder-secret at the course root (created on first use)",
    ).tag(config=True)
    public_seeds = Bool(
        False,
        help="Grade on the public seeds of exercises.py, which students can read "
        "(tests and demos only)",
    ).tag(config=True)
    wall_seconds = Float(
        10.0,
        help="Time limit per graded function: wall clock less the time spent waiting "
        "for a CPU, so a busy machine does not cause a timeout",
    ).tag(config=True)
    cpu_seconds = Int(10, help="CPU-time limit per graded function").tag(config=True)
    memory_mb = Int(
        1024, help="Memory a graded function may add to the warm interpreter's"
    ).tag(config=True)
    unsafe = Bool(
        False, help="Run student code without the sandbox (trusted code only)"
    ).tag(config=True)

    def policy(self) -> Policy:
        """The course's policy and salt, as the grade command reads them.

        nbgrader's converter runs in the course root (CourseDirectory.root), where the secret is.
        """
        salt = course_secret(os.getcwd(), settings_of(self))
        return Policy(conv=self.conv_policy, seed_salt=salt)

    def preprocess(self, nb, resources):
        name = resources["nbgrader"]["notebook"] + ".ipynb"
        if not (RELEASE_DIR / name).exists():
            return nb, resources
        sandbox = shared(limits_of(settings_of(self)), unsafe=self.unsafe)
        policy = self.policy().for_student(resources["nbgrader"]["student"])
        unreadable = nb.metadata.get(UNREADABLE)
        result = (
            unreadable_notebook(name, Problem(**unreadable))
            if unreadable
            else _grade_guarded(_as_submitted(nb), name, sandbox, policy)
        )
        totals = cell_totals(result.items)
        release_nb = notebooks.read(RELEASE_DIR / name)
        release = {
            c.metadata["nbgrader"]["grade_id"]: c
            for c in release_nb.cells
            if "nbgrader" in c.metadata
        }
        found = _restore_graded_cells(nb, release_nb, totals)
        if found:
            nb.metadata[RECOVERED_WRITTEN] = {"notes": found, "key": _MARK_KEY}
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader", {})
            if cell.cell_type != "code" or not meta.get("grade"):
                continue
            grade_id = meta["grade_id"]
            score, max_score, status, _ = totals.get(
                grade_id, (0.0, 0.0, "not graded", "")
            )
            lines = [f"{status}: {score:g} of {max_score:g} points"]
            lines += item_lines([i for i in result.items if i.cell == grade_id])
            lines += (
                [f"note: {note}" for note in result.notes]
                if grade_id.endswith("_example")
                else []
            )
            cell.outputs = [
                nbformat.v4.new_output(
                    "stream", name="stdout", text="\n".join(lines) + "\n"
                ),
                nbformat.v4.new_output(
                    "execute_result",
                    data={"text/plain": repr(float(score))},
                    execution_count=None,
                ),
            ]
            if grade_id in release:
                cell.source = release[
                    grade_id
                ].source  # the release has no hidden tests
        return nb, resources


class NoteRecoveredAnswers(NbGraderPreprocessor):
    """Tells the grader where a written answer whose cell lost its id was found (after
    ``SaveAutoGrades`` in ``autograde_preprocessors``): the note becomes the answer's
    automatic comment, which formgrader shows in the comment box beside it (and, unless the
    grader changes it, the feedback too). ``TrustedAutograde`` found the answer and made it
    the graded cell; nbgrader's ``SaveAutoGrades`` then cleared the comment."""

    def preprocess(self, nb, resources):
        mark = nb.metadata.pop(RECOVERED_WRITTEN, None)
        if not isinstance(mark, dict) or mark.get("key") != _MARK_KEY:
            return nb, resources
        meta = resources["nbgrader"]
        with Gradebook(meta["db_url"]) as gb:
            for grade_id, note in mark["notes"].items():
                gb.find_comment(
                    grade_id, meta["notebook"], meta["assignment"], meta["student"]
                ).auto_comment = note + "."
            gb.db.commit()
        return nb, resources


class AssignCoursePenalties(AssignLatePenalties):
    """nbgrader's late-penalty step, on the course's calendar (in ``autograde_preprocessors``).

    nbgrader's own step asks its plugin for a penalty from the student, the score and the
    seconds late, with the time nbgrader read from the submission's ``timestamp.txt`` and the
    gradebook's extension. Here, as in the grade command, the time comes from the course's
    named source (``deadlines/times.py``: never a file the student wrote, unless the course
    says its exchange is trusted), the extension from ``extensions.csv`` over nbgrader's, and
    the rule may zero a submission after a date, which seconds late alone cannot say. The same
    ``Calendar`` decides; nbgrader's gradebook records the time, the extension and the penalty.
    """

    def preprocess(self, nb, resources):
        meta = resources["nbgrader"]
        with Gradebook(meta["db_url"]) as gb:
            calendar = load_calendar(
                Path.cwd(), meta["assignment"], config=self.config, gradebook=gb
            )
            lateness = calendar.lateness(meta["student"])
            record_lateness(
                gb.find_submission(meta["assignment"], meta["student"]), lateness
            )
            notebook = gb.find_submission_notebook(
                meta["notebook"], meta["assignment"], meta["student"]
            )
            notebook.late_submission_penalty = lateness.penalty(notebook.score) or None
            if lateness.late:
                self.log.warning(
                    "%s is %d seconds late: penalty %g of %g points",
                    meta["student"],
                    lateness.seconds_late,
                    lateness.penalty(notebook.score),
                    notebook.score,
                )
            gb.db.commit()
        return nb, resources


def _restore_graded_cells(nb, release_nb, totals: dict) -> dict[str, str]:
    """Give back each graded cell that no cell of ``nb`` carries (its metadata dropped by an
    editor, or the answers pasted into a new notebook), so that nbgrader's gradebook records
    the trusted score of a recovered answer, as the grade command does.

    Test cells always come from the release, never from the student: the release's copy is
    appended. A written answer found after its question (``recovery``) becomes the answer
    cell, the student's text under the release's metadata, so that formgrader shows it to
    grade (the notes of these, by grade_id, are returned); one not found is the release's
    blank cell (0, as the grade command's ``missing-cell``)."""
    present = {
        meta.get("grade_id")
        for cell in nb.cells
        if isinstance(meta := cell.metadata.get("nbgrader"), dict)
    }
    notes = {}
    for cell in release_nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        grade_id = meta.get("grade_id")
        if grade_id in present or grade_id not in totals or not meta.get("grade"):
            continue
        if meta.get("solution") and cell.cell_type == "markdown":
            found = recover_written_answer(nb, release_nb, grade_id)
            if isinstance(found, WrittenAnswer):
                answer = copy.deepcopy(cell)
                answer.source = found.text
                answer.pop("id", None)
                first, last = found.cells[0], found.cells[-1]
                if "id" in nb.cells[first]:  # the student's cell it replaces
                    answer.id = nb.cells[first].id
                nb.cells[first : last + 1] = [answer]
                notes[grade_id] = found.note
                continue
        restored = copy.deepcopy(cell)
        restored.pop("id", None)  # the submission may hold a cell with the release's id
        if nb.get("nbformat_minor", 0) >= 5:
            restored.id = f"restored-{grade_id}"[:64]
        nb.cells.append(restored)
    return notes


def load_settings(course_dir: Path | str = ".") -> CourseSettings:
    """``c.TrustedAutograde`` from ``course_dir/nbgrader_config.py``, validated as nbgrader would
    (by the class above, so the grade command reads the very settings nbgrader does).

    Refuses a directory without the file: grading from the wrong directory would otherwise
    create a second secret there and grade on other inputs than nbgrader does.
    """
    course = Path(course_dir)
    if not (course / CONFIG_FILE).is_file():
        raise CourseConfigError(
            f"no {CONFIG_FILE} in {course.resolve()}: run in the course directory "
            "or pass --course"
        )
    config = PyFileConfigLoader(CONFIG_FILE, path=str(course)).load_config()
    return settings_of(TrustedAutograde(config=config))
