"""What the student pages say, and to whom: few words, no maintainer talk, points as graded.

A lecturer's audit of the module (issue 28) found twice the prose a student should read for one
book section, words meant for the people who build the course ("seed", "adapted from", the kit
and the build) on the pages students read, and points stated in more places than one. These
tests hold the release (``chapters/``, what students get) to the limits that issue set, and the
points every page and the README state to the two places points live: the rubric of each graded
function (``autograder/grading/exercises.py``) and the nbgrader metadata of each written answer
(``solutions/``).
"""

from __future__ import annotations

import re

import pytest
from conftest import cell_by_grade_id, rubric_points

from autograder import EXERCISES, notebooks
from autograder.grading.grader import manual_items
from autograder.paths import RELEASE_DIR, ROOT, SOURCE_DIR

# Sections 7.4.1 to 7.4.5: the graded notebooks and the discussion. The speed chapter (06) is
# optional and not graded, and says so first; it is not part of the limit.
STUDENT_NOTEBOOKS = sorted(RELEASE_DIR.glob("0[1-5]-*.ipynb"))
WORD_LIMIT = 5000  # issue 28: "at most 5,000 words (today 6,935)"


def markdown_cells(path) -> list[str]:
    return [c.source for c in notebooks.read(path).cells if c.cell_type == "markdown"]


def student_words(path) -> int:
    """The words a student reads in a release notebook.

    What counts: every Markdown cell as released, split on whitespace, so formulas, inline code
    and table rules count as words too. That is the audit's own measure (6,935 words in 01-05
    when it was taken), kept so that the limit cannot be met by moving prose into formulas or
    code spans. What does not count: code cells (their comments included) and outputs, which a
    student runs rather than reads through; a written answer's cell counts as released, three
    words ("YOUR ANSWER HERE").
    """
    return sum(len(source.split()) for source in markdown_cells(path))


def test_the_student_prose_of_sections_7_4_1_to_7_4_5_is_at_most_5000_words():
    words = {path.name: student_words(path) for path in STUDENT_NOTEBOOKS}
    assert len(words) == 5, words
    assert sum(words.values()) <= WORD_LIMIT, words


def test_the_word_count_counts_formulas_and_code_spans_as_words(tmp_path):
    nb = notebooks.read(STUDENT_NOTEBOOKS[0])
    nb.cells = [nb.cells[0].copy()]
    nb.cells[0].source = "Two words $c_o \\times c_i$ and `X.new_zeros(...)`."
    notebooks.write(nb, tmp_path / "one.ipynb")
    assert student_words(tmp_path / "one.ipynb") == 7


# Words for the people who build and grade the course, each with why a student is better off
# without it. Matched case-insensitively in every Markdown cell of the release (the speed
# chapter's too) and in intro.md.
MAINTAINER_WORDS = {
    r"\bseed": "the module's origin to its makers; a student reads it as a random seed",
    r"adapted from|\bprovenance\b|\bupstream\b": "where the module came from",
    r"\bkit\b": "the mechanics of the checks, not what they say",
    r"\bnbgrader\b|\bautograder\b|python -m": "the grading and build tools",
    r"\brelease\b|\bsolutions/": "the build's names for the notebooks",
    r"build time|built on a machine|\bthe build\b|\bmaintainers?\b": "build mechanics",
}


def student_pages() -> dict[str, list[str]]:
    pages = {
        path.name: markdown_cells(path) for path in sorted(RELEASE_DIR.glob("*.ipynb"))
    }
    pages["intro.md"] = [(ROOT / "intro.md").read_text(encoding="utf-8")]
    return pages


@pytest.mark.parametrize("pattern", sorted(MAINTAINER_WORDS))
def test_no_student_page_talks_to_the_courses_makers(pattern):
    found = [
        (page, match.group(0), source[max(0, match.start() - 40) : match.end() + 40])
        for page, sources in student_pages().items()
        for source in sources
        for match in re.finditer(pattern, source, re.IGNORECASE)
    ]
    assert found == [], f"{MAINTAINER_WORDS[pattern]}: {found}"


def test_the_speed_chapter_says_it_is_optional_in_its_first_lines():
    first = markdown_cells(RELEASE_DIR / "06-how-fast.ipynb")[0]
    opening = " ".join(first.split("\n\n")[:2])  # the title and the paragraph under it
    assert re.search(r"\boptional\b", opening, re.IGNORECASE)
    assert re.search(r"\bnot graded\b", opening, re.IGNORECASE)


def test_the_intro_says_the_speed_chapter_is_optional():
    intro = (ROOT / "intro.md").read_text(encoding="utf-8")
    (row,) = [
        line for line in intro.splitlines() if "06-how-fast" in line and "|" in line
    ]
    assert "optional" in row.lower()


# Points: stated where the student works, equal to what is graded.


def stated_points(points: float) -> str:
    return f"{points:g} point" + ("" if points == 1 else "s")


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_each_task_states_its_points_and_each_rubric_items_points(name):
    text = " ".join(task_text(name).split())
    total = rubric_points(name)
    each = EXERCISES[name].kind == "count"  # one statement for the three counts
    heading = (
        f"How each is graded ({stated_points(total)} each)"
        if each
        else f"How it is graded ({stated_points(total)})"
    )
    assert heading in text
    for item in EXERCISES[name].rubric:
        assert f"{item.description} ({item.points:g})" in text


def task_text(name: str) -> str:
    """The Markdown between the task's heading and its visible test."""
    cells = notebooks.read(RELEASE_DIR / EXERCISES[name].notebook).cells
    ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in cells]
    answer, test = ids.index(name), ids.index(f"test_{name}_example")
    start = max(
        i
        for i, c in enumerate(cells[: answer + 1])
        if c.cell_type == "markdown" and re.search(r"^#+ ", c.source, re.M)
    )
    return "\n".join(c.source for c in cells[start:test] if c.cell_type == "markdown")


def written_answers() -> list[tuple[str, str, float]]:
    """(notebook, grade_id, points) of every written answer, from the sources' metadata."""
    return [
        (path.name, item.cell, item.max_score)
        for path in sorted(SOURCE_DIR.glob("*.ipynb"))
        for item in manual_items(notebooks.read(path))
    ]


@pytest.mark.parametrize(("notebook", "grade_id", "points"), written_answers())
def test_each_written_question_states_its_points(notebook, grade_id, points):
    """The question is the Markdown cell right above the answer (the grading guide shows it)."""
    cells = notebooks.read(RELEASE_DIR / notebook).cells
    answer = cells.index(
        cell_by_grade_id(notebooks.read(RELEASE_DIR / notebook), grade_id)
    )
    question = cells[answer - 1]
    assert question.cell_type == "markdown"
    assert f"Your answer ({stated_points(points)})" in question.source


@pytest.mark.parametrize(("notebook", "grade_id", "points"), written_answers())
def test_each_rubric_tells_a_ta_what_to_look_for_and_what_earns_half_and_nothing(
    notebook, grade_id, points
):
    model = cell_by_grade_id(notebooks.read(SOURCE_DIR / notebook), grade_id).source
    rubric = model.split("**Rubric", 1)[1]
    assert rubric.startswith(f" ({stated_points(points)})")
    assert "*Look for:*" in rubric
    half = f"{points / 2:g}" if points == 1 else "0.5"  # of the answer, or of a part
    assert f"*{half}" in rubric or f"*{half} for a part" in rubric
    assert "*0" in rubric


def readme_points() -> dict[str, float]:
    """The Points column of the README's table of points, by task."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### How the points were set", 1)[1].split("\n#", 1)[0]
    rows = [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in section.splitlines()
        if line.startswith("| 7.4.")
    ]
    return {row[1].strip("`"): float(row[4]) for row in rows}


def test_the_readme_states_the_points_that_are_graded():
    graded = {name: rubric_points(name) for name in EXERCISES}
    graded |= {grade_id: points for _, grade_id, points in written_answers()}
    assert readme_points() == graded
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    total = f"| **{sum(graded.values()):g}** |"  # the table's total row
    assert total in readme.split("### How the points were set", 1)[1]
