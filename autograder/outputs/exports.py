"""Grades for the course's LMS: a Canvas gradebook import CSV and a Moodle grade import CSV.

Both are read from an nbgrader gradebook with nbgrader's own API, so the same exporter serves the
grade command's ``G/gradebook.db`` and a stock nbgrader course's ``gradebook.db``, and both are
nbgrader export plugins::

    nbgrader export --exporter=autograder.outputs.exports.CanvasExport --to canvas.csv
    nbgrader export --exporter=autograder.outputs.exports.MoodleExport --to moodle.csv
    python -m autograder export --gradebook G/gradebook.db --out G/   # both files

Each file has, per student, the assignment's total and one column per notebook. A written answer
(nbgrader "manually graded answer") counts only once it has been graded in formgrader: until then
it adds nothing, so right after autograding the LMS gets the autograded points, and the full total
after formgrader grading and a second export. A column per assignment shows the points still
awaiting grading, and the exporter says how many students have some. A student in the gradebook
who submitted nothing gets 0, and the course calendar's late penalties are taken off
(``autograder/deadlines/``), the same rule as both grading paths apply.

Which column Canvas and Moodle import, and how students are matched, is in ``canvas_table`` and
``moodle_table``. Every text cell is made safe for a spreadsheet (``cell_text``): student names
and ids are typed by people, and a cell that starts with ``=`` runs as a formula in Excel.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import re
import sys
import tempfile
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from nbgrader.api import (
    Assignment,
    Grade,
    Gradebook,
    Notebook,
    Student,
    SubmittedAssignment,
    SubmittedNotebook,
)
from nbgrader.plugins import ExportPlugin
from sqlalchemy.orm import Query
from traitlets import Dict, Int, Unicode

from autograder.deadlines.schedule import Calendar, load_calendar, read_only_gradebook

# Canvas: "How do I import grades in the Gradebook?" (Canvas Instructor Guide,
# community.canvaslms.com) and the importer that reads the file (instructure/canvas-lms,
# app/models/gradebook_importer.rb): the header starts with these student columns (the last must
# be Section), then one column per assignment, "Assignment Name (assignment id)", or a name that
# Canvas matches to an assignment's title or, after asking, creates as a new assignment.
CANVAS_STUDENT_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
# The row whose first cell holds "Points Possible" gives each column's points (a new assignment
# gets them); "(read only)" there makes Canvas skip the column, as it does for its own computed
# columns in an export.
CANVAS_POINTS_POSSIBLE = "    Points Possible"
CANVAS_READ_ONLY = "(read only)"

# Moodle: "Grade import" (MoodleDocs, https://docs.moodle.org/405/en/Grade_import) and the form that
# maps the columns (moodle/moodle, grade/import/grade_import_form.php): one column identifies the
# user ("Map from"), mapped to one of these user fields ("Map to"). The other columns are mapped
# to grade items, "New grade item" or "Ignore" (the default). Recent versions preselect the user
# field that a header spells exactly, and map a header "<grade item name> (Real)", as Moodle's own
# export writes it, to the grade item of that name; older ones leave both to the instructor.
# Comma-separated, UTF-8. A row whose user is not found cancels the whole import.
# The fields are "User ID" (Moodle's internal number), "Username", "ID number" and "Email
# address"; nbgrader knows a login and often an email, and "ID number" is the institution's.
MOODLE_USERNAME = "Username"
MOODLE_EMAIL = "Email address"
MOODLE_FIRST_NAME = "First name"  # as in Moodle's own grade export
MOODLE_LAST_NAME = "Last name"
MOODLE_REAL = "(Real)"

AWAITING = "written answers awaiting grading"
# Cells that start with these are formulas in Excel, LibreOffice and Google Sheets (OWASP, "CSV
# Injection"); tab and carriage return, also listed there, become spaces first.
FORMULA_STARTS = ("=", "+", "-", "@")


@dataclass(frozen=True)
class StudentGrades:
    """One student's points in one assignment, as the LMS should get them."""

    id: str
    first_name: str
    last_name: str
    email: str
    lms_user_id: str
    notebooks: dict[str, float]  # graded points, late penalty taken off, per notebook
    total: float
    awaiting: float  # points of written answers not graded yet (not in the total)


@dataclass(frozen=True)
class AssignmentGrades:
    """An assignment's notebooks, their maximum points and every student's grades."""

    name: str
    notebooks: tuple[str, ...]
    max_scores: dict[str, float]  # per notebook, written answers included
    max_total: float
    students: tuple[StudentGrades, ...]


def collect(
    gb: Gradebook,
    assignments: Iterable[str] = (),
    students: Iterable[str] = (),
    calendars: Callable[[str], Calendar] | None = None,
) -> list[AssignmentGrades]:
    """Every assignment's grades (or those named), for every student (or those named).

    Scores come from nbgrader's own ``Grade.score`` (a manual score over the autograder's), and a
    grade that ``needs_manual_grade`` counts nothing yet: it is a written answer nobody graded.
    The late penalty is the course calendar's (``calendars``: an assignment's ``Calendar``; none,
    no penalty), taken off the score as it is now: a written answer graded after autograding is
    penalised like the rest, and a moved due date or a new extension counts at the next export.
    """
    calendars = calendars or (lambda name: Calendar(name, Path(".")))
    wanted, who = set(assignments), set(students)
    people = sorted(
        (s for s in gb.students if not who or s.id in who),
        key=lambda s: (s.last_name or "", s.first_name or "", s.id),
    )
    return [
        _assignment_grades(gb, assignment, people, calendars(assignment.name))
        for assignment in gb.assignments
        if not wanted or assignment.name in wanted
    ]


def _assignment_grades(
    gb: Gradebook, assignment: Assignment, people: list[Student], calendar: Calendar
) -> AssignmentGrades:
    """One query for every grade of the assignment: a thousand students' objects one by one
    would take thousands of queries."""
    notebooks = tuple(sorted(nb.name for nb in assignment.notebooks))
    max_scores = {nb.name: _finite(nb.max_score) for nb in assignment.notebooks}
    counted: defaultdict[tuple[str, str], float] = defaultdict(float)
    awaiting: defaultdict[str, float] = defaultdict(float)
    grades = (
        gb.db.query(
            SubmittedAssignment.student_id,
            Notebook.name,
            Grade.score,
            Grade.max_score,
            Grade.needs_manual_grade,
        )
        .select_from(Grade)
        .join(SubmittedNotebook, Grade.notebook_id == SubmittedNotebook.id)
    )
    for student, notebook, score, max_score, needs_manual_grade in _of(
        grades, assignment
    ):
        if needs_manual_grade:
            awaiting[student] += _finite(max_score)
        else:
            counted[student, notebook] += _finite(score)
    rows = []
    for person in people:
        raw = {nb: counted[person.id, nb] for nb in notebooks}
        lateness = calendar.lateness(person.id)
        late = {nb: lateness.penalty(raw[nb]) for nb in notebooks}
        rows.append(
            StudentGrades(
                id=person.id,
                first_name=person.first_name or "",
                last_name=person.last_name or "",
                email=person.email or "",
                lms_user_id=person.lms_user_id or "",
                notebooks={nb: max(0.0, raw[nb] - late[nb]) for nb in notebooks},
                # As nbgrader's own CSV export: the penalty comes off the assignment's score.
                total=max(0.0, sum(raw.values()) - sum(late.values())),
                awaiting=awaiting[person.id],
            )
        )
    return AssignmentGrades(
        name=assignment.name,
        notebooks=notebooks,
        max_scores=max_scores,
        max_total=sum(max_scores.values()),
        students=tuple(rows),
    )


def _of(query: Query, assignment: Assignment) -> Query:
    """A query on submitted notebooks narrowed to ``assignment``'s, with their notebook."""
    return (
        query.join(Notebook, SubmittedNotebook.notebook_id == Notebook.id)
        .join(
            SubmittedAssignment,
            SubmittedNotebook.assignment_id == SubmittedAssignment.id,
        )
        .filter(SubmittedAssignment.assignment_id == assignment.id)
    )


def _finite(value: float | None) -> float:
    """A gradebook's number, or an error: an LMS must never import nan or inf as a grade."""
    number = float(value or 0.0)
    if not math.isfinite(number):
        raise ValueError(f"the gradebook holds a score that is not a number: {value!r}")
    return number


def cell_text(value: object) -> str:
    """Text that stays one CSV cell and is never run as a spreadsheet formula.

    Control characters (newlines, tabs, ...) and line separators become spaces and lone
    surrogates "?", and a cell that would start with = + - @ gets a leading apostrophe, OWASP's
    advice: the text stays readable, and a spreadsheet shows it as text. An identifier changed
    that way matches nobody in the LMS, so that student is reported as unknown at import.
    """
    text = "" if value is None else str(value)
    text = text.encode("utf-8", "replace").decode("utf-8")
    text = "".join(
        " " if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch for ch in text
    )
    return "'" + text if text.lstrip().startswith(FORMULA_STARTS) else text


def number(value: float) -> str:
    """Points as the LMS reads them: a dot, no exponent, at most four decimals."""
    return f"{value:.4f}".rstrip("0").rstrip(".")


def _canvas_title(title: str) -> str:
    """A safe column title that Canvas cannot read as "Name (assignment id)": a name that ends
    in " (12)" would be matched to Canvas's assignment 12, whatever that is."""
    return re.sub(r"\s\((\d+)\)\Z", r" [\1]", cell_text(title))


def _canvas_student(grades: StudentGrades) -> str:
    """Canvas's sortable name, "Last, First" (it matches students by name last of all), and
    never the text "Points Possible", which would make Canvas read the row as points."""
    names = [n for n in (grades.last_name, grades.first_name) if n]
    name = cell_text(", ".join(names) if names else grades.id)
    return re.sub(r"(?i)(points)\s+(possible)", "\\1\u00a0\\2", name)


def canvas_table(
    assignments: Sequence[AssignmentGrades], ids: dict[str, int] | None = None
) -> list[list[str]]:
    """Rows of Canvas's gradebook import CSV.

    Canvas matches a student by Canvas user ID (``ID``), else by ``SIS User ID``, else by
    ``SIS Login ID``, else by name. nbgrader's student id is the JupyterHub login, which is
    the LMS login, so it goes in ``SIS Login ID``; ``ID`` holds nbgrader's ``lms_user_id`` (the
    Canvas user ID when students came through LTI) when it is a number, since Canvas reads that
    column as one. ``SIS User ID`` (the institution's student number) stays empty: nbgrader
    does not know it, and a login there could name another student.

    Canvas imports each assignment's total: a column named by the assignment, or
    "Name (id)" with its Canvas assignment id from ``ids``. The notebook and awaiting-grading
    columns are for reading: "(read only)" in the Points Possible row, so Canvas skips them and
    its totals never count the points twice.
    """
    ids = ids or {}
    header = list(CANVAS_STUDENT_COLUMNS)
    points = [CANVAS_POINTS_POSSIBLE] + [""] * (len(CANVAS_STUDENT_COLUMNS) - 1)
    for a in assignments:
        title = _canvas_title(a.name)
        header += [f"{title} ({ids[a.name]})" if a.name in ids else title]
        header += [_canvas_title(f"{a.name}: {nb}") for nb in a.notebooks]
        header += [_canvas_title(f"{a.name}: {AWAITING}")]
        points += [number(a.max_total)]
        points += [CANVAS_READ_ONLY] * (len(a.notebooks) + 1)
    table = [header, points]
    for row in _student_rows(assignments):
        first = row[0]
        lms_id = first.lms_user_id if re.fullmatch(r"[0-9]+", first.lms_user_id) else ""
        cells = [_canvas_student(first), lms_id, "", cell_text(first.id), ""]
        table.append(cells + _grade_cells(row))
    return table


def moodle_table(assignments: Sequence[AssignmentGrades]) -> list[list[str]]:
    """Rows of Moodle's grade import CSV.

    nbgrader's student id, the login, goes in ``Username``, which Moodle preselects as the
    identifier (or the instructor picks it); ``Email address`` is there to map instead when the
    logins differ. The total is "<assignment> (Real)", mapped at once to a Moodle grade item
    named like the assignment; each notebook is "<assignment>: <notebook> (Real)", mapped only
    if such an item exists, else left at Ignore, so Moodle's course total never counts the
    points twice unless chosen. The awaiting-grading column has no "(Real)": it is for reading.
    """
    header = [MOODLE_FIRST_NAME, MOODLE_LAST_NAME, MOODLE_USERNAME, MOODLE_EMAIL]
    for a in assignments:
        header += [cell_text(f"{a.name} {MOODLE_REAL}")]
        header += [cell_text(f"{a.name}: {nb} {MOODLE_REAL}") for nb in a.notebooks]
        header += [cell_text(f"{a.name}: {AWAITING}")]
    table = [header]
    for row in _student_rows(assignments):
        first = row[0]
        cells = [
            cell_text(v)
            for v in (first.first_name, first.last_name, first.id, first.email)
        ]
        table.append(cells + _grade_cells(row))
    return table


def _grade_cells(row: tuple[StudentGrades, ...]) -> list[str]:
    """One student's numbers, assignment after assignment: total, notebooks, awaiting."""
    cells = []
    for grades in row:
        cells += [number(grades.total)]
        cells += [number(grades.notebooks[nb]) for nb in grades.notebooks]
        cells += [number(grades.awaiting)]
    return cells


def _student_rows(
    assignments: Sequence[AssignmentGrades],
) -> list[tuple[StudentGrades, ...]]:
    """Each student's grades in every assignment, one tuple per student (``collect`` lists the
    same students, in the same order, for every assignment)."""
    return list(zip(*(a.students for a in assignments), strict=True))


def awaiting_note(assignments: Sequence[AssignmentGrades]) -> str | None:
    """What the instructor must know before importing: whose written answers are not counted."""
    waiting = {s.id for a in assignments for s in a.students if s.awaiting}
    if not waiting:
        return None
    points = sum(s.awaiting for a in assignments for s in a.students)
    return (
        f"{len(waiting)} students have written answers not graded yet ({number(points)} points "
        "in all): their totals count the graded points only. Grade the answers in formgrader, "
        "then export again."
    )


def write_csv(path: Path, table: list[list[str]]) -> Path:
    """Write whole or not at all (the LMS must never get half a class), readable by you alone
    (mode 0600: it is every student's grades)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        "w",
        encoding="utf-8",
        newline="",
        dir=path.parent,
        prefix=f".{path.name}.",
        delete=False,
    ) as f:
        try:
            csv.writer(f).writerows(table)
        except BaseException:
            Path(f.name).unlink()
            raise
    os.replace(f.name, path)
    return path


def open_gradebook(path: Path) -> Gradebook:
    """nbgrader's Gradebook on ``path``, read-only: exporting never changes the gradebook that
    formgrader may be writing at the same time."""
    return read_only_gradebook(path)


def write_exports(
    gradebook_db: Path, out_dir: Path, course: Path | None = None
) -> list[Path]:
    """Write ``out_dir/canvas.csv`` and ``out_dir/moodle.csv`` from a gradebook, with the late
    penalties of ``course``'s calendar (none without a course)."""
    return _write_exports(gradebook_db, out_dir, course)[0]


def _write_exports(
    gradebook_db: Path, out_dir: Path, course: Path | None
) -> tuple[list[Path], str | None]:
    with open_gradebook(gradebook_db) as gb:
        grades = collect(
            gb,
            calendars=(lambda name: load_calendar(course, name)) if course else None,
        )
    paths = [
        write_csv(out_dir / "canvas.csv", canvas_table(grades)),
        write_csv(out_dir / "moodle.csv", moodle_table(grades)),
    ]
    return paths, awaiting_note(grades)


class _LmsExport(ExportPlugin):
    """An ``nbgrader export`` plugin: ``--to``, ``--assignment`` and ``--student`` as for
    nbgrader's CSV exporter."""

    default_to: ClassVar[str]

    def table(self, grades: list[AssignmentGrades]) -> list[list[str]]:
        raise NotImplementedError

    def export(self, gradebook: Gradebook) -> None:
        grades = collect(
            gradebook,
            [str(a) for a in self.assignment],
            [str(s) for s in self.student],
            # nbgrader export runs in the course root, on the course's own gradebook.
            lambda name: load_calendar(
                Path.cwd(), name, config=self.config, gradebook=gradebook
            ),
        )
        dest = write_csv(Path(self.to or self.default_to), self.table(grades))
        count = len(grades[0].students) if grades else 0
        self.log.info("Exported %d students' grades to %s", count, dest)
        note = awaiting_note(grades)
        if note:
            self.log.warning(note)


class CanvasExport(_LmsExport):
    """Canvas's gradebook import CSV (``canvas_table``)."""

    default_to = "canvas.csv"
    assignment_ids = Dict(
        key_trait=Unicode(),
        value_trait=Int(),
        help="Canvas assignment id of each nbgrader assignment, for an exact match: "
        "{'channels': 12345} writes the column 'channels (12345)'. Without one, Canvas "
        "matches the assignment by its name or offers to create it.",
    ).tag(config=True)

    def table(self, grades: list[AssignmentGrades]) -> list[list[str]]:
        return canvas_table(grades, self.assignment_ids)


class MoodleExport(_LmsExport):
    """Moodle's grade import CSV (``moodle_table``)."""

    default_to = "moodle.csv"

    def table(self, grades: list[AssignmentGrades]) -> list[list[str]]:
        return moodle_table(grades)


def run(args: argparse.Namespace) -> int:
    """``python -m autograder export``: both files, or a status 2 and the reason."""
    try:
        paths, note = _write_exports(args.gradebook, args.out, args.course)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print("wrote " + ", ".join(str(p) for p in paths))
    if note:
        print(f"note: {note}", file=sys.stderr)
    return 0
