"""Stock ``nbgrader autograde`` with the trusted scores: a preprocessor that replaces execution.

Configured in ``nbgrader_config.py`` in place of nbgrader's ``Execute``: the student's notebook is
never run in a kernel with the instructor's permissions. Each answer is graded in the sandbox,
and every test cell gets outputs that nbgrader's own partial-credit rule reads as the trusted
score (a stdout line with the status and message, then the score as the cell's value). Test cells
get their release source back, so no hidden test reaches the feedback. Gradebook, export,
formgrader and generate_feedback then work unchanged.
"""

from __future__ import annotations

import atexit
from pathlib import Path

import nbformat
from nbconvert.exporters import NotebookExporter
from nbconvert.exporters.exporter import ResourcesDict
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Bool, Float, Unicode

from autograder import notebooks
from autograder.grader import Policy, grade_notebook_node, unreadable_notebook
from autograder.release import RELEASE_DIR
from autograder.sandbox import Limits, Sandbox
from autograder.scoring import cell_totals
from autograder.submission import Problem, read_notebook

_sandboxes: dict[tuple, Sandbox] = {}
# Notebook metadata key: the submitted file could not be read (see TolerantNotebookExporter).
UNREADABLE = "autograder_unreadable"


class TolerantNotebookExporter(NotebookExporter):
    """Reads each submitted file as the grade command does (``c.Autograde.exporter_class``).

    Stock nbgrader reads a file itself and, on one that is not a notebook, drops the student's
    whole submission. Here an unreadable file becomes the release notebook marked with the
    problem, so only that notebook's items score zero, with the reason as their status.
    """

    def from_filename(self, filename: str, resources=None, **kw):
        path = Path(filename)
        nb = read_notebook(path)
        stand_in = RELEASE_DIR / path.name
        if not isinstance(nb, Problem) or not stand_in.exists():
            return super().from_filename(filename, resources, **kw)
        if resources is None:
            resources = ResourcesDict()
        if not resources.get("metadata"):
            resources["metadata"] = ResourcesDict()
        resources["metadata"].update(name=path.stem, path=str(path.parent))
        marked = notebooks.read(stand_in)
        marked.metadata[UNREADABLE] = {"status": nb.status, "message": nb.message}
        return self.from_notebook_node(marked, resources, **kw)


def _shared_sandbox(limits: Limits, unsafe: bool) -> Sandbox:
    """One warm sandbox for the whole autograde run (nbgrader grades notebook after notebook)."""
    key = (limits, unsafe)
    if key not in _sandboxes:
        _sandboxes[key] = Sandbox(limits, unsafe=unsafe)
        atexit.register(_sandboxes[key].close)
    return _sandboxes[key]


class TrustedAutograde(NbGraderPreprocessor):
    """Grade in the sandbox and write the scores where nbgrader's SaveAutoGrades reads them."""

    conv_policy = Unicode(
        "zero", help="'zero' or 'report': torch's conv in a by-hand answer"
    ).tag(config=True)
    seed_salt = Unicode(
        "",
        help="A course secret that picks the graded random inputs ('' = the public seeds)",
    ).tag(config=True)
    wall_seconds = Float(10.0, help="Wall-clock limit per graded function").tag(
        config=True
    )
    unsafe = Bool(
        False, help="Run student code without the sandbox (trusted code only)"
    ).tag(config=True)

    def preprocess(self, nb, resources):
        name = resources["nbgrader"]["notebook"] + ".ipynb"
        if not (RELEASE_DIR / name).exists():
            return nb, resources
        sandbox = _shared_sandbox(Limits(wall_seconds=self.wall_seconds), self.unsafe)
        policy = Policy(conv=self.conv_policy, seed_salt=self.seed_salt)
        unreadable = nb.metadata.get(UNREADABLE)
        result = (
            unreadable_notebook(name, Problem(**unreadable))
            if unreadable
            else grade_notebook_node(nb, name, sandbox, policy)
        )
        totals = cell_totals(result.items)
        release = {
            c.metadata["nbgrader"]["grade_id"]: c
            for c in notebooks.read(RELEASE_DIR / name).cells
            if "nbgrader" in c.metadata
        }
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader", {})
            if cell.cell_type != "code" or not meta.get("grade"):
                continue
            grade_id = meta["grade_id"]
            score, _, status, message = totals.get(
                grade_id, (0.0, 0.0, "not graded", "")
            )
            lines = [f"{status}: {message}" if message else status]
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
