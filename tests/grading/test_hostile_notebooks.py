"""Hostile notebook files: each costs only its own notebook, with a status that says why.

Written as an attacker submits files: the real release with the instructor's answers
(``corpus.solved``), then notebook 01 replaced by a link to the solutions, a FIFO, a device, a
6 MB file, JSON nested 600 or 100,000 deep, hostile types in nbgrader metadata, a lone surrogate,
bytes that are not UTF-8 or 3,000 cells. Reading never follows a link, blocks or raises; stock
nbgrader's own copying of a submission is hardened the same way. One batch through the
sandboxed grader checks that a bystander keeps exactly full marks.
"""

from __future__ import annotations

import copy
import csv
import json
import os
import shutil
import stat
import threading
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest
from conftest import (
    NOTEBOOK_OF,
    build_course,
    full_marks,
    nbgrader,
    write_submission,
    written_answer_ids,
)
from corpus import MULTI_IN, solved

from autograder import EXERCISES, notebooks
from autograder.batch import grade_batch
from autograder.grading.grader import manual_items, student_dirs
from autograder.grading.scoring import MANUAL
from autograder.grading.submission import (
    MAX_NOTEBOOK_BYTES,
    Answer,
    Problem,
    edited_locked_cells,
    find_answer,
    read_notebook,
    submitted_names,
)
from autograder.integration.feedback_pages import TypesetFeedbackExporter
from autograder.integration.plugin import SetDuplicatesAside, _as_submitted
from autograder.notebooks import nbgrader_meta
from autograder.outputs import report
from autograder.paths import ASSIGNMENT, RELEASE_DIR, SOURCE_DIR
from autograder.sandbox.runner import Limits

NB1 = NOTEBOOK_OF[MULTI_IN]
SOLUTION = SOURCE_DIR / NB1  # holds the hidden tests
PLACEHOLDER = "@@json@@"
LIMITS = Limits(wall_seconds=3.0, cpu_seconds=3)


def within(seconds: float, fn: Callable, *args):
    """``fn(*args)``, failing the test if it has not returned after ``seconds`` (a FIFO blocks)."""
    outcome: list = []
    thread = threading.Thread(
        target=lambda: outcome.append(_call(fn, *args)), daemon=True
    )
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"{fn.__name__} still running after {seconds} s"
    result, error = outcome[0]
    if error is not None:
        raise error
    return result


def _call(fn: Callable, *args) -> tuple:
    try:
        return fn(*args), None
    except Exception as error:
        return None, error


def rewrite(path: Path, change: Callable[[dict], None], json_text: str = "") -> None:
    """Edit the notebook's JSON; ``PLACEHOLDER`` strings become ``json_text`` verbatim."""
    raw = json.loads(path.read_text())
    change(raw)
    path.write_text(json.dumps(raw).replace(json.dumps(PLACEHOLDER), json_text))


def cell_with_id(nb: dict, cell_id: str = "corr2d-multi-in") -> dict:
    """A cell by its nbformat id, in raw JSON or a parsed notebook (corr2d_multi_in's answer
    unless told): the tests below break the nbgrader metadata a grade_id lookup would use."""
    return next(c for c in nb["cells"] if c.get("id") == cell_id)


EXAMPLE, HIDDEN = "test-corr2d-multi-in-example", "test-corr2d-multi-in-hidden"


def set_answer(key: str, value, json_text: str = "") -> Callable[[Path], None]:
    return lambda path: rewrite(
        path, lambda raw: cell_with_id(raw).__setitem__(key, value), json_text
    )


def set_nbgrader(key: str, value) -> Callable[[Path], None]:
    return lambda path: rewrite(
        path,
        lambda raw: cell_with_id(raw)["metadata"]["nbgrader"].__setitem__(key, value),
    )


def nested(depth: int) -> Callable[[Path], None]:
    return lambda path: rewrite(
        path,
        lambda raw: raw["metadata"].__setitem__("deep", PLACEHOLDER),
        "[" * depth + "]" * depth,
    )


def replaced(make: Callable[[Path], None]) -> Callable[[Path], None]:
    def attack(path: Path) -> None:
        path.unlink()
        make(path)

    return attack


def device(path: Path) -> None:
    try:  # a /dev/zero: reading it never ends
        os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 5))
    except PermissionError:
        pytest.skip("creating a device node needs CAP_MKNOD")


def too_large(path: Path) -> None:
    """A real notebook whose outputs were never cleared."""
    nb = notebooks.read(path)
    next(c for c in nb.cells if c.cell_type == "code").outputs = [
        nbformat.v4.new_output("stream", text="x" * (MAX_NOTEBOOK_BYTES + 1_000_000))
    ]
    notebooks.write(nb, path)


def many_cells(path: Path) -> None:
    nb = notebooks.read(path)
    # Ids of our own: nbformat's random 8-hex ids collide about once in a thousand such notebooks.
    nb.cells += [
        nbformat.v4.new_markdown_cell(f"cell {i}", id=f"many-{i}") for i in range(3_000)
    ]
    notebooks.write(nb, path)


def not_utf8(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(
        data.replace(b"def corr2d_multi_in", b"def \xff\xfecorr2d_multi_in", 1)
    )


def repeated_key(path: Path) -> None:
    """Two grade_ids in one object: parsers disagree on which one counts."""
    text = path.read_text()
    old = '"grade_id": "corr2d_multi_in"'
    path.write_text(text.replace(old, f'"grade_id": "given_x",\n {old}', 1))


# attack -> (what it does to notebook 01, the status that notebook gets)
ATTACKS: dict[str, tuple[Callable[[Path], None], str]] = {
    "link-to-solutions": (
        replaced(lambda p: p.symlink_to(SOLUTION)),
        "not-a-regular-file",
    ),
    "relative-link": (
        replaced(lambda p: p.symlink_to(os.path.relpath(SOLUTION, p.parent))),
        "not-a-regular-file",
    ),
    "fifo": (replaced(os.mkfifo), "not-a-regular-file"),
    "device": (replaced(device), "not-a-regular-file"),
    "folder": (replaced(Path.mkdir), "not-a-regular-file"),
    "6-MB": (too_large, "too-large"),
    "nested-600": (nested(600), "malformed-notebook"),
    "nested-100000": (nested(100_000), "malformed-notebook"),
    "nbgrader-a-string": (
        set_answer("metadata", {"nbgrader": "solution"}),
        "malformed-notebook",
    ),
    "nbgrader-a-list": (
        set_answer("metadata", {"nbgrader": [1, 2]}),
        "malformed-notebook",
    ),
    "grade-id-a-number": (set_nbgrader("grade_id", 7), "malformed-notebook"),
    "grade-id-a-list": (
        set_nbgrader("grade_id", ["corr2d_multi_in"]),
        "malformed-notebook",
    ),
    # stock nbgrader stops its whole batch on a schema_version it does not know
    "schema-version-99": (set_nbgrader("schema_version", 99), "malformed-notebook"),
    "repeated-key": (repeated_key, "malformed-notebook"),
    "cells-not-a-list": (
        lambda p: rewrite(
            p, lambda raw: raw.__setitem__("cells", {"0": raw["cells"][0]})
        ),
        "wrong-format",
    ),
    "source-a-number": (set_answer("source", 42), "wrong-format"),
    "source-lines-not-strings": (
        set_answer("source", [1, ["x"], None]),
        "wrong-format",
    ),
    "cell-type-odd": (set_answer("cell_type", "python"), "wrong-format"),
    "cell-id-a-list": (set_answer("id", ["corr2d-multi-in"]), "wrong-format"),
    "nbformat-minor-a-string": (
        lambda p: rewrite(p, lambda raw: raw.__setitem__("nbformat_minor", "5")),
        "wrong-format",
    ),
    "lone-surrogate": (
        set_answer("source", PLACEHOLDER, '"def corr2d_multi_in(X, K):\\ud800\\n"'),
        "malformed-notebook",
    ),
    "not-utf8": (not_utf8, "not-a-notebook"),
    "3000-cells": (many_cells, "malformed-notebook"),
    "200k-characters-in-a-cell": (
        set_answer("source", "#" * 200_000),
        "malformed-notebook",
    ),
}


def victim(tmp_path: Path, student: str = "victim") -> Path:
    """A submission of the instructor's answers; the attacks then replace its notebook 01."""
    return write_submission(tmp_path, student, solved()) / NB1


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_hostile_file_is_a_problem_with_its_status(tmp_path, attack):
    path = victim(tmp_path)
    make, status = ATTACKS[attack]
    make(path)
    problem = within(30, read_notebook, path)
    assert isinstance(problem, Problem)
    assert problem.status == status, problem.message
    assert problem.message.encode("utf-8") and len(problem.message) < 400


def test_the_untouched_submission_is_read(tmp_path):
    assert not isinstance(read_notebook(victim(tmp_path)), Problem)


def test_a_nesting_cap_is_found_without_parsing(tmp_path):
    """Five million opening brackets: rejected in well under a parser's recursion."""
    path = victim(tmp_path)
    path.write_bytes(b"[" * (MAX_NOTEBOOK_BYTES - 10))
    assert within(20, read_notebook, path).status == "malformed-notebook"


def test_a_linked_student_or_assignment_folder_is_never_followed(tmp_path):
    """``channels`` a link to solutions/, or the student's folder a link to another student's:
    listed, so the student shows in grades.csv, but nothing behind the link is read."""
    bystander = write_submission(tmp_path, "bystander", solved())
    linked_channels = tmp_path / "submitted" / "mallory"
    linked_channels.mkdir()
    (linked_channels / ASSIGNMENT).symlink_to(SOURCE_DIR)
    (tmp_path / "submitted" / "trudy").symlink_to(bystander.parent)
    folders = student_dirs(tmp_path / "submitted")
    assert [d.parent.name for d in folders] == ["bystander", "mallory", "trudy"]
    for folder in folders[1:]:
        for path in sorted(RELEASE_DIR.glob("*.ipynb")):
            problem = read_notebook(folder / path.name)
            assert isinstance(problem, Problem)
            assert problem.status == "not-a-regular-file"
            assert "symbolic link" in problem.message
        assert submitted_names(folder) == []
    assert NB1 in submitted_names(folders[0])


def test_unknown_names_are_listed_printable_and_never_followed(tmp_path):
    folder = victim(tmp_path).parent
    (folder / "my-copy.ipynb").symlink_to(SOLUTION)
    os.mkfifo(folder / "pipe.ipynb")
    Path(os.fsdecode(os.fsencode(folder) + b"/caf\xe9.ipynb")).write_text("{}")
    names = within(10, submitted_names, folder)
    assert {"my-copy.ipynb", "pipe.ipynb", "caf\\udce9.ipynb"} <= set(names)
    assert "\n".join(names).encode("utf-8")


def test_hostile_types_that_nbformat_allows_never_raise():
    """nbformat's schema lets metadata be anything: the grader's readers type-check it."""
    nb = notebooks.read(RELEASE_DIR / NB1)
    release = notebooks.read(RELEASE_DIR / NB1)
    cell_with_id(nb).metadata.nbgrader = "corr2d_multi_in"
    cell_with_id(nb, EXAMPLE).metadata.nbgrader["grade_id"] = [
        "test_corr2d_multi_in_example"
    ]
    cell_with_id(nb, HIDDEN).metadata.nbgrader["points"] = "two"
    cell_with_id(nb, HIDDEN).source = 42
    assert find_answer(nb, MULTI_IN).status == "missing-cell"
    assert sorted(p.message for p in edited_locked_cells(nb, release)) == [
        "locked cell 'test_corr2d_multi_in_example' was deleted",
        "locked cell 'test_corr2d_multi_in_hidden' was edited",
    ]
    exercises = notebooks.read(RELEASE_DIR / NOTEBOOK_OF["compose_kernels"])
    for cell in exercises.cells:
        if isinstance(
            cell.metadata.get("nbgrader"), dict
        ) and cell.metadata.nbgrader.get("solution"):
            cell.source = ["not", "joined"]
            cell.metadata.nbgrader["points"] = None
    released = notebooks.read(RELEASE_DIR / NOTEBOOK_OF["compose_kernels"])
    assert {item.status for item in manual_items(released, exercises)} <= {
        "no-answer",
        MANUAL,
    }


def test_a_feedback_page_of_hostile_types_is_written_without_the_setup_cells():
    """The feedback exporter leaves out the setup cells by their id or their source: a cell
    whose nbgrader metadata is a string, or whose grade_id is a list, must not stop the
    student's page."""
    nb = notebooks.read(RELEASE_DIR / NB1)
    cell_with_id(nb).metadata.nbgrader = "corr2d_multi_in"
    cell_with_id(nb, EXAMPLE).metadata.nbgrader["grade_id"] = [
        "test_corr2d_multi_in_example"
    ]
    resources = {"nbgrader": {"notebook": Path(NB1).stem}}
    page, _ = TypesetFeedbackExporter().from_notebook_node(nb, resources)
    assert "corr2d_multi_in" in page
    assert "check kit: run it" not in page and "installs what is miss" not in page


def test_a_copied_answer_beside_hostile_types_is_graded_as_duplicated_not_raised():
    """Stock autograde sets a copied graded cell aside and counts the copies again when it
    grades: a string in place of a cell's nbgrader metadata, or a list grade_id, in the same
    notebook must not stop that."""
    nb = notebooks.read(RELEASE_DIR / NB1)
    answer = cell_with_id(nb)
    twin = copy.deepcopy(answer)
    twin.id = "copied"
    nb.cells.insert(nb.cells.index(answer) + 1, twin)
    cell_with_id(nb, EXAMPLE).metadata.nbgrader["grade_id"] = [
        "test_corr2d_multi_in_example"
    ]
    cell_with_id(nb, HIDDEN).metadata.nbgrader = "test_corr2d_multi_in_hidden"
    nb, _ = SetDuplicatesAside().preprocess(nb, {})
    graded = _as_submitted(nb)
    copies = [c for c in graded.cells if nbgrader_meta(c).get("grade_id") == MULTI_IN]
    assert len(copies) == 2
    assert find_answer(graded, MULTI_IN).status == "duplicated-cell"


def test_a_code_cell_without_string_source_is_a_changed_cell():
    nb = notebooks.read(RELEASE_DIR / NB1)
    cell_with_id(nb).source = ["x = 1"]
    assert find_answer(nb, MULTI_IN).status == "changed-cell"
    nb = notebooks.read(RELEASE_DIR / NB1)
    assert isinstance(find_answer(nb, MULTI_IN), Answer)


# Stock nbgrader: the exporter that nbgrader_config.py installs, and nbgrader's own copying.


def test_stock_nbgrader_gets_the_release_for_a_link_to_the_solutions(tmp_path):
    from autograder.integration.plugin import UNREADABLE, TolerantNotebookExporter

    path = victim(tmp_path)
    ATTACKS["link-to-solutions"][0](path)
    nb, resources = TolerantNotebookExporter().from_filename(str(path))
    nb = nbformat.reads(nb, as_version=4)
    assert nb.metadata[UNREADABLE]["status"] == "not-a-regular-file"
    assert "BEGIN HIDDEN TESTS" not in json.dumps(nb)
    assert resources["metadata"]["name"] == path.stem


def test_a_mark_forged_by_the_student_is_dropped_and_the_grader_own_kept(tmp_path):
    from autograder.integration.plugin import UNREADABLE, TolerantNotebookExporter

    exporter = TolerantNotebookExporter()
    path = victim(tmp_path)
    rewrite(
        path,
        lambda raw: raw["metadata"].__setitem__(
            UNREADABLE, {"status": "passed", "message": 3, "key": "guess"}
        ),
    )
    forged, _ = exporter.from_filename(str(path))
    assert UNREADABLE not in nbformat.reads(forged, as_version=4).metadata
    # nbgrader's first pass writes the marked release to autograded/; its second reads it back
    ATTACKS["fifo"][0](path)
    first, _ = exporter.from_filename(str(path))
    autograded = tmp_path / "autograded" / "victim" / ASSIGNMENT / NB1
    autograded.parent.mkdir(parents=True)
    autograded.write_text(first)
    second, _ = exporter.from_filename(str(autograded))
    assert nbformat.reads(second, as_version=4).metadata[UNREADABLE] == {
        "status": "not-a-regular-file",
        "message": read_notebook(path).message,
    }


def test_stock_nbgrader_copies_only_regular_files_of_a_submission(tmp_path):
    """nbgrader copies a submission's other files to autograded/ (and generate_feedback hands
    them back): a link to the course secret, a FIFO or a device must not be copied."""
    from nbgrader.converters.autograde import Autograde
    from nbgrader.converters.base import BaseConverter
    from nbgrader.coursedir import CourseDirectory

    from autograder.integration.plugin import TolerantNotebookExporter

    secret = tmp_path / ".autograder-secret"
    secret.write_text("course secret")
    folder = victim(tmp_path).parent
    (folder / "notes.txt").write_text("my notes")
    (folder / "leak.txt").symlink_to(secret)
    (folder / "solutions").symlink_to(SOURCE_DIR)
    os.mkfifo(folder / "pipe.txt")
    os.mkfifo(folder / "timestamp.txt")
    try:
        # a /dev/null: copied, it would show as an empty file (a /dev/zero would fill the disk)
        os.mknod(folder / "null.txt", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    except PermissionError:
        pass
    mallory = tmp_path / "submitted" / "mallory"
    mallory.mkdir()
    (mallory / ASSIGNMENT).symlink_to(tmp_path)  # the course root: every file in it

    TolerantNotebookExporter()  # nbgrader makes it before it copies anything
    converter = Autograde(coursedir=CourseDirectory(root=str(tmp_path)))
    for student in ("victim", "mallory"):
        within(30, BaseConverter.init_assignment, converter, ASSIGNMENT, student)
    copied = tmp_path / "autograded" / "victim" / ASSIGNMENT
    assert sorted(p.name for p in copied.rglob("*")) == ["notes.txt"]
    assert not (tmp_path / "autograded" / "mallory").exists()
    assert within(10, converter.coursedir.get_existing_timestamp, str(folder)) is None
    (folder / "timestamp.txt").unlink()
    (folder / "timestamp.txt").write_text("2026-11-27 10:00:00.000000 UTC")
    assert converter.coursedir.get_existing_timestamp(str(folder)).year == 2026


# One batch through the sandboxed grader: victims and a bystander who submitted the solutions.

E2E_ATTACKS = [
    "link-to-solutions",
    "fifo",
    "device",
    "6-MB",
    "nested-100000",
    "nbgrader-a-string",
    "schema-version-99",
    "lone-surrogate",
    "not-utf8",
    "3000-cells",
]


def notebook_cells(name: str) -> set[str]:
    """The graded cells (grades.csv items) of one release notebook."""
    return {
        item.cell
        for ex in EXERCISES.values()
        if ex.notebook == name
        for item in ex.rubric
    } | {grade_id for grade_id in written_answer_ids() if NOTEBOOK_OF[grade_id] == name}


@pytest.mark.slow
@pytest.mark.sandbox
def test_a_batch_with_hostile_notebooks_finishes_and_costs_each_victim_one_notebook(
    tmp_path,
):
    full = full_marks()
    write_submission(tmp_path, "bystander", solved())
    expected = {"bystander": full}
    for attack in E2E_ATTACKS:
        make, status = ATTACKS[attack]
        path = victim(tmp_path, f"victim_{attack}")
        try:
            make(path)
        except pytest.skip.Exception:  # no device nodes here
            shutil.rmtree(path.parent.parent)
            continue
        expected[f"victim_{attack}"] = full | dict.fromkeys(
            notebook_cells(NB1), (0.0, status)
        )
    stray = tmp_path / "submitted" / "victim_fifo" / ASSIGNMENT / "my-copy.ipynb"
    stray.symlink_to(SOLUTION)  # listed, never read
    linked = tmp_path / "submitted" / "victim_linked_folder"
    linked.mkdir()
    (linked / ASSIGNMENT).symlink_to(SOURCE_DIR)
    expected["victim_linked_folder"] = {
        cell: (0.0, "not-a-regular-file") for cell in full
    }

    out = tmp_path / "out"
    results = within(
        600, lambda: grade_batch(tmp_path / "submitted", out, workers=2, limits=LIMITS)
    )

    scores = {
        r["student"]: {
            row["item"]: (row["score"], row["status"]) for row in report.rows(r)
        }
        for r in results
    }
    assert scores == expected
    by_student = {r["student"]: r for r in results}
    assert by_student["victim_fifo"]["unrecognised_files"] == ["my-copy.ipynb"]
    assert by_student["victim_linked_folder"]["unrecognised_files"] == []
    with (out / "grades.csv").open(encoding="utf-8") as f:
        assert len(list(csv.DictReader(f))) == sum(len(s) for s in expected.values())
    for student in expected:
        assert "BEGIN HIDDEN TESTS" not in (
            out / "feedback" / f"{student}.html"
        ).read_text(encoding="utf-8")


@pytest.mark.slow
@pytest.mark.sandbox
def test_stock_nbgrader_autograde_with_hostile_submissions(tmp_path):
    """Stock ``nbgrader autograde``: nothing behind a link is read or copied (the course
    secret stays out of autograded/ and feedback/), a forged mark is ignored, a schema_version
    that would stop nbgrader's whole batch costs its notebook, and the bystander keeps
    every point."""
    from nbgrader.api import Gradebook

    from autograder.integration.plugin import UNREADABLE

    build_course(
        tmp_path, dict.fromkeys(["bystander", "victim", "victim_schema"], solved())
    )
    secret = tmp_path / ".autograder-secret"
    secret.touch(mode=0o600)
    secret.write_text("course secret 3f1c\n")
    victim_dir = tmp_path / "submitted" / "victim" / ASSIGNMENT
    ATTACKS["link-to-solutions"][0](victim_dir / NB1)
    (victim_dir / "leak.txt").symlink_to(secret)
    os.mkfifo(victim_dir / "timestamp.txt")
    nb2 = victim_dir / NOTEBOOK_OF["corr2d_multi_in_out"]
    rewrite(
        nb2, lambda raw: raw["metadata"].__setitem__(UNREADABLE, {"status": "passed"})
    )
    ATTACKS["schema-version-99"][0](
        tmp_path / "submitted" / "victim_schema" / ASSIGNMENT / NB1
    )

    nbgrader(tmp_path, "generate_assignment", ASSIGNMENT, "--force")
    nbgrader(tmp_path, "autograde", ASSIGNMENT)
    nbgrader(tmp_path, "generate_feedback", ASSIGNMENT)

    full = {
        cell: score
        for cell, (score, status) in full_marks().items()
        if status != MANUAL
    }
    lost = dict.fromkeys(notebook_cells(NB1) & set(full), 0.0)
    with Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}") as gb:
        for student, expected in [
            ("bystander", full),
            ("victim", full | lost),
            ("victim_schema", full | lost),
        ]:
            submission = gb.find_submission(ASSIGNMENT, student)
            scores = {g.name: g.score for nb in submission.notebooks for g in nb.grades}
            assert {cell: scores[cell] for cell in full} == expected, student
    for folder in ("autograded", "feedback"):
        copied = [p for p in (tmp_path / folder).rglob("*") if p.is_file()]
        assert not any("secret 3f1c" in p.read_text(errors="replace") for p in copied)
        assert not (tmp_path / folder / "victim" / ASSIGNMENT / "leak.txt").exists()
    page = (
        tmp_path / "feedback" / "victim" / ASSIGNMENT / NB1.replace(".ipynb", ".html")
    )
    text = page.read_text()
    assert "not-a-regular-file" in text and "BEGIN HIDDEN TESTS" not in text
