"""The grading guide for the written answers: one offline page to read beside formgrader.

Formgrader shows a student's answer but neither the model answer nor the rubric, which live in
the source notebooks only. This page puts them together: for each written question, in notebook
order, the question as students saw it, the model answer and rubric from ``solutions/``, then
every student's answer in the order formgrader numbers the submissions ("Submission #1", ...).
It is for the instructor and teaching assistants only: it holds the model answers.

Students' answers are shown as text (HTML-escaped, never rendered as Markdown or HTML), so an
answer cannot restyle or script the page; their math is typeset with the rest of the page, by
MathJax without links, styles or requests (``typeset_math.mjs``), and the page's
Content-Security-Policy forbids every script and every request besides.
"""

from __future__ import annotations

import html
import itertools
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbconvert.filters import markdown2html

from autograder import notebooks
from autograder.grading.recovery import WrittenAnswer, recover_written_answer
from autograder.grading.submission import (
    Problem,
    cells_with_id,
    read_notebook,
    written_answer,
)
from autograder.outputs.exports import open_gradebook
from autograder.outputs.typeset import Typesetter
from autograder.paths import ASSIGNMENT, RELEASE_DIR, SOURCE_DIR
from autograder.untrusted import CSP_META, clean_text

ANSWER_CHARS = 20_000  # of one student's answer shown; a longer one is cut, and says so


@dataclass(frozen=True)
class Question:
    """One written question: where it is, what it asks, and how it is graded."""

    notebook: str
    grade_id: str
    points: float
    prompt: str  # Markdown: the cell before the answer cell, as students see it
    model: str  # Markdown: the source's answer cell (model answer and rubric)


def questions() -> list[Question]:
    """Every written question of the assignment, in the order of the notebooks."""
    found = []
    for path in sorted(SOURCE_DIR.glob("*.ipynb")):
        cells = notebooks.read(path).cells
        for before, cell in itertools.pairwise(cells):
            meta = cell.metadata.get("nbgrader", {})
            if (
                meta.get("grade")
                and meta.get("solution")
                and cell.cell_type == "markdown"
            ):
                found.append(
                    Question(
                        path.name,
                        meta["grade_id"],
                        float(meta["points"]),
                        before.source,
                        cell.source,
                    )
                )
    return found


def formgrader_order(gradebook_db: Path, notebook: str) -> list[tuple[int, str]]:
    """(submission number, student) as formgrader lists a notebook's submissions.

    As ``NbGraderAPI.get_notebook_submissions``: the number is the position in the gradebook's
    own query, plus one, and the list is sorted by the submitted notebook's id.
    """
    with open_gradebook(gradebook_db) as gb:  # read-only: formgrader may be using it
        found = gb.notebook_submissions(notebook.removesuffix(".ipynb"), ASSIGNMENT)
        listed = [(nb.id, number, nb.student.id) for number, nb in enumerate(found, 1)]
    return [(number, student) for _, number, student in sorted(listed)]


def student_answer(
    nb: nbformat.NotebookNode | Problem,
    release_cell: nbformat.NotebookNode,
    release_nb: nbformat.NotebookNode | None = None,
) -> str | WrittenAnswer | Problem:
    """The text a student wrote in ``release_cell``'s answer cell of their notebook ``nb``;
    where no cell carries its id, the answer found after its question in ``release_nb``
    (with the note that says where); or why there is none to grade."""
    if isinstance(nb, Problem):
        return nb
    problem = written_answer(nb, release_cell)
    grade_id = release_cell.metadata.nbgrader["grade_id"]
    if problem is not None and problem.status == "missing-cell" and release_nb:
        return recover_written_answer(nb, release_nb, grade_id)
    if problem is not None:
        return problem
    # written_answer found exactly one such cell.
    return cells_with_id(nb, grade_id)[0].get("source", "")


STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem;
       line-height: 1.5; color: #1a1a1a; }
h2 { border-top: 2px solid #444; padding-top: 1rem; margin-top: 2.5rem; }
.model { background: #eef4ee; border-left: 4px solid #2d6a2d; padding: .5rem 1rem; }
.answer { white-space: pre-wrap; overflow-wrap: break-word; border: 1px solid #999;
          padding: .5rem 1rem; background: #fff; }
.missing { font-style: italic; color: #5a3d00; }
a { color: #1f5687; }
@media print { h2 { break-before: page; } li { break-inside: avoid; } }
"""


def guide_html(submitted: Path, gradebook_db: Path, title: str = "") -> str:
    """The guide's page (math still as TeX; ``write_guide`` typesets it)."""
    esc = html.escape
    asked = questions()
    parts = [
        f"<!doctype html><html lang='en'><head>{CSP_META}<meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>Grading guide: {esc(title or ASSIGNMENT)}</title>",
        f"<style>{STYLE}</style></head><body><main>",
        f"<h1>Grading guide: {esc(title or ASSIGNMENT)}</h1>",
        "<p>For instructors and teaching assistants only: it holds the model answers. "
        "Each written question with its model answer and rubric, then every answer to "
        "grade, numbered as formgrader numbers the submissions.</p>",
        "<nav aria-label='Questions'><ol>",
        *(
            f"<li><a href='#{esc(q.grade_id)}'>{esc(q.notebook)}: {esc(q.grade_id)}</a> "
            f"({_points(q.points)})</li>"
            for q in asked
        ),
        "</ol></nav>",
    ]
    # Each student's notebook is read once (safely), and each notebook's formgrader order
    # asked for once, whatever the number of questions in it.
    read: dict[tuple[str, str], nbformat.NotebookNode | Problem] = {}
    orders = {
        nb: formgrader_order(gradebook_db, nb) for nb in {q.notebook for q in asked}
    }
    releases = {nb: notebooks.read(RELEASE_DIR / nb) for nb in orders}
    for q in asked:
        order = orders[q.notebook]
        (release_cell,) = cells_with_id(releases[q.notebook], q.grade_id)
        parts += [
            f"<section id='{esc(q.grade_id)}' aria-labelledby='{esc(q.grade_id)}-h'>",
            f"<h2 id='{esc(q.grade_id)}-h'>{esc(q.notebook)}: {esc(q.grade_id)} "
            f"({_points(q.points)})</h2>",
            "<h3>The question</h3>",
            markdown2html(q.prompt),
            "<h3>Model answer and rubric</h3>",
            f"<div class='model'>{markdown2html(q.model)}</div>",
            f"<h3>Answers ({len(order)})</h3><ol>",
        ]
        for number, student in order:
            if (student, q.notebook) not in read:
                path = submitted / student / ASSIGNMENT / q.notebook
                read[student, q.notebook] = read_notebook(path)
            answer = student_answer(
                read[student, q.notebook], release_cell, releases[q.notebook]
            )
            if isinstance(answer, Problem):
                body = (
                    f"<p class='missing'>Nothing to grade: {esc(answer.message)} "
                    f"({esc(answer.status)}).</p>"
                )
            elif isinstance(answer, WrittenAnswer):
                body = (
                    f"<p class='missing'>{esc(answer.note)}.</p>"
                    f"<div class='answer'>{esc(_shown(answer.text))}</div>"
                )
            else:
                body = f"<div class='answer'>{esc(_shown(answer))}</div>"
            parts.append(
                f"<li><h4>Submission #{number}: {esc(clean_text(student, 200))}</h4>"
                f"{body}</li>"
            )
        parts.append("</ol></section>")
    parts.append("</main></body></html>")
    return "\n".join(parts) + "\n"


def _points(points: float) -> str:
    return f"{points:g} point" + ("" if points == 1 else "s")


def _shown(answer: str) -> str:
    text = clean_text(answer, ANSWER_CHARS)
    return (
        text
        if len(answer) <= ANSWER_CHARS
        else text + "\n[... cut here: the answer is longer]"
    )


def write_guide(submitted: Path, gradebook_db: Path, out: Path) -> Path:
    """Write the guide to ``out`` (an HTML file), its math typeset."""
    with Typesetter() as typesetter:
        page = typesetter.typeset(guide_html(submitted, gradebook_db))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out
