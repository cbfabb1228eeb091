"""An nbgrader gradebook of the grade command's results, for formgrader and ``nbgrader export``."""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

from nbgrader.api import Gradebook
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
        for result in sorted(results, key=lambda r: r["student"]):
            gb.update_or_create_student(result["student"])
            gb.add_submission(ASSIGNMENT, result["student"])
            for nb in result["notebooks"]:
                totals = cell_totals([ItemScore(**item) for item in nb["items"]])
                for cell, (score, _, status, _) in totals.items():
                    notebook_id = nb["notebook"].removesuffix(".ipynb")
                    grade = gb.find_grade(
                        cell, notebook_id, ASSIGNMENT, result["student"]
                    )
                    # As nbgrader's SaveAutoGrades: a written answer waits for formgrader.
                    grade.auto_score = None if status == MANUAL else score
                    grade.needs_manual_grade = status == MANUAL
            gb.db.commit()
    return path
