"""A batch, end to end: grade every student of ``submitted/``, then write what the instructor gets.

The grader's core grades one student at a time, here or on Dask workers, and imports none of
the code that writes the files it leads to (results, grades.csv, feedback pages, the gradebook),
which reads the core's scores: so the batch that joins them lives above both, and the cluster is
one choice it makes.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from autograder.course_build.release import assignment_gradebook
from autograder.deadlines.schedule import Calendar
from autograder.grading.grader import Policy, grade_student, student_dirs
from autograder.integration.gradebook import write_gradebook
from autograder.outputs import report
from autograder.sandbox.runner import Limits, Sandbox, lent_or_own


def grade_batch(
    submitted: Path,
    out: Path,
    *,
    workers: int = 1,
    dask: str | None = None,
    unsafe: bool = False,
    policy: Policy = Policy(),
    limits: Limits | None = None,
    progress: Callable[[int, int], None] | None = None,
    calendar: Calendar | None = None,
    sandbox: Sandbox | None = None,
) -> list[dict]:
    """Grade every student not graded yet (resumable), then write grades.csv and feedback.

    One worker grades here, in this process; more (``workers``), or a Dask cluster at
    ``dask``, grade through Dask (``cluster.py``). The files are the same either way. The
    course's ``calendar`` sets the due date, times, extensions and penalties in the gradebook.
    A caller that grades batch after batch in one process may pass its own warm ``sandbox``
    (graded here under its limits, left running): each new one imports torch in a zygote.
    """
    limits = limits or Limits()
    done = report.graded_students(out)
    todo = [d for d in student_dirs(submitted) if d.parent.name not in done]
    finished = 0

    def save(result: dict) -> None:
        nonlocal finished
        report.save_result(out, result)
        finished += 1
        if progress:
            progress(finished, len(todo))

    with ThreadPoolExecutor(max_workers=1) as background:
        # nbgrader's record of the assignment, made (once) while the students are graded.
        assignment_db = background.submit(assignment_gradebook)
        if dask or workers > 1:
            from autograder.grading.cluster import (
                grade_on_cluster,  # imports Dask: only here
            )

            grade_on_cluster(
                todo, save, address=dask, workers=workers, policy=policy,
                limits=limits, unsafe=unsafe,
            )  # fmt: skip
        elif todo:
            with lent_or_own(sandbox, limits, unsafe=unsafe) as box:
                for student_dir in todo:
                    save(grade_student(student_dir, box, policy))
        results = report.load_results(out)
        report.write_grades_csv(out, results)
        report.write_feedback(out, results, calendar)
        write_gradebook(out, results, assignment_db.result(), calendar)
    return results
