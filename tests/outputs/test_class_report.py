"""The class report and the grading guide, from a real batch: corpus students graded in the
sandbox, with planted near-copies, read back as an instructor would read the pages."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import build_course, written_answer_ids
from corpus import (
    BROKEN_FILES,
    CORPUS,
    NEAR_COPIES,
    NEAR_COPY_PAIRS,
    NOTEBOOK,
    near_copy_answers,
    typed,
)

from autograder import __main__ as cli
from autograder.batch import grade_batch
from autograder.outputs import report
from autograder.outputs.class_report import common_mistakes
from autograder.outputs.guide import formgrader_order, questions
from autograder.paths import ASSIGNMENT
from autograder.sandbox.runner import Limits

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]

HONEST = sorted(name for name in CORPUS if name.startswith("honest_"))
MISTAKES = {  # corpus student -> the mistake the report must count for them
    "mistake_flipped_kernel": "the kernel is flipped",
    "mistake_not_summed": "the channels were not summed",
    "mistake_wrong_axis": "the output channels were stacked on the wrong axis",
    "mistake_additions_one_per_product": "one addition per product was counted",
    "mistake_compose_cross_correlated": "the kernels were cross-correlated with each other",
    "policy_library_im2col": "the library's im2col (F.unfold or nn.Unfold) was called",
    "policy_builtin_conv": "torch's convolution was called where the point is to compute "
    "by hand",
}
COPIES = sorted(NEAR_COPIES)
BROKEN = "broken_not_json"


@pytest.fixture(scope="module")
def graded(tmp_path_factory, warm_sandbox) -> Path:
    """A batch graded by the grade command's own steps, then the instructor's pages."""
    course = tmp_path_factory.mktemp("class")
    originals = [original for original, *_ in NEAR_COPIES.values()]
    students = {s: typed(CORPUS[s]) for s in {*HONEST, *MISTAKES, *originals}}
    students |= {copy: near_copy_answers(*NEAR_COPIES[copy]) for copy in COPIES}
    students[BROKEN] = typed(CORPUS["honest_loops"])
    build_course(course, students)
    (course / "submitted" / BROKEN / ASSIGNMENT / NOTEBOOK).write_bytes(
        BROKEN_FILES[BROKEN][0]
    )
    out = course / "grades"
    results = grade_batch(course / "submitted", out, sandbox=warm_sandbox(Limits()))
    cli.class_files(course / "submitted", out, results)
    return out


class Text(HTMLParser):
    """The page's text by section id, as a reader (or a screen reader) gets it."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: dict[str, list[str]] = {"": []}
        self.current = ""

    def handle_starttag(self, tag, attrs):
        if tag == "section":
            self.current = dict(attrs).get("id", "")
            self.sections[self.current] = []

    def handle_data(self, data):
        self.sections[self.current].append(data)


def section(page: Path, name: str) -> str:
    parser = Text()
    parser.feed(page.read_text())
    return re.sub(r"\s+", " ", " ".join(parser.sections[name]))


def test_each_common_mistake_counts_the_students_who_made_it(graded):
    results = report.load_results(graded)
    found = {m.what: set(m.students) for m in common_mistakes(results)}
    for student, mistake in MISTAKES.items():
        assert student in found[mistake], (student, mistake)
    for honest in HONEST:
        assert all(honest not in who for who in found.values()), honest


def test_planted_near_copies_pair_up_and_honest_styles_do_not(graded):
    text = section(graded / "report.html", "similar")
    for a, b in NEAR_COPY_PAIRS:
        assert f"{a} and {b}" in text, (a, b)
    listed = re.findall(r"(\w+) and (\w+) (\d\.\d\d)", text)
    assert {tuple(sorted(p[:2])) for p in listed} == NEAR_COPY_PAIRS


def test_the_report_lists_the_unreadable_submission_to_look_at(graded):
    text = section(graded / "report.html", "trouble")
    assert f"{BROKEN} not-a-notebook" in text
    assert all(h not in text for h in HONEST)


def test_the_report_marks_rubric_items_and_plots_with_alt_text(graded):
    page = (graded / "report.html").read_text()
    alts = re.findall(r"<img src='data:image/png;base64,[^']+' alt='([^']+)'", page)
    assert len(alts) == page.count("<img ")
    assert all(re.search(r"median [\d.]+, \d+ with full marks", a) for a in alts)
    assert "http://" not in page and "https://" not in page  # offline, one page
    items = section(graded / "report.html", "items")
    assert "the worked example" in items and "% of" in items


def test_the_guide_shows_every_written_question_with_its_model_answer(graded):
    page = (graded / "guide.html").read_text()
    asked = questions()
    assert [q.grade_id for q in asked] == written_answer_ids() and len(asked) == 7
    for q in asked:
        assert re.search(f"id=[\"']{q.grade_id}[\"']", page), q.grade_id
    assert page.count("Model answer and rubric") == len(asked)
    assert (
        "$" not in section(graded / "guide.html", asked[0].grade_id).split("Answers")[0]
    )


def test_the_guide_lists_answers_in_formgraders_order(graded):
    q = questions()[0]
    order = formgrader_order(graded / "gradebook.db", q.notebook)
    text = section(graded / "guide.html", q.grade_id)
    shown = re.findall(r"Submission #(\d+): (\w+)", text)
    assert [(int(n), s) for n, s in shown] == order


def write_guide(course: Path, out: Path) -> Path:
    """The guide command on a course graded into ``grades/``, as the README runs it."""
    cli.main(
        [
            "guide",
            "--submitted",
            str(course / "submitted"),
            "--gradebook",
            str(course / "grades" / "gradebook.db"),
            "--out",
            str(out),
        ]
    )
    return out


def test_a_students_answer_cannot_add_markup_to_the_guide(tmp_path, warm_sandbox):
    course = tmp_path / "course"
    course.mkdir()
    q = questions()[0]
    build_course(
        course, {"hostile": {q.grade_id: "<script>alert(1)</script> **bold**"}}
    )
    grade_batch(course / "submitted", course / "grades", sandbox=warm_sandbox(Limits()))
    out = write_guide(course, tmp_path / "guide.html")
    page = out.read_text()
    assert (
        "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    )


def test_the_guide_shows_a_written_answer_whose_cell_lost_its_id_with_the_note(
    tmp_path, warm_sandbox
):
    """An editor dropped the nbgrader metadata: the guide shows the answer found after its
    question, with where it was found, and the grade command's gradebook carries the note as
    the answer's comment for formgrader."""
    from corpus import stripped
    from nbgrader.api import Gradebook

    from autograder import notebooks

    course = tmp_path / "course"
    course.mkdir()
    q = questions()[0]
    build_course(course, {"stripped": {q.grade_id: "Twice: $2 \\times$ the work."}})
    path = course / "submitted" / "stripped" / ASSIGNMENT / q.notebook
    notebooks.write(stripped(notebooks.read(path)), path)
    grade_batch(course / "submitted", course / "grades", sandbox=warm_sandbox(Limits()))
    out = write_guide(course, tmp_path / "guide.html")
    text = section(out, q.grade_id)
    assert "Twice:" in text and "Nothing to grade" not in text
    assert "its answer cell lost its nbgrader id" in text
    with Gradebook(f"sqlite:///{course / 'grades' / 'gradebook.db'}") as gb:
        nb = gb.find_submission_notebook(
            q.notebook.removesuffix(".ipynb"), ASSIGNMENT, "stripped"
        )
        comment = next(c for c in nb.comments if c.name == q.grade_id)
        grade = next(g for g in nb.grades if g.name == q.grade_id)
        assert "its answer cell lost its nbgrader id" in comment.auto_comment
        assert grade.needs_manual_grade and grade.auto_score is None
