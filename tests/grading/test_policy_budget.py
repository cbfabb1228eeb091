"""The grader's own cost per student is bounded (issue 23): written as the attacker would.

The attacker submits legal notebooks, under every cap, whose reading is the grader's costliest:
sixteen aliased modules, an ``or``-union of them all and long attribute chains through it
(``corpus.pathological_cells``). Read in the grader's process, one such notebook cost it about
13 s of CPU and 100 MB. Now the reading runs in the policy reader's process under a budget; the
attacker's items get ``needs-review`` (or ``grader-budget``) with a message that says why, the
grader's process does not grow, and a bystander graded alongside keeps every point. A student
who floods the reply pipe is read up to ``Limits.student_reply_bytes`` raw bytes in all.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest
import torch
from conftest import NOTEBOOK_OF, full_marks, write_submission
from corpus import (
    GRADED,
    MULTI_IN,
    Entry,
    forge,
    pathological_cells,
    solved,
    typed,
    write_pathological,
)

from autograder import EXERCISES
from autograder.batch import grade_batch
from autograder.grading import policy_reading
from autograder.grading.grader import Pending, Policy, prepare_file
from autograder.grading.policy_reading import (
    GRADER_BUDGET,
    READER_PROCESS,
    ReadingLimits,
    StudentBudget,
    read_policy,
)
from autograder.grading.submission import MAX_NOTEBOOK_BYTES, parse_notebook
from autograder.grading.submission import MAX_SOURCE_CHARS as MAX_CELL_CHARS
from autograder.kit import policy
from autograder.kit.policy import CLEAN, FORBIDDEN, NEEDS_REVIEW
from autograder.outputs import report
from autograder.sandbox import runner
from autograder.sandbox.runner import Limits

FORBIDDEN_SET = EXERCISES[MULTI_IN].forbidden
PREAMBLE = ["import torch\nfrom torch import nn\nimport torch.nn.functional as F"]
ATTACK = [*pathological_cells(), solved()[MULTI_IN]]
HONEST = [solved()[MULTI_IN]]
BUILTIN = [
    "def corr2d_multi_in(X, K):\n    return F.conv2d(X[None], K[None, :, :, :])[0, 0]\n"
]
RAN_OUT = "the grader's reading budget ran out"
# Without a budget this reading allocates over 100 MB in the grader's process.
GRADER_GROWTH_BYTES = 20 << 20
LIMITS = Limits(wall_seconds=3.0, cpu_seconds=3)


def ast_depth(source: str) -> int:
    deepest, stack = 0, [(ast.parse(source), 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


def resident_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def read(sources: list[str], budget: StudentBudget | None = None):
    return read_policy(
        sources,
        FORBIDDEN_SET,
        function=MULTI_IN,
        preamble=PREAMBLE,
        budget=budget or StudentBudget(),
    )


def test_the_attack_is_a_legal_notebook_under_every_cap(tmp_path):
    cells = pathological_cells()
    assert 150_000 < sum(map(len, cells)) < policy.MAX_SOURCE_CHARS
    assert all(len(cell) < MAX_CELL_CHARS for cell in cells)
    assert all(ast_depth(cell) < policy.MAX_DEPTH for cell in cells)
    folder = write_pathological(tmp_path, "attacker")
    for path in folder.iterdir():
        data = path.read_bytes()
        assert len(data) < MAX_NOTEBOOK_BYTES
        assert not hasattr(parse_notebook(data, path.name), "status"), path.name


def test_a_pathological_reading_needs_review_and_costs_the_grader_nothing():
    budget = StudentBudget()
    before = resident_bytes()
    tracemalloc.start()
    try:
        verdict = read(ATTACK, budget)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert verdict.kind == NEEDS_REVIEW and RAN_OUT in verdict.found
    assert verdict.found.endswith("(steps)")  # the deterministic budget stops it first
    assert (
        peak < GRADER_GROWTH_BYTES
    )  # the attack's 1 MB of text, sent; nothing built here
    assert resident_bytes() - before < GRADER_GROWTH_BYTES
    assert budget.reading_spent <= budget.reading.cpu_seconds
    assert READER_PROCESS.counting  # the reader found policy.py's step to count


@pytest.mark.parametrize(
    ("limits", "what"),
    [
        (ReadingLimits(), "steps"),
        (ReadingLimits(cpu_seconds=0.05, path_chars=10**12), "time"),
        (
            ReadingLimits(cpu_seconds=60, memory_bytes=40 << 20, path_chars=10**12),
            "memory",
        ),
        (ReadingLimits(wall_seconds=0.0, path_chars=10**12), "time"),
    ],
    ids=["steps", "cpu-time", "memory", "wall-clock-backstop"],
)
def test_each_budget_stops_the_reading_and_the_next_reading_is_right(limits, what):
    verdict = read(ATTACK, StudentBudget(reading=limits))
    assert verdict.kind == NEEDS_REVIEW
    assert verdict.found == f"code on which {RAN_OUT} ({what})"
    # The reader that ran out (ended or not) serves the next student as if nothing happened.
    assert read(HONEST).kind == CLEAN
    assert read(BUILTIN).kind == FORBIDDEN


def test_a_reading_that_ran_out_of_memory_ends_its_reader():
    limits = ReadingLimits(cpu_seconds=60, memory_bytes=40 << 20, path_chars=10**12)
    assert read(HONEST, StudentBudget(reading=limits)).kind == CLEAN
    started = READER_PROCESS.started
    read(ATTACK, StudentBudget(reading=limits))
    assert READER_PROCESS.pid() is None  # ended: its memory is no one's
    assert read(HONEST, StudentBudget(reading=limits)).kind == CLEAN
    assert READER_PROCESS.started == started + 1


def test_one_student_is_read_once_per_notebook_and_within_the_reading_budget(
    monkeypatch,
):
    calls = []
    real = READER_PROCESS.read
    monkeypatch.setattr(READER_PROCESS, "read", lambda *a: calls.append(1) or real(*a))
    budget = StudentBudget(reading=ReadingLimits(cpu_seconds=0.05, path_chars=10**12))
    first = read(ATTACK, budget)
    assert first.found.endswith("(time)") and calls == [1]
    # The notebook's other functions: the same verdict, not read again.
    assert read(ATTACK, budget) == first and calls == [1]
    # The student's next notebook: the reading budget is spent, nothing is read.
    assert read([*ATTACK, "# another notebook"], budget) == first and calls == [1]
    # Another student has a budget of their own.
    assert read(HONEST, StudentBudget()).kind == CLEAN and calls == [1, 1]


def test_a_student_past_the_trusted_budget_gets_grader_budget_on_the_rest(tmp_path):
    folder = write_submission(tmp_path, "student", solved())
    name = NOTEBOOK_OF["corr2d_multi_in_out_matmul"]
    pending = prepare_file(name, (folder / name).read_bytes(), Policy())
    assert isinstance(pending, Pending)
    replies = iter([{"status": "ok", "child": "", "output": "", "seconds": 0.0}] * 5)
    budget = StudentBudget(cpu_seconds=0.0)
    result = pending.finish(replies, LIMITS, Policy(), budget)
    graded = [item for item in result.items if item.status != "needs-manual-grade"]
    assert graded and {item.status for item in graded} == {GRADER_BUDGET}
    assert all("all the time it gives one student" in i.message for i in graded)
    assert (
        next(replies, None) is None
    )  # every reply consumed: the next notebook's align


def test_the_grader_judges_in_one_thread_so_a_busy_machine_spends_no_budget(tmp_path):
    """With a thread per core, the judge's tiny tensors made its threads wait for each other
    at a high load, and that waiting was CPU time charged to the student's budget."""
    folder = write_submission(tmp_path, "student", solved())
    name = NOTEBOOK_OF[MULTI_IN]
    pending = prepare_file(name, (folder / name).read_bytes(), Policy())
    assert isinstance(pending, Pending)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        replies = iter(
            [{"status": "ok", "child": "", "output": "", "seconds": 0.0}] * 9
        )
        pending.finish(replies, LIMITS, Policy(), StudentBudget())
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def scores(result: dict) -> dict[str, tuple[float | None, str]]:
    return {row["item"]: (row["score"], row["status"]) for row in report.rows(result)}


def messages(result: dict) -> dict[str, str]:
    return {row["item"]: row["message"] for row in report.rows(result)}


def policed_cells() -> set[str]:
    """The test cells of the functions with a policy (their items may need review)."""
    return {
        item.cell for ex in EXERCISES.values() if ex.forbidden for item in ex.rubric
    }


def exercise_cells() -> set[str]:
    return {item.cell for ex in EXERCISES.values() for item in ex.rubric}


@pytest.mark.slow
@pytest.mark.sandbox
def test_pathological_notebooks_need_review_and_a_bystander_keeps_full_marks(
    tmp_path, warm_sandbox
):
    write_submission(tmp_path, "a_bystander", solved())
    write_pathological(tmp_path, "attacker")
    write_submission(tmp_path, "z_bystander", solved())
    tracemalloc.start()
    try:
        results = grade_batch(
            tmp_path / "submitted", tmp_path / "out", sandbox=warm_sandbox(LIMITS)
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    by = {r["student"]: r for r in results}
    full = full_marks()
    assert scores(by["a_bystander"]) == full
    assert scores(by["z_bystander"]) == full
    attacked = policed_cells()
    assert scores(by["attacker"]) == full | dict.fromkeys(attacked, (0.0, NEEDS_REVIEW))
    assert all(RAN_OUT in messages(by["attacker"])[cell] for cell in attacked)
    # Three students and their reports, and nothing the attacker made the reader build.
    assert peak < 3 * GRADER_GROWTH_BYTES


@pytest.mark.slow
@pytest.mark.sandbox
def test_a_student_whose_reading_spends_the_trusted_budget_gets_grader_budget(
    tmp_path, monkeypatch, warm_sandbox
):
    # A reading budget as large as the student's: the reading runs until the student's
    # trusted time is gone (an honest student's is about 0.1 s).
    monkeypatch.setattr(policy_reading, "STUDENT_CPU_SECONDS", 1.0)
    monkeypatch.setattr(
        policy_reading,
        "READING",
        ReadingLimits(
            cpu_seconds=10,
            path_chars=10**12,
            memory_bytes=4 << 30,
            address_space_bytes=8 << 30,
        ),
    )
    write_submission(tmp_path, "a_bystander", solved())
    write_pathological(tmp_path, "attacker")
    write_submission(tmp_path, "z_bystander", solved())
    results = grade_batch(
        tmp_path / "submitted", tmp_path / "out", sandbox=warm_sandbox(LIMITS)
    )
    by = {r["student"]: r for r in results}
    full = full_marks()
    assert scores(by["a_bystander"]) == full
    assert scores(by["z_bystander"]) == full
    first = {
        item.cell for item in EXERCISES[MULTI_IN].rubric
    }  # its reading spent the budget
    later = exercise_cells() - first  # every item after it, in notebook order
    expected = (
        full
        | dict.fromkeys(first, (0.0, NEEDS_REVIEW))
        | dict.fromkeys(later, (0.0, GRADER_BUDGET))
    )
    assert scores(by["attacker"]) == expected
    text = messages(by["attacker"])
    assert all(f"{RAN_OUT} (time)" in text[cell] for cell in first)
    assert all("all the time it gives one student" in text[cell] for cell in later)


def flood(raw_bytes: int) -> str:
    """An answer that writes ``raw_bytes`` control characters as its reply (each one becomes six
    bytes, ``\\u0001``, in the student process's JSON), then leaves."""
    return forge(f"b'\\x01' * {raw_bytes} + b'\\n'")


@pytest.mark.slow
@pytest.mark.sandbox
def test_a_flooding_student_is_read_up_to_the_per_student_cap(
    tmp_path, monkeypatch, warm_sandbox
):
    received: dict[int, int] = {}
    close = runner.Session.close

    def counted(session: runner.Session) -> None:
        received[id(session)] = max(received.get(id(session), 0), session.received)
        close(session)

    monkeypatch.setattr(runner.Session, "close", counted)
    # 1.5 MB per function, 9 MB once escaped: under the per-job cap (8 MB raw, 48 MB once
    # escaped), eight of them are 72 MB from one student.
    typed_flood = typed(Entry({name: flood(3 << 19) for name in GRADED}))
    write_submission(tmp_path, "a_bystander", solved())
    write_submission(tmp_path, "flooder", typed_flood)
    write_submission(tmp_path, "z_bystander", solved())
    results = grade_batch(
        tmp_path / "submitted", tmp_path / "out", sandbox=warm_sandbox(LIMITS)
    )
    by = {r["student"]: r for r in results}
    full = full_marks()
    assert scores(by["a_bystander"]) == full
    assert scores(by["z_bystander"]) == full
    cells = exercise_cells()
    assert scores(by["flooder"]) == full | dict.fromkeys(cells, (0.0, GRADER_BUDGET))
    text = messages(by["flooder"])
    assert all(runner.STUDENT_BYTES_SPENT in text[cell] for cell in cells)
    cap = LIMITS.student_reply_bytes
    assert max(received.values()) <= cap + 1  # the flooder's session, the largest
    assert (
        sorted(received.values())[-2] < cap // 8
    )  # an honest student's: a few MB at most


def test_the_reader_is_a_python_without_torch():
    source = policy_reading.READER.read_text()
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        node.module.split(".")[0]
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ImportFrom) and node.module
    }
    assert imported <= {"__future__", "importlib", "json", "math", "os", "resource",
                        "signal", "sys", "time"}  # fmt: skip


def test_the_reader_ends_with_the_grader_that_started_it(tmp_path):
    """A grade command's interpreter ends with its reader running (it serves every student):
    the reader is ended and waited for then, not left to the interpreter's shutdown, which
    warned of a subprocess still running and left it to die on its closed pipe."""
    pid_file = tmp_path / "reader.pid"
    script = (
        "from pathlib import Path; from autograder.grading.policy_reading import "
        "READER_PROCESS, StudentBudget, read_policy; "
        "read_policy(['x = 1'], frozenset({'conv2d'}), function='f', preamble=[], "
        "budget=StudentBudget()); "
        f"Path({str(pid_file)!r}).write_text(str(READER_PROCESS.pid()))"
    )
    run = subprocess.run(
        [sys.executable, "-X", "dev", "-c", script],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "ResourceWarning" not in run.stderr, run.stderr
    reader = int(pid_file.read_text())
    assert not Path(f"/proc/{reader}").exists()  # ended and reaped, not a zombie
