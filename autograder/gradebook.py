"""An nbgrader gradebook of the grade command's results, for formgrader and ``nbgrader export``."""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

from nbgrader.api import Gradebook
from sqlalchemy import text
from sqlalchemy.exc import SAWarning

from autograder.release import ASSIGNMENT, generate_release
from autograder.scoring import MANUAL, ItemScore, cell_totals


def write_gradebook(out: Path, results: list[dict]) -> Path:
    """Rebuild ``out/gradebook.db`` from the results: the release's cells, then each score.

    nbgrader itself records the assignment and its grade cells (``generate_assignment`` into a
    scratch folder); every test cell's auto score is the trusted score of the grade command.
    """
    path = out / "gradebook.db"
    path.unlink(missing_ok=True)
    url = f"sqlite:///{path.resolve()}"
    with tempfile.TemporaryDirectory() as scratch:
        generate_release(Path(scratch), db_url=url)
    # nbgrader's add_submission trips an SQLAlchemy autoflush warning (stock autograde too);
    # the submission is added all the same, as the tests check.
    with Gradebook(url) as gb, warnings.catch_warnings():
        warnings.simplefilter("ignore", SAWarning)
        # Rebuilt from the results whenever it is lost: no need to wait for the disk after
        # each of nbgrader's commits (a thousand students took a minute, now seconds).
        gb.db.execute(text("PRAGMA synchronous = OFF"))
        # The only writer: the assignment's notebooks and cells stay loaded between
        # nbgrader's commits instead of being read again for every student.
        gb.db.registry().expire_on_commit = False
        for result in sorted(results, key=lambda r: r["student"]):
            gb.update_or_create_student(result["student"])
            submission = gb.add_submission(ASSIGNMENT, result["student"])
            # The grades nbgrader just created, by notebook and cell (one query each,
            # instead of one ``find_grade`` per cell).
            grades = {
                (notebook.name, grade.name): grade
                for notebook in submission.notebooks
                for grade in notebook.grades
            }
            for nb in result["notebooks"]:
                totals = cell_totals([ItemScore(**item) for item in nb["items"]])
                for cell, (score, _, status, _) in totals.items():
                    grade = grades[nb["notebook"].removesuffix(".ipynb"), cell]
                    # As nbgrader's SaveAutoGrades: a written answer waits for formgrader.
                    grade.auto_score = None if status == MANUAL else score
                    grade.needs_manual_grade = status == MANUAL
            gb.db.commit()
    return path
