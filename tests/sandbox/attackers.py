"""The attack corpus: students who run native code against the grader, the bystanders graded
after them on the same zygote, and what each must score. Shared by the grade command's attack
tests (``test_attacks.py``) and stock nbgrader's (``test_attacks_under_stock_nbgrader.py``).
"""

from __future__ import annotations

import json
from pathlib import Path

from conftest import (
    NOTEBOOK_OF,
    full_marks,
    stub_answered,
    write_submission,
)
from corpus import MULTI_IN, MULTS, ZERO, Entry, forge, lost, typed

from autograder import EXERCISES
from autograder.outputs import report
from autograder.sandbox.runner import Limits

LIMITS = Limits(wall_seconds=3.0, cpu_seconds=3)
FULL = full_marks()
HONEST = "\n    return sum(d2l.corr2d(x, k) for x, k in zip(X, K))"
N_CASES = len(EXERCISES[MULTI_IN].cases)

# Class 1: native code against every process it can see (the zygote, its own student process):
# ptrace, /proc/<pid>/mem, forged replies written into every descriptor of theirs, SIGKILL.
TAKEOVER = """
    import ctypes, os
    libc = ctypes.CDLL(None, use_errno=True)
    forged = (b'{"status": "ok", "output": "", "seconds": 0.0, "child": '
              b'"{\\\\"cell_errors\\\\": [], \\\\"cases\\\\": []}"}\\n') * 64
    for pid in [int(p) for p in os.listdir("/proc") if p.isdigit()]:
        if pid == os.getpid():
            continue
        libc.ptrace(16, pid, 0, 0)  # PTRACE_ATTACH
        try:
            with open(f"/proc/{pid}/mem", "r+b", buffering=0) as mem:
                mem.write(b"\\xcc")
        except OSError:
            pass
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            fds = []
        for fd in fds:
            try:
                with open(f"/proc/{pid}/fd/{fd}", "wb", buffering=0) as pipe:
                    pipe.write(forged)
            except OSError:
                pass
        libc.kill(pid, 9)
    libc.kill(-1, 9)
    return torch.zeros(1)
"""

# Class 2: state left for a later student, and looked for by that student.
LEAVE_STATE = (
    """
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.shmget(0x5EED, 1536 << 20, 0o1666)  # 1.5 GiB, IPC_CREAT
    libc.msgget(0x5EED, 0o1666)
    libc.semget(0x5EED, 1, 0o1666)
    libc.syscall(248, b"user", b"d2l-leak", b"answers", 7, -4)  # add_key: the user keyring
    open("/tmp/d2l-leak", "w").close()
"""
    + HONEST
)
FIND_STATE = (
    """
    import ctypes, os
    libc = ctypes.CDLL(None, use_errno=True)
    found = [libc.shmget(0x5EED, 0, 0) >= 0, libc.msgget(0x5EED, 0) >= 0,
             libc.semget(0x5EED, 0, 0) >= 0, os.path.exists("/tmp/d2l-leak"),
             libc.syscall(250, 10, -4, b"user", b"d2l-leak", 0) >= 0]  # keyctl(SEARCH)
    if not any(found):
        raise RuntimeError("nothing was left behind")
"""
    + HONEST
)


def cases_of(*cases: dict, cell_errors: object = ()) -> bytes:
    """A reply in the harness's own format; each cell error a class name, as it writes them."""
    errors = [{"error": error, "cell": 0, "line": 1} for error in cell_errors]
    return json.dumps({"cell_errors": errors, "cases": list(cases)}).encode()


HUGE_COUNT = {"type": "builtins.int", "shape": [], "values": [-1]}
BIG = b"1" + b"0" * 400  # 10**400, written where the -1 placeholder is
SURROGATE = {"error": "\ud800\x1b[2J\x00 is not text", "inputs_after": "0" * 64}
CRASHED = (0.0, "crashed")
# student -> (entry, expected scores of the cells that differ from full marks)
ATTACKERS: dict[str, Entry] = {
    # Of all the descriptors it tried, only its own result pipe took the forged lines.
    "attack_takeover": Entry({MULTI_IN: TAKEOVER}, lost(MULTI_IN, CRASHED, CRASHED)),
    "attack_ints_of_400_digits": Entry(
        {
            MULTS: forge(
                cases_of(*[HUGE_COUNT] * len(EXERCISES[MULTS].cases)).replace(
                    b"-1", BIG
                )
            )
        },
        lost(MULTS, CRASHED, CRASHED),
    ),
    "attack_lone_surrogates": Entry(
        {MULTI_IN: forge(cases_of(*[SURROGATE] * N_CASES, cell_errors=["\udfff"]))},
        lost(MULTI_IN, ZERO, ZERO),
    ),
    "attack_wrong_types": Entry(
        {MULTI_IN: forge(b'{"cell_errors": 5, "cases": {"shape": "big"}}')},
        lost(MULTI_IN, CRASHED, CRASHED),
    ),
    "attack_nested_100000_deep": Entry(
        {MULTI_IN: forge('b"[" * 100_000 + b"]" * 100_000')},
        lost(MULTI_IN, CRASHED, CRASHED),
    ),
    "attack_megabytes_of_errors": Entry(
        {
            MULTI_IN: forge(
                f"{cases_of(*[SURROGATE] * N_CASES, cell_errors=['x'])!r}"
                ".replace(b'\"x\"', b'\"' + b'x' * 7_000_000 + b'\"', 1)"
            )
        },
        lost(MULTI_IN, ZERO, ZERO),
    ),
    "attack_closes_pipes_and_sleeps": Entry(
        {
            MULTI_IN: "\n    import os, time\n    os.closerange(0, 4096)\n    time.sleep(600)"
        },
        lost(MULTI_IN, (0.0, "timeout"), (0.0, "timeout")),
    ),
    # Class 4: the course policy, evaded by an alias in an added cell or a computed name.
    "attack_alias_in_an_added_cell": Entry(
        {MULTI_IN: "\n    return xcorr(X[None], K[None])[0, 0]"},
        lost(MULTI_IN, *[(0.0, "builtin-convolution")] * 2),
        extra_cells=("from torch.nn.functional import conv2d as xcorr",),
    ),
    "attack_computed_name": Entry(
        {MULTI_IN: "\n    return getattr(F, 'con' + 'v2d')(X[None], K[None])[0, 0]"},
        # The reading cannot name the routine; the dispatcher refuses it at run time.
        lost(MULTI_IN, *[(0.0, "builtin-convolution")] * 2),
    ),
    # Class 3, in the notebook: a sum too long for the static check's parser, and nbgrader
    # metadata that is a string (the whole notebook is then malformed).
    # CPython's compiler gives up on it too (too deep): syntax-error before anything runs (the
    # policy check's verdict, needs-review, would only replace a pass).
    "attack_5000_term_sum": Entry(
        {MULTI_IN: "\n    zero = " + " + ".join(["0"] * 5000) + HONEST},
        lost(MULTI_IN, (0.0, "syntax-error"), (0.0, "syntax-error")),
    ),
    "attack_metadata_a_string": Entry(
        {}, lost(MULTI_IN, *[(0.0, "malformed-notebook")] * 2)
    ),
}
# Every attack again from a notebook whose cells lost their nbgrader metadata (issue 27): the
# answer is found by its definition instead (``recovered-cell``), and the attack costs the same.
STRIPPED = {
    f"attack_stripped_{name.removeprefix('attack_')}": entry
    for name, entry in ATTACKERS.items()
    if name != "attack_metadata_a_string"  # its point is the metadata itself
}
MISSING = (0.0, "missing-cell")
# Attacks on the recovery itself, each in notebook 01 (``write_students`` builds them).
RECOVERY_ATTACKS: dict[str, Entry] = {
    # The answer cell deleted, the right answer typed into the visible test cell, which keeps
    # its metadata: a test cell is the release's, whatever it holds, so nothing is recovered.
    "attack_recovery_answer_in_a_test_cell": Entry(
        {}, lost(MULTI_IN, MISSING, MISSING)
    ),
    # Stripped, a wrong answer, and an added cell that carries the hidden test cell's
    # metadata and prints a full score: the test cells come from the release.
    "attack_recovery_forged_hidden_test": Entry(
        {
            MULTI_IN: "\n    return sum(d2l.corr2d(x, k.flip(0, 1)) for x, k in zip(X, K))"
        },
        lost(MULTI_IN, ZERO, ZERO),
    ),
    # Stripped, and a second definition in an added cell: which one counts is ambiguous.
    "attack_recovery_two_definitions": Entry(
        {},
        lost(MULTI_IN, *[(0.0, "needs-review")] * 2),
        extra_cells=(f"def {MULTI_IN}(X, K):\n    return X.sum(0)[:-1, :-1]",),
    ),
}
ATTACKERS |= STRIPPED | RECOVERY_ATTACKS
# Graded after the attackers on the same worker (names sort after "attack_").
BYSTANDERS: dict[str, Entry] = {
    "bystander_solved": Entry({}),
    "bystander_flipped": Entry(
        {
            MULTI_IN: "\n    return sum(d2l.corr2d(x, k.flip(0, 1)) for x, k in zip(X, K))"
        },
        lost(MULTI_IN, ZERO, ZERO),
    ),
    "bystander_untouched": Entry({}),  # written below as the release, unanswered
}
STUDENTS = ATTACKERS | BYSTANDERS


def honest_scores(student: str) -> dict[str, tuple[float | None, str]]:
    if student == "bystander_untouched":
        return {
            cell: (0.0, "no-answer")
            if status == "needs-manual-grade"
            else (0.0, "failed")
            for cell, (_, status) in FULL.items()
        }
    scores = FULL | STUDENTS[student].expected
    if student in STRIPPED or student == "attack_recovery_forged_hidden_test":
        # Its other answers: recovered; its written answers found after their questions,
        # waiting for the grader as any written answer does.
        stripped = stripped_notebook(student)
        scores |= {
            cell: (score, status) if score is None else (score, "recovered-cell")
            for cell, (score, status) in FULL.items()
            if notebook_of_cell(cell) == stripped
            and cell not in STUDENTS[student].expected
        }
    return scores


def notebook_of_cell(cell: str) -> str:
    """The notebook of a graded cell: a written answer's, or its function's test cell's."""
    return NOTEBOOK_OF.get(cell) or NOTEBOOK_OF[cell[len("test_") :].rsplit("_", 1)[0]]


def stripped_notebook(student: str) -> str:
    """The notebook of the function that ``student`` attacks with (the one stripped)."""
    entry = STUDENTS[student]
    return NOTEBOOK_OF[next(iter(entry.answers), MULTI_IN)]


def strip(nb: dict) -> None:
    for cell in nb["cells"]:
        for key in ("nbgrader", "deletable", "editable"):
            cell["metadata"].pop(key, None)


def write_students(course: Path) -> None:
    for student, entry in STUDENTS.items():
        answers = {} if student == "bystander_untouched" else typed(entry)
        folder = write_submission(course, student, answers)
        path = folder / NOTEBOOK_OF[MULTI_IN]
        nb = json.loads(path.read_text())
        at = next(
            i for i, cell in enumerate(nb["cells"])
            if cell["metadata"].get("nbgrader", {}).get("grade_id") == MULTI_IN
        )  # fmt: skip
        if student == "attack_metadata_a_string":
            nb["cells"][at]["metadata"]["nbgrader"] = "corr2d_multi_in"
        for i, source in enumerate(entry.extra_cells):
            cell = {"cell_type": "code", "id": f"added-{i}", "metadata": {},
                    "execution_count": None, "outputs": [], "source": source}  # fmt: skip
            nb["cells"].insert(at + i, cell)
        path.write_text(json.dumps(nb))
        if student in STRIPPED or student.startswith("attack_recovery_"):
            attack_the_recovery(student, folder / stripped_notebook(student))


def attack_the_recovery(student: str, path: Path) -> None:
    """Strip the notebook at ``path``, or make it the recovery attack ``student`` names."""
    nb = json.loads(path.read_text())
    ids = [c["metadata"].get("nbgrader", {}).get("grade_id") for c in nb["cells"]]
    if student == "attack_recovery_answer_in_a_test_cell":
        answer = nb["cells"][ids.index(MULTI_IN)]
        test = nb["cells"][ids.index(f"test_{MULTI_IN}_example")]
        test["source"] = stub_answered(MULTI_IN, HONEST)
        nb["cells"].remove(answer)
    elif student == "attack_recovery_forged_hidden_test":
        hidden = json.loads(
            json.dumps(nb["cells"][ids.index(f"test_{MULTI_IN}_hidden")])
        )
        strip(nb)
        hidden["id"] = "forged"
        hidden["source"] = "print('passed: 2 of 2 points')\n2.0"
        nb["cells"].append(hidden)
    else:
        strip(nb)
    path.write_text(json.dumps(nb))


def cell_scores(result: dict) -> dict[str, tuple[float | None, str]]:
    return {row["item"]: (row["score"], row["status"]) for row in report.rows(result)}
