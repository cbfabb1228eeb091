"""An nbgrader gradebook of the grade command's results, for formgrader and ``nbgrader export``."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from nbgrader.api import (
    Assignment,
    Comment,
    Grade,
    Gradebook,
    Student,
    SubmittedAssignment,
    SubmittedNotebook,
)

from autograder.release import ASSIGNMENT, generate_release
from autograder.scoring import MANUAL, ItemScore, cell_totals


def assignment_gradebook(folder: Path) -> Path:
    """A gradebook that nbgrader itself fills with the assignment, its notebooks and grade
    cells (``generate_assignment`` into a scratch folder), in ``folder``: about 7 s, so the
    grade command starts it in the background while it grades."""
    path = folder / "assignment.db"
    with tempfile.TemporaryDirectory() as scratch:
        generate_release(Path(scratch), db_url=f"sqlite:///{path.resolve()}")
    return path


def write_gradebook(
    out: Path, results: list[dict], assignment_db: Path | None = None
) -> Path:
    """Rebuild ``out/gradebook.db`` from the results: the assignment (a copy of
    ``assignment_db``, else made now), then each student's submission with its scores; every
    test cell's auto score is the trusted score of the grade command."""
    path = out / "gradebook.db"
    path.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        shutil.copyfile(assignment_db or assignment_gradebook(Path(scratch)), path)
    with Gradebook(f"sqlite:///{path.resolve()}") as gb, gb.db.no_autoflush:
        assignment = gb.find_assignment(ASSIGNMENT)
        for result in sorted(results, key=lambda r: r["student"]):
            gb.db.add(_submission(assignment, result))
        gb.db.commit()  # one flush for everyone
    return path


def _submission(assignment: Assignment, result: dict) -> SubmittedAssignment:
    """A student's submission with every grade and comment nbgrader's ``add_submission``
    creates, the trusted scores already in place.

    The same objects as ``Gradebook.add_submission``, added without its commit per student (and
    ``update_or_create_student``'s): a thousand students took half a minute that way, and a
    single commit takes a few seconds.
    """
    scores = {
        (nb["notebook"].removesuffix(".ipynb"), cell): (score, status)
        for nb in result["notebooks"]
        for cell, (score, _, status, _) in cell_totals(
            [ItemScore(**item) for item in nb["items"]]
        ).items()
    }
    submission = SubmittedAssignment(
        assignment=assignment, student=Student(id=result["student"])
    )
    for notebook in assignment.notebooks:
        submitted = SubmittedNotebook(notebook=notebook, assignment=submission)
        for cell in notebook.grade_cells:
            grade = Grade(cell_id=cell.id, notebook=submitted)
            if (notebook.name, cell.name) in scores:
                score, status = scores[notebook.name, cell.name]
                # As nbgrader's SaveAutoGrades: a written answer waits for formgrader.
                grade.auto_score = None if status == MANUAL else score
                grade.needs_manual_grade = status == MANUAL
        for cell in [*notebook.solution_cells, *notebook.task_cells]:
            Comment(cell_id=cell.id, notebook=submitted)
        for cell in notebook.task_cells:
            Grade(cell_id=cell.id, notebook=submitted)
    return submission
