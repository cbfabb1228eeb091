"""An nbgrader gradebook of the grade command's results, for formgrader and ``nbgrader export``."""

from __future__ import annotations

import shutil
import uuid
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

from autograder.deadlines.schedule import Calendar, record_lateness
from autograder.grading.scoring import MANUAL, MANUAL_MESSAGE, ItemScore, cell_totals
from autograder.paths import ASSIGNMENT


def write_gradebook(
    out: Path,
    results: list[dict],
    assignment_db: Path,
    calendar: Calendar | None = None,
) -> Path:
    """Rebuild ``out/gradebook.db`` from the results: the assignment (a copy of
    ``assignment_db``, from ``release.assignment_gradebook``), then each student's submission
    with its scores; every test cell's auto score is the trusted score of the grade command.

    With the course's ``calendar``: its due date, each student's submission time and
    extension, and each notebook's late penalty, as stock ``nbgrader autograde`` records them
    (``plugin.AssignCoursePenalties``)."""
    path = out / "gradebook.db"
    path.unlink(missing_ok=True)
    shutil.copyfile(assignment_db, path)
    with Gradebook(f"sqlite:///{path.resolve()}") as gb:
        with gb.db.no_autoflush:
            assignment = gb.find_assignment(ASSIGNMENT)
            if calendar is not None:
                assignment.duedate = calendar.due
            for result in sorted(results, key=lambda r: r["student"]):
                gb.db.add(_submission(assignment, result))
            gb.db.commit()  # one flush for everyone
        if calendar is not None:
            apply_penalties(gb, calendar)
    return path


def apply_penalties(gb: Gradebook, calendar: Calendar) -> None:
    """Record every submission's time, extension and notebook penalties from ``calendar``
    (the scores as nbgrader sums them, ``SubmittedNotebook.score``), in one commit."""
    assignment = gb.find_assignment(calendar.assignment)
    for submission in assignment.submissions:
        lateness = calendar.lateness(submission.student_id)
        record_lateness(submission, lateness)
        for notebook in submission.notebooks:
            notebook.late_submission_penalty = lateness.penalty(notebook.score) or None
    gb.db.commit()


def _submission(assignment: Assignment, result: dict) -> SubmittedAssignment:
    """A student's submission with every grade and comment nbgrader's ``add_submission``
    creates, the trusted scores already in place.

    The same objects as ``Gradebook.add_submission``, added without its commit per student (and
    ``update_or_create_student``'s): a thousand students took half a minute that way, and a
    single commit takes a few seconds.
    """
    totals = {
        (nb["notebook"].removesuffix(".ipynb"), cell): total
        for nb in result["notebooks"]
        for cell, total in cell_totals(
            [ItemScore(**item) for item in nb["items"]]
        ).items()
    }
    scores = {key: (score, status) for key, (score, _, status, _) in totals.items()}
    # A written answer found after its question: the note, as plugin.NoteRecoveredAnswers
    # leaves it for formgrader.
    notes = {
        key: message + "."
        for key, (_, _, status, message) in totals.items()
        if status == MANUAL and message != MANUAL_MESSAGE
    }
    student = result["student"]
    submission = SubmittedAssignment(
        id=_id(student), assignment=assignment, student=Student(id=student)
    )
    for notebook in assignment.notebooks:
        submitted = SubmittedNotebook(
            id=_id(student, notebook.name), notebook=notebook, assignment=submission
        )
        for cell in notebook.grade_cells:
            grade = Grade(
                id=_id(student, notebook.name, cell.name, "grade"),
                cell_id=cell.id,
                notebook=submitted,
            )
            if (notebook.name, cell.name) in scores:
                score, status = scores[notebook.name, cell.name]
                # As nbgrader's SaveAutoGrades: a written answer waits for formgrader.
                grade.auto_score = None if status == MANUAL else score
                grade.needs_manual_grade = status == MANUAL
        for cell in [*notebook.solution_cells, *notebook.task_cells]:
            Comment(
                id=_id(student, notebook.name, cell.name, "comment"),
                cell_id=cell.id,
                notebook=submitted,
                auto_comment=notes.get((notebook.name, cell.name)),
            )
        for cell in notebook.task_cells:
            Grade(
                id=_id(student, notebook.name, cell.name, "task"),
                cell_id=cell.id,
                notebook=submitted,
            )
    return submission


def _id(*names: str) -> str:
    """A gradebook row id made from what the row is (nbgrader's own are random): a rerun or a
    resumed run gives every row the same id, and formgrader lists submissions in the same
    order (it sorts them by id), so the grading guide's numbering is reproducible too."""
    return uuid.uuid5(uuid.NAMESPACE_URL, "autograder/" + "/".join(names)).hex
