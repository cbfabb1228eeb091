"""The pages an instructor hands out, read in Chromium: the grade command's feedback, stock
nbgrader's feedback, the class report and the grading guide, for an honest student and one who
lost points. Offline, typeset, accessible (axe-core at WCAG 2.2 AA) and readable at both widths.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import build_course, nbgrader, rubric_points
from corpus import CORPUS, typed
from pages import LAPTOP, PHONE, SCREENSHOTS, Visit, assert_axe_finds_nothing

from autograder.__main__ import class_files
from autograder.batch import grade_batch
from autograder.paths import ASSIGNMENT, RELEASE_DIR
from autograder.sandbox.runner import Limits

pytestmark = pytest.mark.slow

FEEDBACK_STUDENTS = ("honest_loops", "mistake_flipped_kernel")


@pytest.fixture(scope="module")
def graded_course(tmp_path_factory, warm_sandbox) -> Path:
    """An honest student and one who lost points, graded by the grade command into out/ and
    by stock nbgrader (autograde, generate_feedback) into feedback/, as the README says."""
    course = tmp_path_factory.mktemp("course")
    build_course(
        course, {student: typed(CORPUS[student]) for student in FEEDBACK_STUDENTS}
    )
    results = grade_batch(
        course / "submitted", course / "out", sandbox=warm_sandbox(Limits())
    )
    class_files(course / "submitted", course / "out", results)
    for command in ("generate_assignment", "autograde", "generate_feedback"):
        nbgrader(
            course,
            command,
            ASSIGNMENT,
            *(["--force"] * (command == "generate_assignment")),
        )
    return course


@pytest.fixture(scope="module")
def feedback_pages(graded_course) -> list[Path]:
    """The grade command's page per student."""
    return sorted((graded_course / "out" / "feedback").glob("*.html"))


@pytest.fixture(scope="module")
def stock_feedback_pages(graded_course) -> list[Path]:
    """Stock nbgrader's pages, one per student and notebook."""
    return sorted((graded_course / "feedback").glob(f"*/{ASSIGNMENT}/*.html"))


@pytest.mark.sandbox
def test_feedback_pages_have_no_wcag_2_2_aa_violation_in_axe(browser, feedback_pages):
    students = [p.stem for p in feedback_pages]
    assert students == list(FEEDBACK_STUDENTS)
    for path in feedback_pages:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(path.as_uri())
        assert_axe_finds_nothing(page)
        page.close()


# Text of the page outside code, outputs and typeset math: where raw TeX would show.
PROSE = r"""() => [...document.querySelectorAll(".text_cell_render")]
  .map(e => { const c = e.cloneNode(true);
              c.querySelectorAll("mjx-container, code, pre").forEach(m => m.remove());
              return c.innerText; }).join("\n")"""


@pytest.mark.sandbox
def test_stock_feedback_typesets_its_math_offline_and_wraps_its_output(
    browser, stock_feedback_pages
):
    assert len(stock_feedback_pages) == 2 * len(list(RELEASE_DIR.glob("*.ipynb")))
    for path in stock_feedback_pages:
        v = Visit(browser, path.as_uri(), size=PHONE)
        assert (v.outside_requests, v.console_errors) == ([], []), path
        assert v.page.locator("mjx-container svg").count() > 0, path
        prose = v.page.evaluate(PROSE)
        assert "$" not in prose and "\\(" not in prose, (path, prose[:300])
        # The grader's messages wrap: no output box is wider than its column.
        assert v.page.evaluate(WIDE_OUTPUTS) == [], path
        v.page.close()


# Output boxes whose text runs past their right edge (they would scroll or be cut off).
WIDE_OUTPUTS = """() => [...document.querySelectorAll(".output_area pre")]
  .filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.textContent.slice(0, 80))"""


@pytest.mark.sandbox
def test_stock_feedback_gives_each_items_points_and_diagnosis(stock_feedback_pages):
    flipped = next(
        p
        for p in stock_feedback_pages
        if p.parent.parent.name == "mistake_flipped_kernel" and p.name.startswith("01-")
    )
    text = flipped.read_text()
    points = rubric_points("corr2d_multi_in", "non-square")
    assert f"- non-square kernels: 0 of {points:g} points (failed)." in text
    assert "It looks like the kernel is flipped" in text


@pytest.mark.sandbox
@pytest.mark.parametrize("name", ["report.html", "guide.html"])
@pytest.mark.parametrize("size", [PHONE, LAPTOP], ids=["390px", "1280px"])
def test_the_class_report_and_the_grading_guide_are_accessible_offline_at_both_widths(
    browser, graded_course, name, size
):
    v = Visit(browser, (graded_course / "out" / name).as_uri(), size=size)
    assert (v.outside_requests, v.console_errors) == ([], [])
    assert_axe_finds_nothing(v.page)
    client, scrolled = v.page.evaluate(
        "[document.documentElement.clientWidth, document.documentElement.scrollWidth]"
    )
    assert scrolled <= client, f"{name} scrolls sideways at {size[0]} px"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    v.page.screenshot(path=SCREENSHOTS / f"{Path(name).stem}-{size[0]}px.png")
    v.page.close()


@pytest.mark.sandbox
def test_stock_feedback_pages_have_no_wcag_2_2_aa_violation_in_axe(
    browser, stock_feedback_pages
):
    for path in stock_feedback_pages:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(path.as_uri())
        assert_axe_finds_nothing(page)
        page.close()
