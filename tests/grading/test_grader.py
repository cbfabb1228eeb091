"""The sandboxed grader on the adversarial corpus: exact scores, clear statuses, no lost batch."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import time
from pathlib import Path

import nbformat
import pytest
from conftest import (
    GRADED,
    NOT_WRITTEN,
    full_marks,
    gradebook_view,
    namespace_of,
    resume_after_a_kill,
    rubric_points,
    same_files,
    solution_source,
    stub_answered,
    visible_not_written,
    write_submission,
)
from corpus import BROKEN_FILES, CORPUS, solved, typed, write_corpus, write_entry
from nbgrader.api import Gradebook

from autograder import EXERCISES, notebooks
from autograder import __main__ as cli
from autograder.batch import grade_batch
from autograder.grading import grader, reference
from autograder.grading.grader import Policy, grade_notebook
from autograder.outputs import report
from autograder.paths import ASSIGNMENT, ROOT
from autograder.sandbox import runner
from autograder.sandbox.runner import Limits

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]
LIMITS = Limits(wall_seconds=3.0, cpu_seconds=3)
FULL = full_marks()


@pytest.fixture(scope="module")
def graded(tmp_path_factory, warm_sandbox) -> tuple[Path, dict[str, dict]]:
    """The corpus graded in this process (the same batch on Dask workers writes the same
    files: tests/grading/test_cluster.py)."""
    course = tmp_path_factory.mktemp("course")
    write_corpus(course, BROKEN_FILES)
    out = course / "out"
    results = grade_batch(course / "submitted", out, sandbox=warm_sandbox(LIMITS))
    return out, {r["student"]: r for r in results}


def cell_scores(result: dict) -> dict[str, tuple[float, str]]:
    return {row["item"]: (row["score"], row["status"]) for row in report.rows(result)}


@pytest.mark.parametrize("student", sorted(CORPUS))
def test_corpus_submission_gets_exactly_its_expected_scores(graded, student):
    _, results = graded
    assert cell_scores(results[student]) == FULL | CORPUS[student].expected


@pytest.mark.parametrize("student", sorted(BROKEN_FILES))
def test_broken_notebook_costs_its_own_points_only(graded, student):
    _, results = graded
    status = BROKEN_FILES[student][1]
    expected = FULL | {
        "test_corr2d_multi_in_example": (0.0, status),
        "test_corr2d_multi_in_hidden": (0.0, status),
    }
    assert cell_scores(results[student]) == expected


def test_deleted_answer_cell_and_renamed_notebook_are_named_in_the_results(graded):
    _, results = graded
    assert cell_scores(results["broken_deleted_cell"])[
        "test_corr2d_multi_in_example"
    ] == (0.0, "missing-cell")
    renamed = results["broken_renamed"]
    assert cell_scores(renamed)["test_corr2d_multi_in_hidden"] == (
        0.0,
        "missing-notebook",
    )
    assert renamed["unrecognised_files"] == ["my-copy.ipynb"]


def test_book_solution_is_told_about_float32_without_losing_points(graded):
    out, results = graded
    notes = results["honest_book_d2l"]["notebooks"][0]["notes"]
    assert any("returned torch.float32 for torch.float64 input" in n for n in notes)
    assert (
        "precision is lost" in (out / "feedback" / "honest_book_d2l.html").read_text()
    )


def test_a_count_of_the_wrong_type_is_told_its_value_and_the_fix(graded):
    out, results = graded
    messages = {
        student: cell_scores_messages(results[student])[
            "test_conv2d_multiplications_example"
        ]
        for student in ("mistake_count_numpy_int", "mistake_count_as_float")
    }
    assert (
        "got np.int64(96): wrap it in int(...)" in messages["mistake_count_numpy_int"]
    )
    assert "The number is right" in messages["mistake_count_numpy_int"]
    page = (out / "feedback" / "mistake_count_numpy_int.html").read_text()
    assert "got np.int64(96): wrap it in int(...)" in page


def cell_scores_messages(result: dict) -> dict[str, str]:
    return {row["item"]: row["message"] for row in report.rows(result)}


# One answer, one wording (issue 27, req 5): the visible test's line for the worked example is
# the practice check's and the feedback page's, word for word. (corpus entry: the function, and
# what its worked example's line says.)
SAME_WORDS = {
    "mistake_count_numpy_int": (
        "conv2d_multiplications",
        "got np.int64(96): wrap it in int(...). The number is right; a count is an int.",
    ),
    "mistake_count_as_float": (
        "conv2d_multiplications",
        "got 96.0 (a float): return int(...), or count with //. The number is right",
    ),
    "mistake_numpy_result": (
        "corr2d_multi_in",
        "expected a torch.Tensor, got ndarray: its values are right; convert it back with "
        "torch.as_tensor.",
    ),
    "mistake_flipped_kernel": (
        "corr2d_multi_in",
        "It looks like the kernel is flipped",
    ),
    "mistake_modifies_input": (
        "corr2d_multi_in",
        "the function changed its input X or K in place; work on copies.",
    ),
}


def kit_outputs(student: str, name: str, capsys) -> tuple[str, str]:
    """What the visible test and the practice check print for the corpus entry's ``name``,
    run in the student's kernel (here: the notebook's setup cells and the answer cell)."""
    from autograder.course_build.kit_build import current_kit

    kit = current_kit()
    source = typed(CORPUS[student])[name]
    fn = namespace_of(name, source)[name]
    capsys.readouterr()
    try:
        kit.visible_test(name, fn, sources=[source])
        visible = capsys.readouterr().out
    except AssertionError as failure:
        visible = str(failure)
    kit.practice(name, fn, sources=[source])
    return visible, capsys.readouterr().out


@pytest.mark.parametrize("student", sorted(SAME_WORDS))
def test_the_visible_test_the_practice_check_and_the_feedback_page_say_it_alike(
    graded, student, capsys, monkeypatch
):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    out, _ = graded
    name, words = SAME_WORDS[student]
    visible, practice = kit_outputs(student, name, capsys)
    (line,) = [
        ln.removeprefix("FAIL ")
        for ln in visible.splitlines()
        if ln.startswith(f"FAIL {name} on the worked example") and words in ln
    ]
    page = html.unescape((out / "feedback" / f"{student}.html").read_text())
    assert line in practice
    assert line in page


def test_a_function_not_written_yet_is_told_so_alike_in_all_three(graded, capsys):
    out, _ = graded
    visible, practice = kit_outputs("mistake_not_written", "compose_kernels", capsys)
    page = html.unescape((out / "feedback" / "mistake_not_written.html").read_text())
    assert visible == visible_not_written("compose_kernels") + "\n"
    assert (
        practice
        == f"compose_kernels: {NOT_WRITTEN}: 0 of 3 points on practice inputs.\n"
    )
    assert "compose_kernels on the worked example: K1 of shape (1, 1, 2, 2)" in page
    assert f"(float32): {NOT_WRITTEN}." in page


def test_feedback_shows_shapes_never_hidden_values_or_sources(graded):
    out, _ = graded
    for page in (out / "feedback").glob("*.html"):
        text = page.read_text()
        assert (
            "tensor(" not in text
            and "BEGIN HIDDEN" not in text
            and "from autograder import check" not in text
        )


def test_interrupted_batch_resumes_to_identical_files(graded, tmp_path, warm_sandbox):
    out, _ = graded
    killed_before = ["honest_loops", "mistake_flipped_kernel"]
    assert same_files(
        out, resume_after_a_kill(out, tmp_path, killed_before, warm_sandbox(LIMITS))
    )


def test_grade_command_refuses_without_a_sandbox(tmp_path, monkeypatch, capsys):
    write_submission(tmp_path, "alice", {})
    monkeypatch.setattr(
        runner, "sandbox_problem", lambda: "bubblewrap is not installed"
    )
    shutil.copy(ROOT / "nbgrader_config.py", tmp_path)
    code = cli.main(
        [
            "grade",
            "--course",
            str(tmp_path),
            "--submitted",
            str(tmp_path / "submitted"),
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert code == 2
    assert "--unsafe-no-sandbox" in capsys.readouterr().err
    assert not (tmp_path / "out" / "results").exists()


def test_a_bubblewrap_that_hangs_is_a_refusal_in_seconds_not_a_hung_worker(
    tmp_path, monkeypatch
):
    """A worker that (re)starts runs the sandbox probe before it can grade: a bwrap that
    never exits must come back as a reason, within the probe's limit."""
    fake = tmp_path / "bin" / "bwrap"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\nexec sleep 600\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
    monkeypatch.setattr(runner, "PROBE_SECONDS", 1)
    started = time.monotonic()
    problem = runner.sandbox_problem()
    assert problem == "bubblewrap did not run /usr/bin/true in a sandbox within 1 s"
    assert time.monotonic() - started < 300  # not the fake's 600 s


def test_grade_command_writes_csv_and_feedback(tmp_path, capsys):
    write_submission(
        tmp_path, "alice", {name: solution_source(name) for name in GRADED}
    )
    out = tmp_path / "out"
    # A course of its own, so the secret it creates lands there.
    shutil.copy(ROOT / "nbgrader_config.py", tmp_path)
    command = [
        "grade",
        "--course",
        str(tmp_path),
        "--submitted",
        str(tmp_path / "submitted"),
    ]
    assert cli.main([*command, "--out", str(out)]) == 0
    lines = (out / "grades.csv").read_text().splitlines()
    assert lines[0] == "student,assignment,notebook,item,score,max_score,status,message"
    assert len(lines) == 1 + len(full_marks())
    assert (out / "feedback" / "alice.html").exists()
    assert ASSIGNMENT in lines[1]


def test_gradebook_holds_the_same_scores_as_grades_csv(graded):
    out, results = graded
    with Gradebook(f"sqlite:///{out / 'gradebook.db'}") as gb:
        for student, result in results.items():
            stored = {
                grade.name: (grade.score, grade.needs_manual_grade)
                for nb in gb.find_submission(ASSIGNMENT, student).notebooks
                for grade in nb.grades
            }
            assert stored == gradebook_view(report.rows(result))


def test_sandboxed_code_runs_as_nobody_without_capabilities_or_network(warm_sandbox):
    probe = (
        "import os, socket\n"
        "caps = open('/proc/self/status').read().split('CapEff:')[1].split()[0]\n"
        "home = os.path.exists('/root/.bashrc')\n"
        "print(os.getuid(), os.getgid(), caps, home)\n"
        "socket.create_connection(('127.0.0.1', 22), timeout=1)\n"
    )
    reply = run_cell(warm_sandbox(LIMITS), probe)
    assert reply["output"].split() == ["65534", "65534", "0000000000000000", "False"]
    # The sandbox reports an exception's class and line, never its message.
    assert "builtins.ConnectionRefusedError" in reply["child"] or (
        "builtins.OSError" in reply["child"]  # network unreachable
    )


def test_a_course_salt_defeats_answers_memorised_from_the_public_seeds(
    tmp_path, warm_sandbox
):
    """Whoever reads exercises.py can precompute the public hidden inputs; not the salted ones."""
    ex = EXERCISES["corr2d_multi_in"]
    table = {
        round(float(X.sum()), 4): reference.corr2d_multi_in(X, K).tolist()
        for X, K in (case.inputs() for case in ex.cases)
    }
    memorised = stub_answered(
        "corr2d_multi_in",
        f"    TABLE = {table!r}\n"
        "    return torch.tensor(TABLE[round(float(X.sum()), 4)], dtype=X.dtype)",
    )
    path = write_submission(tmp_path, "mallory", {"corr2d_multi_in": memorised})
    box = warm_sandbox(LIMITS)
    public = grade_notebook(path / ex.notebook, box)
    salted = grade_notebook(path / ex.notebook, box, Policy(seed_salt="s3cret"))
    assert sum(item.score for item in public.items) == rubric_points("corr2d_multi_in")
    assert sum(item.score for item in salted.items) == 0.0
    # Nothing computed: "inputs left unchanged" has nothing to be checked against.
    assert {item.status for item in salted.items} == {
        "failed",
        "hard-coded",
        "not-checked",
    }


def test_a_course_salt_defeats_counts_memorised_from_the_public_sizes(
    tmp_path, warm_sandbox
):
    """The counting exercises take sizes, not seeds: the salt changes their channel counts."""
    ex = EXERCISES["conv2d_multiplications"]
    table = {
        tuple(dict(case.params).values()): ex.answers.expected(ex, case)
        for case in ex.cases
    }
    memorised = stub_answered(
        ex.name,
        f"    TABLE = {table!r}\n"
        "    answer = TABLE.get((c_i, c_o, h, w, k_h, k_w, padding, stride))\n"
        "    if answer is None:\n"
        "        raise ValueError('sizes that do not fit')\n"
        "    return answer",
    )
    path = write_submission(tmp_path, "mallory", {ex.name: memorised})
    box = warm_sandbox(LIMITS)
    public = grade_notebook(path / ex.notebook, box)
    salted = grade_notebook(path / ex.notebook, box, Policy(seed_salt="s3cret"))
    points = {name: sum(i.score for i in r.items if ex.name in i.cell) for name, r in
              (("public", public), ("salted", salted))}  # fmt: skip
    assert points == {"public": rubric_points(ex.name), "salted": 0.0}


def test_the_sandbox_receives_each_cases_tensors_and_nothing_else():
    # The child once got each case's derived seed, which a probing submission read and printed
    # into its feedback. Now a job holds the two tensors (or a count's keyword arguments).
    import importlib.util
    import json

    import torch

    from autograder.grading.exercises import reseeded
    from autograder.grading.grader import sandbox_case

    spec = importlib.util.spec_from_file_location(
        "harness", ROOT / "autograder" / "sandbox" / "inside" / "harness.py"
    )
    harness = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(harness)
    cases = [
        c
        for ex in EXERCISES.values()
        for c in reseeded(ex.cases, "a course secret")
        if not c.params
    ]
    jobs = [sandbox_case(c) for c in cases]
    for case, job in zip(cases, jobs, strict=True):
        assert set(job) == {"dtype", "X", "K"}
        assert set(job["X"]) == set(job["K"]) == {"shape", "values"}
        if case.values is None:  # a worked example's seed is 0, and it is public anyway
            assert str(case.seed) not in json.dumps(job)
    seen = []
    harness._run_cases(
        {"function": "f", "cases": jobs},
        {"f": lambda X, K: seen.append((X.clone(), K.clone())) or X},
    )
    assert len(seen) == len(cases) > 20
    for case, (X, K) in zip(cases, seen, strict=True):
        want_X, want_K = case.inputs()
        assert X.dtype == want_X.dtype and torch.equal(X, want_X), case.describe()
        assert K.dtype == want_K.dtype and torch.equal(K, want_K), case.describe()
    counting = next(c for ex in EXERCISES.values() for c in ex.cases if c.params)
    assert sandbox_case(counting) == {"params": dict(counting.params)}


@pytest.mark.sandbox
def test_a_probe_that_reads_its_job_from_the_callers_frame_finds_no_seed(
    tmp_path, warm_sandbox
):
    # The attack that read the derived seeds: walk up to the harness's frame, raise what is
    # there, and read it back in the feedback. The job now holds the tensors alone.
    probe = stub_answered(
        "corr2d_multi_in",
        "    import sys\n"
        "    found, frame = [], sys._getframe(1)\n"
        "    while frame is not None:\n"
        "        for value in frame.f_locals.values():\n"
        "            if isinstance(value, dict):\n"
        "                found.append(value.get('seed'))\n"
        "                found += [c.get('seed') for c in value.get('cases', [])]\n"
        "        frame = frame.f_back\n"
        "    raise ValueError(repr([s for s in found if s is not None]))",
    )
    path = write_submission(tmp_path, "mallory", {"corr2d_multi_in": probe})
    policy = Policy(seed_salt="s3cret").for_student("mallory")
    box = warm_sandbox(LIMITS)
    result = grade_notebook(path / "01-multiple-input-channels.ipynb", box, policy)
    feedback = " ".join(item.message for item in result.items)
    assert sum(item.score for item in result.items) == 0.0
    assert "ValueError" in feedback  # the probe ran and its text came back...
    seeds = result.inputs["seeds"]["corr2d_multi_in"]
    cases = EXERCISES["corr2d_multi_in"].cases
    for case, seed in zip(cases, seeds, strict=True):
        if case.values is None:  # worked examples keep their public seed 0
            assert str(seed) not in feedback  # ...without a seed of any case


def test_with_nothing_switched_off_a_model_layer_still_evades_the_reading(
    tmp_path, monkeypatch, warm_sandbox
):
    # The corpus expects builtin-convolution for each evasion. Without the run-time refusal,
    # a d2l model's layer computes with PyTorch's own routine under a clean reading of its
    # source (full marks: the hole the refusal closes), while the stores of a routine in a
    # default argument are caught by the reading too (it checks every statement).
    course = tmp_path / "course"
    evasions = (
        "policy_evasion_model_layer",
        "policy_evasion_dead_store",
        "policy_evasion_im2col_dead_store",
    )
    for student in evasions:
        write_entry(course, student)
    monkeypatch.setattr(grader, "refused_operators", lambda forbidden: [])
    results = {
        r["student"]: r
        for r in grade_batch(
            course / "submitted", course / "out", sandbox=warm_sandbox(LIMITS)
        )
    }
    assert cell_scores(results["policy_evasion_model_layer"]) == FULL
    for student in evasions[1:]:
        assert cell_scores(results[student]) == FULL | CORPUS[student].expected
        assert "torch.nn.functional" in json.dumps(results[student]), student


# Text that student code made from what it read: with the hidden inputs in the process, any of
# it could carry them. Built at run time, so that the student's own source does not hold it.
CRAFTED = "'LE' + 'AK' + repr(X.flatten().tolist()[:4])"
CRAFTERS = {
    "crafts_an_error_message": f"\n    raise ValueError({CRAFTED})",
    "crafts_an_exception_class": (
        f"\n    Leak = type({CRAFTED}, (Exception,), {{}})"
        f"\n    Leak.__module__ = 'builtins'\n    raise Leak()"
    ),
    "crafts_a_returned_class": (
        f"\n    return type({CRAFTED}, (), {{'__module__': 'numpy'}})()"
    ),
    "crafts_a_print": f"\n    print({CRAFTED})\n    return X",
}


def test_text_that_student_code_crafts_on_hidden_cases_reaches_no_feedback(
    tmp_path, warm_sandbox
):
    course = tmp_path / "course"
    for student, body in CRAFTERS.items():
        answers = {"corr2d_multi_in": stub_answered("corr2d_multi_in", body)}
        write_submission(course, student, solved() | answers)
    # A cell that raises what it found in the process: its notes must not carry it either.
    write_submission(course, "crafts_in_a_cell", solved())
    path = course / "submitted" / "crafts_in_a_cell" / ASSIGNMENT
    nb = notebooks.read(path / "01-multiple-input-channels.ipynb")
    nb.cells.insert(
        3,
        nbformat.v4.new_code_cell(
            "import gc\nraise KeyError('LE' + 'AK' + repr([o for o in gc.get_objects()"
            " if isinstance(o, dict) and 'X' in o][:2])[:200])"
        ),
    )
    notebooks.write(nb, path / "01-multiple-input-channels.ipynb")
    write_submission(course, "bystander", solved())
    out = course / "out"
    results = {
        r["student"]: r
        for r in grade_batch(
            course / "submitted",
            out,
            policy=Policy(seed_salt="s"),
            sandbox=warm_sandbox(LIMITS),
        )
    }
    assert cell_scores(results["bystander"]) == FULL
    for student in [*CRAFTERS, "crafts_in_a_cell"]:
        text = (
            json.dumps(results[student])
            + (out / "feedback" / f"{student}.html").read_text()
        )
        assert "LEAK" not in text, student
    # What the trusted side still says: Python's own class and the student's own line.
    messages = " ".join(
        i["message"]
        for nb in results["crafts_an_error_message"]["notebooks"]
        for i in nb["items"]
    )
    assert re.search(
        r"raised ValueError at line \d+: `raise ValueError\('LE' \+ 'AK'", messages
    )
    forged_class = json.dumps(results["crafts_an_exception_class"])
    assert (
        "raised an exception of a class that is not one of Python's own" in forged_class
    )
    assert "got an object of a class defined in the code" in json.dumps(
        results["crafts_a_returned_class"]
    )
    assert "a cell raised KeyError at line 2" in json.dumps(results["crafts_in_a_cell"])


def test_student_code_finds_the_harness_neither_as_main_nor_as_a_module(warm_sandbox):
    # Once the harness ran as __main__ and its folder was on sys.path: `import __main__` gave
    # student code its stand-ins (which called conv2d), and `import harness` would load it again.
    probe = (
        "import importlib, sys, __main__\n"
        "found = [name for name in ('harness', 'fingerprint', 'syscall_policy')\n"
        "         if name in sys.modules or importlib.util.find_spec(name)]\n"
        "print(found, hasattr(__main__, 'run_jobs'), hasattr(__main__, 'STAND_INS'),\n"
        "      __main__.__dict__ is globals())\n"
    )
    reply = run_cell(warm_sandbox(LIMITS), probe)
    assert reply["output"].split() == ["[]", "False", "False", "True"], reply


def test_a_student_who_makes_cyclic_garbage_finds_the_collector_on(warm_sandbox):
    """The zygote imports torch with the collector off (a faster start) and must turn it back
    on before it forks: here 2 GB of garbage in reference cycles, 100 kB at a time, stays
    far under the 1 GiB limit only if the student's process collects it."""
    cycles = (
        "import gc\n"
        "for _ in range(20_000):\n"
        "    node = {'payload': bytearray(100_000)}\n"
        "    node['self'] = node\n"
        "print(gc.isenabled())\n"
    )
    reply = run_cell(warm_sandbox(LIMITS), cycles)
    assert (reply["status"], reply["output"].split()) == ("ok", ["True"]), reply


def run_cell(box: runner.Sandbox, source: str) -> dict:
    """The sandbox's reply to a job that runs one cell and grades nothing."""
    job = {
        "function": "f",
        "setup": [],
        "stand_ins": [],
        "cells": [source],
        "cases": [],
    }
    return box.run(job)


def test_a_batch_graded_in_the_callers_sandbox_starts_no_zygote_and_leaves_it_running(
    tmp_path, monkeypatch, warm_sandbox
):
    """The caller owns a sandbox it passes in: the batch grades there, starts no zygote of its
    own, and the next batch finds the same warm one."""
    box = warm_sandbox(LIMITS)
    zygote = box._proc

    def refuse(sandbox: runner.Sandbox) -> None:
        pytest.fail("the batch started a zygote of its own")

    monkeypatch.setattr(runner.Sandbox, "_start", refuse)
    write_submission(tmp_path, "a_student", solved())
    (result,) = grade_batch(tmp_path / "submitted", tmp_path / "out", sandbox=box)
    assert cell_scores(result) == FULL
    assert box._proc is zygote and zygote is not None and zygote.poll() is None


def test_the_processs_shared_sandboxes_are_kept_for_their_limits_the_least_used_closed(
    warm_sandbox,
):
    """``runner.shared``: what nbgrader's autograde and the tests' warm sandbox grade in. The
    same limits find the same running zygote; a third set of limits closes the one used least
    recently (a zygote holds hundreds of MB), and a new one starts when it first grades."""
    box = warm_sandbox(LIMITS)
    zygote = box._proc
    assert runner.shared(LIMITS) is box and box._proc is zygote
    second = runner.shared(Limits(wall_seconds=LIMITS.wall_seconds + 1))
    assert second is not box and second._proc is None  # not started until it grades
    assert runner.shared(LIMITS) is box and zygote.poll() is None  # both kept
    third = runner.shared(Limits(wall_seconds=LIMITS.wall_seconds + 2))
    assert runner.shared(LIMITS) is box and zygote.poll() is None  # used last but one
    assert runner.shared(Limits(wall_seconds=LIMITS.wall_seconds + 1)) is not second
    assert third._proc is None and box._proc is zygote
    runner.shared(Limits(wall_seconds=LIMITS.wall_seconds + 3))
    # The least recently used of three: closed.
    assert box._proc is None and zygote.poll() is not None
