"""The Canvas and Moodle exports, from a real gradebook of the release's notebooks.

The layouts are checked against what each LMS documents and reads, written out here as the
documents spell it (not taken from autograder.outputs.exports): Canvas's gradebook import ("How do I
import grades in the Gradebook?", and instructure/canvas-lms app/models/gradebook_importer.rb)
and Moodle's CSV grade import ("Grade import" in MoodleDocs, and
grade/import/grade_import_form.php).
"""

from __future__ import annotations

import csv
import hashlib
import re
import shutil
from pathlib import Path

import pytest
from conftest import nbgrader, recorded_result
from nbgrader.api import Gradebook

from autograder import notebooks
from autograder.__main__ import main as autograder_main
from autograder.course_build.release import assignment_gradebook
from autograder.integration.gradebook import write_gradebook
from autograder.outputs import exports
from autograder.paths import ASSIGNMENT, RELEASE_DIR

# Canvas: the student columns of its gradebook CSV, in order (Section last), and the row that
# gives points possible; "read only" there makes the importer skip a column.
CANVAS_HEADER = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
# Moodle: the user fields an identifier column can map to, as the import form names and orders
# them (its first, "userid", is Moodle's internal number, which nbgrader does not have).
MOODLE_USER_FIELDS = ["Username", "ID number", "Email address"]

# All autograded points; two hidden tests lost; in the class, nothing submitted.
FULL, SLIP, NONE = "ada", "bob", "cyd"
LOST = {"test_corr2d_multi_in_hidden", "test_compose_kernels_hidden"}
HOSTILE_IDS = [
    "=1+1",
    "+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1:A9)",
    'a,b"c',
    "line\nbreak",
    "\t=tab",
    " =space",
    "carriage\rreturn",
]
NAMES = {
    FULL: ("Ada", "Lovelace", "ada@example.edu", "101"),
    SLIP: ("Bob", '=HYPERLINK("http://evil")', "@bob", "LTI-9f3"),
    "=1+1": ("Points Possible", "Row", "x@example.edu", "7"),
}


def cell_points() -> dict[str, dict[str, tuple[float, bool]]]:
    """Per notebook (its name without .ipynb): each grade cell's points and whether it is a
    written answer, read from the release's nbgrader metadata."""
    points = {}
    for path in sorted(RELEASE_DIR.glob("*.ipynb")):
        cells = [c.metadata.get("nbgrader", {}) for c in notebooks.read(path).cells]
        points[path.stem] = {
            m["grade_id"]: (float(m["points"]), bool(m.get("solution")))
            for m in cells
            if m.get("grade")
        }
    return points


POINTS = cell_points()
AUTO = {nb: sum(p for p, w in cells.values() if not w) for nb, cells in POINTS.items()}
WRITTEN = {nb: sum(p for p, w in cells.values() if w) for nb, cells in POINTS.items()}
LOST_POINTS = {
    nb: sum(p for cell, (p, _) in cells.items() if cell in LOST)
    for nb, cells in POINTS.items()
}


@pytest.fixture(scope="module")
def gradebook_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The grade command's gradebook of a small class, with names where the LMS wants them."""
    out = tmp_path_factory.mktemp("graded")
    results = [recorded_result(FULL), recorded_result(SLIP, LOST)] + [
        recorded_result(s) for s in HOSTILE_IDS
    ]
    path = write_gradebook(out, results, assignment_gradebook())
    with Gradebook(f"sqlite:///{path}") as gb:
        for student, (first, last, email, lms_id) in NAMES.items():
            gb.update_or_create_student(
                student,
                first_name=first,
                last_name=last,
                email=email,
                lms_user_id=lms_id,
            )
        gb.update_or_create_student(NONE, first_name="Cyd")
    return path


@pytest.fixture
def course(gradebook_db: Path, tmp_path: Path) -> Path:
    """A copy of the gradebook to change, as an nbgrader course root holds it."""
    shutil.copy(gradebook_db, tmp_path / "gradebook.db")
    return tmp_path


def read(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def canvas_import(path: Path) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """What Canvas's importer takes from the file: the points possible of each column it
    imports, and each student's grades by SIS Login ID."""
    rows = read(path)
    header = rows[0]
    # The header: "Student", "ID", "SIS User ID", "SIS Login ID", then Section.
    assert header[:5] == CANVAS_HEADER
    # Any row whose first cell holds "Points Possible" is read as points, not as a student.
    assert [i for i, r in enumerate(rows) if "Points Possible" in r[0]] == [1]
    imported = [
        i for i in range(5, len(header)) if not re.search(r"read\s+only", rows[1][i])
    ]
    points = {header[i]: rows[1][i] for i in imported}
    grades = {r[3]: {header[i]: r[i] for i in imported} for r in rows[2:]}
    return points, grades


def moodle_import(path: Path, grade_items: set[str]) -> dict[str, dict[str, str]]:
    """What Moodle's CSV import takes with its default mapping: the user by the column named
    like a user field, and each "<item> (Real)" column into the grade item of that name."""
    rows = read(path)
    header = rows[0]
    # The form preselects the first user field, in its order, that a header spells.
    identifier = next(f for f in MOODLE_USER_FIELDS if f in header)
    assert identifier == "Username"
    mapped = {
        i: name
        for i, h in enumerate(header)
        if "(Real)" in h and (name := h.split("(Real)")[0].strip()) in grade_items
    }
    at = header.index(identifier)
    return {r[at]: {name: r[i] for i, name in mapped.items()} for r in rows[1:]}


def test_canvas_imports_the_autograded_total_until_written_answers_are_graded(
    course: Path,
) -> None:
    canvas, _ = exports.write_exports(course / "gradebook.db", course)
    points, grades = canvas_import(canvas)
    assert points == {
        ASSIGNMENT: exports.number(sum(AUTO.values()) + sum(WRITTEN.values()))
    }
    assert grades[FULL] == {ASSIGNMENT: exports.number(sum(AUTO.values()))}
    assert grades[SLIP] == {
        ASSIGNMENT: exports.number(sum(AUTO.values()) - sum(LOST_POINTS.values()))
    }
    assert grades[NONE] == {ASSIGNMENT: "0"}


def test_one_column_per_notebook_and_what_awaits_grading(course: Path) -> None:
    canvas, moodle = exports.write_exports(course / "gradebook.db", course)
    stems = sorted(p.stem for p in RELEASE_DIR.glob("*.ipynb"))
    by_login = {
        r[3]: dict(zip(read(canvas)[0], r, strict=True)) for r in read(canvas)[2:]
    }
    for nb in stems:
        assert by_login[FULL][f"{ASSIGNMENT}: {nb}"] == exports.number(AUTO[nb])
        assert by_login[SLIP][f"{ASSIGNMENT}: {nb}"] == exports.number(
            AUTO[nb] - LOST_POINTS[nb]
        )
    awaiting = f"{ASSIGNMENT}: written answers awaiting grading"
    assert by_login[FULL][awaiting] == exports.number(sum(WRITTEN.values()))
    assert by_login[NONE][awaiting] == "0"
    header = read(moodle)[0]
    assert [h for h in header if h.endswith("(Real)")] == [f"{ASSIGNMENT} (Real)"] + [
        f"{ASSIGNMENT}: {nb} (Real)" for nb in stems
    ]
    per_notebook = moodle_import(moodle, {f"{ASSIGNMENT}: {nb}" for nb in stems})
    assert per_notebook[SLIP] == {
        f"{ASSIGNMENT}: {nb}": exports.number(AUTO[nb] - LOST_POINTS[nb])
        for nb in stems
    }


def test_a_written_answer_counts_once_graded_in_formgrader(course: Path) -> None:
    db = course / "gradebook.db"
    with Gradebook(f"sqlite:///{db}") as gb:
        # What formgrader's API does with a score typed in: manual score, no longer pending.
        for cell, score in [("answer_cost_growth", 1.0), ("answer_backward", 1.5)]:
            grade = gb.find_grade(cell, "05-exercises", ASSIGNMENT, FULL)
            grade.manual_score, grade.needs_manual_grade = score, False
        gb.db.commit()
        nbgrader_score = gb.find_submission(ASSIGNMENT, FULL).score
    canvas, moodle = exports.write_exports(db, course)
    graded = sum(AUTO.values()) + 2.5
    assert nbgrader_score == graded  # nbgrader's own total agrees
    assert canvas_import(canvas)[1][FULL] == {ASSIGNMENT: exports.number(graded)}
    assert moodle_import(moodle, {ASSIGNMENT})[FULL] == {
        ASSIGNMENT: exports.number(graded)
    }
    rows = read(moodle)
    row = dict(zip(rows[0], next(r for r in rows if r[2] == FULL), strict=True))
    assert row[f"{ASSIGNMENT}: 05-exercises (Real)"] == exports.number(
        AUTO["05-exercises"] + 2.5
    )
    assert row[f"{ASSIGNMENT}: written answers awaiting grading"] == exports.number(
        sum(WRITTEN.values()) - 1 - 2  # the two answers graded were worth 1 and 2
    )


def test_moodle_maps_the_total_to_the_grade_item_of_the_assignment(
    course: Path,
) -> None:
    _, moodle = exports.write_exports(course / "gradebook.db", course)
    grades = moodle_import(moodle, {ASSIGNMENT})
    assert grades[FULL] == {ASSIGNMENT: exports.number(sum(AUTO.values()))}
    header = read(moodle)[0]
    assert header[:4] == ["First name", "Last name", "Username", "Email address"]
    ada = next(r for r in read(moodle)[1:] if r[2] == FULL)
    assert ada[:4] == ["Ada", "Lovelace", FULL, "ada@example.edu"]


def test_hostile_names_and_ids_stay_in_their_cells_and_never_run(course: Path) -> None:
    canvas, moodle = exports.write_exports(course / "gradebook.db", course)
    for path in (canvas, moodle):
        rows = read(path)
        students = 3 + len(HOSTILE_IDS)
        assert len(rows) == (2 if path == canvas else 1) + students
        for row in rows:
            assert len(row) == len(rows[0])
            for cell in row:
                assert not cell.lstrip().startswith(("=", "+", "-", "@")), cell
                assert not re.search(r"[\x00-\x1f\x7f]", cell), cell
    logins = [r[3] for r in read(canvas)[2:]]
    assert {"'=1+1", "'-2+3", "'@SUM(A1:A9)", "' =space", 'a,b"c', "line break"} <= set(
        logins
    )
    assert "'+cmd|' /C calc'!A0" in logins and "' =tab" in logins
    assert "carriage return" in logins
    rows = {r[3]: r for r in read(canvas)[2:]}
    # Canvas reads a student whose name holds "Points Possible" as a points row: not here.
    assert "Points Possible" not in rows["'=1+1"][0]
    assert rows["'=1+1"][1] == "7"  # a numeric lms_user_id is the Canvas user ID
    assert rows[SLIP][0] == '\'=HYPERLINK("http://evil"), Bob'
    assert rows[SLIP][1] == ""  # not a Canvas user ID: Canvas would read it as a number
    assert rows[FULL][:5] == ["Lovelace, Ada", "101", "", FULL, ""]
    moodle_rows = {r[2]: r for r in read(moodle)[1:]}
    assert moodle_rows[SLIP][3] == "'@bob"


def test_exporting_never_changes_the_gradebook(course: Path) -> None:
    # A folder name that URL parsing would cut at "#" or "?", or decode at "%20".
    db = course / "a #b?%20c" / "gradebook.db"
    db.parent.mkdir()
    (course / "gradebook.db").rename(db)
    before = hashlib.sha256(db.read_bytes()).digest()
    exports.write_exports(db, course / "out")
    assert hashlib.sha256(db.read_bytes()).digest() == before
    assert sorted(p.name for p in course.rglob("*")) == [
        "a #b?%20c",
        "canvas.csv",
        "gradebook.db",
        "moodle.csv",
        "out",
    ]
    assert len(read(course / "out" / "canvas.csv")) == 2 + 3 + len(HOSTILE_IDS)


def test_canvas_assignment_ids_and_titles_it_would_misread() -> None:
    student = exports.StudentGrades("s", "", "", "", "", {"nb": 1.0}, 1.0, 0.0)
    hw = exports.AssignmentGrades("hw (2)", ("nb",), {"nb": 2.0}, 2.0, (student,))
    header = exports.canvas_table([hw])[0]
    # Canvas reads "Name (123)" as its assignment 123: a name ending so must not say it.
    assert not any(re.search(r"\s\(\d+\)$", h) for h in header)
    assert exports.canvas_table([hw], {"hw (2)": 4711})[0][5] == "hw [2] (4711)"


def test_the_command_line_re_exports_and_says_what_awaits_grading(
    course: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = course / "lms"
    assert (
        autograder_main(
            ["export", "--gradebook", str(course / "gradebook.db"), "--out", str(out)]
        )
        == 0
    )
    assert sorted(p.name for p in out.iterdir()) == ["canvas.csv", "moodle.csv"]
    note = capsys.readouterr().err  # every student who submitted, all answers ungraded
    assert (
        f"{2 + len(HOSTILE_IDS)} students have written answers not graded yet" in note
    )
    assert (
        autograder_main(
            ["export", "--gradebook", str(course / "none.db"), "--out", str(out)]
        )
        == 2
    )
    assert not (course / "none.db").exists()


@pytest.mark.slow  # two runs of the real nbgrader command, each importing torch: ~10 s
def test_nbgrader_export_runs_the_plugins(course: Path) -> None:
    canvas, moodle = exports.write_exports(course / "gradebook.db", course / "direct")
    log = nbgrader(
        course,
        "export",
        "--exporter=autograder.outputs.exports.CanvasExport",
        "--to=c.csv",
    )
    assert "written answers not graded yet" in log
    assert (course / "c.csv").read_bytes() == canvas.read_bytes()
    nbgrader(
        course,
        "export",
        "--exporter=autograder.outputs.exports.MoodleExport",
        "--to=m.csv",
        f"--student=['{FULL}']",
    )
    assert read(course / "m.csv") == [
        r for r in read(moodle) if r[2] in ("Username", FULL)
    ]
