"""Similar submissions on the real corpus: planted copies are found and ranked first, while
independent students, the book's solution and the untouched stubs are not reported.

The corpus of ``tests/corpus.py`` is written as submissions and read back through the grader's
reader; next to it are near-copies of four students' answers, each disguised one way, two
students who typed the reference answers, two who left the stubs, and one whose notebooks are
links to another student's.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from conftest import NOTEBOOK_OF, stub_answered, write_submission
from corpus import (
    BROKEN_FILES,
    CORPUS,
    MATMUL,
    NEAR_COPIES,
    NEAR_COPY_PAIRS,
    NOTEBOOK,
    near_copy_answers,
    solved,
    typed,
    write_corpus,
)

from autograder.outputs.similarity import (
    MAX_CHARS,
    THRESHOLD,
    Cluster,
    Similarity,
    _kgram_hashes,
    book_boilerplate,
    similar_submissions,
    sources_of,
)
from autograder.paths import ASSIGNMENT

BOOK = ("reference_1", "reference_2", "stubs_1", "stubs_2")


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, dict[str, str]]:
    course = tmp_path_factory.mktemp("similarity")
    write_corpus(course, BROKEN_FILES)
    for copy, planted in NEAR_COPIES.items():
        write_submission(course, copy, near_copy_answers(*planted))
    for student in BOOK:
        write_submission(course, student, solved() if "reference" in student else {})
    linked = course / "submitted" / "linker" / ASSIGNMENT
    linked.mkdir(parents=True)
    for notebook in (course / "submitted" / "copy_renamed" / ASSIGNMENT).iterdir():
        (linked / notebook.name).symlink_to(notebook)
    students = sorted(p.name for p in (course / "submitted").iterdir())
    return sources_of(course / "submitted", students)


@pytest.fixture(scope="module")
def boilerplate() -> list[str]:
    return book_boilerplate()


@pytest.fixture(scope="module")
def every_pair(sources, boilerplate) -> Similarity:
    return similar_submissions(sources, boilerplate, threshold=0.0)


@pytest.fixture(scope="module")
def reported(sources, boilerplate) -> Similarity:
    return similar_submissions(sources, boilerplate)


def test_planted_copies_are_reported_first_and_alone(reported, every_pair):
    assert {(p.a, p.b) for p in reported.pairs} == NEAR_COPY_PAIRS
    scores = {(p.a, p.b): p.score for p in every_pair.pairs}
    honest = [score for (a, b), score in scores.items() if a in CORPUS and b in CORPUS]
    assert min(scores[pair] for pair in NEAR_COPY_PAIRS) > max(honest)
    assert {(p.a, p.b) for p in every_pair.pairs[: len(NEAR_COPIES)]} == NEAR_COPY_PAIRS
    for pair in reported.pairs:
        assert THRESHOLD <= pair.score <= 1.0 and pair.matched > 0
        assert set(pair.notebooks) == {planted_notebook(pair)}
    assert [p.score for p in every_pair.pairs] == sorted(
        (p.score for p in every_pair.pairs), reverse=True
    )
    assert reported.clusters == ()


def planted_notebook(pair) -> str:
    copy = pair.a if pair.a in NEAR_COPIES else pair.b
    return NOTEBOOK_OF[NEAR_COPIES[copy][1]]


def test_independent_honest_styles_do_not_pair(every_pair):
    honest = [name for name in CORPUS if name.startswith("honest")]
    for pair in every_pair.pairs:
        if pair.a in honest and pair.b in honest:
            assert pair.score < THRESHOLD, pair


def test_the_book_solution_and_the_stubs_are_nobody_s_own(sources, every_pair):
    assert all(sources[student] for student in BOOK)  # read, and compared
    named = {student for pair in every_pair.pairs for student in (pair.a, pair.b)}
    assert named.isdisjoint(BOOK)
    # Students who typed the book's answers in some cells share nothing through them either.
    assert named.isdisjoint({"honest_loops", "broken_deleted_cell", "broken_renamed"})


def test_unreadable_notebooks_and_links_contribute_nothing(sources, every_pair):
    assert sources["linker"] == {}
    for student, (_, status) in BROKEN_FILES.items():
        assert NOTEBOOK not in sources[student], status
        assert len(sources[student]) == len(sources["honest_loops"]) - 1
    assert "linker" not in {s for p in every_pair.pairs for s in (p.a, p.b)}


def test_three_copies_of_one_answer_form_a_cluster(sources, boilerplate):
    original, grade_id, _ = NEAR_COPIES["copy_renamed"]
    notebook = NOTEBOOK_OF[grade_id]
    answer = stub_answered(grade_id, CORPUS[original].answers[grade_id])
    third = answer.replace("    return (K", "    result = (K") + "\n    return result"
    assert answer in sources[original][notebook]
    students = {s: sources[s] for s in CORPUS} | {
        "copy_renamed": sources["copy_renamed"],
        "copy_third": {notebook: sources[original][notebook].replace(answer, third)},
    }
    found = similar_submissions(students, boilerplate)
    trio = tuple(sorted((original, "copy_renamed", "copy_third")))
    scores = sorted(p.score for p in found.pairs if {p.a, p.b} <= set(trio))
    assert len(scores) == 3 and len(found.pairs) == 3
    # Single linkage: the two strongest pairs join the three; the weaker of them is the score.
    assert found.clusters == (Cluster(trio, scores[1]),)


def test_reordered_statements_of_ordinary_length(boilerplate):
    """Statements longer than NOISE normalised characters keep their own fingerprints when
    moved; shorter ones (one name assigned another) lose those that span their neighbours."""
    lines = [
        "    c_o, c_i, k_h, k_w = K.shape",
        "    weights = K.reshape(c_o, c_i * k_h * k_w).contiguous().to(X.dtype)",
        "    windows = X.unfold(1, k_h, 1).unfold(2, k_w, 1).permute(0, 3, 4, 1, 2)",
        "    h_out, w_out = windows.shape[-2:]",
        "    P = windows.reshape(c_i * k_h * k_w, h_out * w_out)",
        "    return (weights @ P).reshape(c_o, h_out, w_out)",
    ]
    moved = [lines[0], *lines[2:4], lines[1], *lines[4:]]
    students = {
        name: {NOTEBOOK: stub_answered(MATMUL, "\n".join(body))}
        for name, body in (("original", lines), ("copy", moved))
    }
    (pair,) = similar_submissions(students, boilerplate).pairs
    assert (pair.a, pair.b) == ("copy", "original") and pair.score >= THRESHOLD


def test_garbage_never_breaks_the_report(sources, boilerplate):
    rng = np.random.default_rng(0)
    garbage = {
        "binary": rng.integers(0, 256, 50_000, dtype=np.uint8)
        .tobytes()
        .decode("latin-1"),
        "long_line": "x" * 100_000,
        "long_expression": "y" + "+y" * 60_000,
        "brackets": "(" * 100_000,
        "html": "<html><body>" + "<p>not Python</p>" * 5_000,
        "json": '{"cells": [' * 1000,
        "unclosed_string": '"""' + "z" * 100_000,
        "nul_and_surrogates": "\x00\ud800\udfff\x1b[2J" * 10_000,
        "backslashes": "\\" * 100_000,
        "not_text": None,
    }
    notebook = next(iter(sources["honest_einsum_unfold"]))
    hostile = {
        f"garbage_{name}": {notebook: text, "other.ipynb": text}
        for name, text in garbage.items()
    }
    hostile |= {s: sources[s] for s in ("honest_einsum_unfold", "copy_literals")}
    found = similar_submissions(hostile, [*boilerplate, garbage["binary"][:MAX_CHARS]])
    assert [(p.a, p.b) for p in found.pairs] == [
        ("copy_literals", "honest_einsum_unfold")
    ]
    # Two students who hand in the same garbage are alike, and say so without a crash.
    twins = {"a": {notebook: garbage["binary"]}, "b": {notebook: garbage["binary"]}}
    assert [p.score for p in similar_submissions(twins, []).pairs] == [1.0]


def test_scores_are_the_same_in_every_process():
    # Winnowing keeps the smallest hash of each window, so a salted hash (Python's own, as
    # copydetect uses) would change the fingerprints and the scores from run to run.
    hashes = _kgram_hashes("defF(V,V):returnV.V(V,V)@V")
    assert hashes.tolist()[:2] == [4728361832023872, 1897989857366095]
    assert all(0 <= h < 2**53 for h in hashes.tolist())


def test_the_same_result_twice(sources, boilerplate, every_pair):
    again = similar_submissions(dict(reversed(list(sources.items()))), boilerplate, 0.0)
    assert again == every_pair


def test_pairs_with_nothing_in_common_are_not_listed(boilerplate):
    students = {f"s{i}": {"n.ipynb": f"value_{i} = compute({i})"} for i in range(3)}
    assert similar_submissions(students, boilerplate, threshold=0.0) == Similarity(
        threshold=0.0
    )


def test_a_path_is_not_a_student(tmp_path):
    honest = CORPUS["honest_einsum_unfold"]
    shutil.copytree(
        write_submission(tmp_path, "student", typed(honest)), tmp_path / ASSIGNMENT
    )
    found = sources_of(tmp_path / "submitted", ["student", "..", "student/..", ""])
    assert found["student"][NOTEBOOK]  # and "submitted/.." holds the same notebooks
    assert found == {"student": found["student"], "..": {}, "student/..": {}, "": {}}
