"""The attack corpus through stock ``nbgrader autograde`` with this grader's plugin: every attacker
and bystander gets the grade command's scores (``attackers.py`` holds the students).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from attackers import STUDENTS, honest_scores, write_students
from conftest import build_course, nbgrader
from nbgrader.api import Gradebook

from autograder.paths import ASSIGNMENT

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]


@pytest.fixture(scope="module")
def stock_graded(tmp_path_factory) -> Path:
    course = tmp_path_factory.mktemp("stock-attacks")
    build_course(course, {})
    write_students(course)
    nbgrader(course, "generate_assignment", ASSIGNMENT, "--force")
    nbgrader(course, "autograde", ASSIGNMENT)
    return course


def stock_scores(course: Path, student: str) -> dict[str, float]:
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        return {
            grade.name: grade.score
            for nb in gb.find_submission(ASSIGNMENT, student).notebooks
            for grade in nb.grades
        }


@pytest.mark.parametrize("student", sorted(STUDENTS))
def test_stock_autograde_gives_attackers_and_bystanders_the_grade_commands_scores(
    stock_graded, student
):
    expected = {
        cell: score or 0.0 for cell, (score, _) in honest_scores(student).items()
    }
    assert stock_scores(stock_graded, student) == expected
