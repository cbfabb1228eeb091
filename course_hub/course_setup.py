"""One course's nbgrader set-up: its release generated and its students in its gradebook.

``python -m course_hub.course_setup ASSIGNMENT STUDENTS_CSV``, run by ``provision.py`` as the
course's grading account, in its view, in the course folder (whose ``nbgrader_config.py`` it
reads, as nbgrader's commands do). It does what ``nbgrader generate_assignment ASSIGNMENT
--force`` and ``nbgrader db student import STUDENTS_CSV`` do, in one process: each nbgrader
command spends seconds on its imports and its database check, and ``make hub`` sets up every
course at each start.
"""

from __future__ import annotations

import csv
import sys

from nbgrader.api import Gradebook
from nbgrader.apps import NbGraderAPI
from nbgrader.apps.baseapp import NbGrader


def setup_course(assignment: str, students_csv: str) -> None:
    """Generate ``assignment``'s release (``--force``) and add the students of the file."""
    app = NbGrader()
    app.initialize([])  # the configuration nbgrader's commands read here
    api = NbGraderAPI(config=app.config)
    # --force: the gradebook entry is made even when the release exists (README, "Grading").
    result = api.generate_assignment(assignment, force=True)
    print(result.get("log", ""), end="")
    if not result["success"]:
        sys.exit(f"generate_assignment {assignment} failed:\n{result.get('error', '')}")
    with open(students_csv, newline="", encoding="utf-8") as f:
        students = [row["id"] for row in csv.DictReader(f)]
    with Gradebook(api.coursedir.db_url, api.coursedir.course_id) as gb:
        for student in students:
            gb.update_or_create_student(student)
    print(f"{len(students)} students in the gradebook of {api.coursedir.course_id}")


if __name__ == "__main__":
    setup_course(*sys.argv[1:])
