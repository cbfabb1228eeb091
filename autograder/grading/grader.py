"""Grade submissions: read each notebook, run each answer in the sandbox, score the replies.

Everything that can go wrong with one student (a broken file, a deleted cell, an endless loop, a
crash) becomes a status on that student's items; nothing here raises for it.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import hmac
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from autograder import notebooks
from autograder.grading.exercises import (
    EXERCISES,
    Case,
    Exercise,
    refused_operators,
    reseeded,
    tensor_data,
)
from autograder.grading.mistakes import missing_function, syntax_problem
from autograder.grading.policy_reading import GRADER_BUDGET, StudentBudget, read_policy
from autograder.grading.recovery import (
    RECOVERED,
    Recovered,
    has_lost_answers,
    recover_answer,
    recover_written_answer,
    recovered_sources,
)
from autograder.grading.scoring import MANUAL, MANUAL_MESSAGE, ItemScore, score_exercise
from autograder.grading.submission import (
    Answer,
    Problem,
    edited_locked_cells,
    find_answer,
    parse_notebook,
    read_submitted,
    release_notebook,
    submitted_names,
    written_answer,
)
from autograder.kit.judging import policy_outcome
from autograder.kit.policy import FORBIDDEN, student_sources
from autograder.paths import ASSIGNMENT, RELEASE_DIR
from autograder.sandbox.replies import (
    REFUSED_WORDS,
    MalformedReplyError,
    not_defined,
    parse_child,
)
from autograder.sandbox.runner import (
    STUDENT_BYTES_SPENT,
    Limits,
    Sandbox,
    SandboxUnavailableError,
    Session,
)
from autograder.untrusted import clean_text

log = logging.getLogger("autograder")

# The release's own cells that run before the student's: the imports, and locked helpers the
# exercises give (grade_id ``given_*``), always from the release, whatever the submission says.
SETUP_CELL = "setup_imports"
GIVEN_PREFIX = "given_"
# Notebooks of unknown names listed in a student's results (the student chooses how many).
MAX_STRAY_NAMES = 20
GRADED_NAMES = frozenset(EXERCISES)


@dataclass(frozen=True)
class Policy:
    """Course-wide grading choices (``nbgrader_config.py``, or the grade command's options)."""

    # A by-hand function that calls torch's convolution: "zero" points, or "report" only.
    conv: str = "zero"
    # A course secret: graded inputs that students cannot reproduce ("" = the public seeds).
    seed_salt: str = ""
    # Whose submission this policy grades: part of what the graded inputs are derived from.
    student: str = ""

    def for_student(self, student: str) -> Policy:
        return dataclasses.replace(self, student=student)

    def inputs_salt(self, notebook: str, sources: list[str]) -> str:
        """The salt of one submitted notebook's graded inputs: the course secret keyed on the
        student, the notebook and the code the student wrote in it ("" = the public seeds).

        So inputs differ for every student and for every change of code: a table of answers
        to inputs seen once (leaked, printed, shared) answers nothing in the next submission or
        for anyone else. Deterministic, so any grade can be reproduced from the results' log.
        """
        if not self.seed_salt:
            return ""
        return hmac.new(
            self.seed_salt.encode(),
            f"{self.student}\n{notebook}\n{code_digest(sources)}".encode(),
            hashlib.sha256,
        ).hexdigest()


def code_digest(sources: list[str]) -> str:
    """sha256 of every cell a student wrote in a notebook, in order (logged with the result)."""
    return hashlib.sha256("\0".join(sources).encode()).hexdigest()


def inputs_log(exercises: list[Exercise], sources: list[str]) -> dict:
    """What a notebook's exercises were graded on (never the secret): the seed of each random
    case and the sizes of each counting case, enough to rebuild every input; and the digest
    of the code they were derived from."""
    return {
        "code_sha256": code_digest(sources),
        "seeds": {
            ex.name: [dict(c.params) if c.params else c.seed for c in ex.cases]
            for ex in exercises
        },
    }


@dataclass(frozen=True)
class NotebookResult:
    notebook: str
    items: list[ItemScore]
    notes: list[str]
    inputs: dict = field(default_factory=dict)  # inputs_log(): empty where nothing ran


def _failed(ex: Exercise, status: str, message: str) -> list[ItemScore]:
    return [
        ItemScore(i.cell, i.description, 0.0, i.points, status, message)
        for i in ex.rubric
    ]


def manual_items(
    release_nb, nb=None, problem: Problem | None = None
) -> list[ItemScore]:
    """The release's written-answer cells ("manually graded answer"): not scored here.

    With the submission ``nb``, an answer left blank scores 0 at once, as in nbgrader; with a
    ``problem`` (an unreadable file), every answer gets that status. An answer whose cell lost
    its id, found after its question (``recovery``), waits for the instructor like any other,
    with a note that says where it was found.
    """
    items = []
    for cell in release_nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if not (meta.get("grade") and meta.get("solution")):
            continue
        issue = problem or (written_answer(nb, cell) if nb is not None else None)
        message = MANUAL_MESSAGE
        if nb is not None and issue is not None and issue.status == "missing-cell":
            found = recover_written_answer(nb, release_nb, meta["grade_id"])
            issue, message = (
                (found, message) if isinstance(found, Problem) else (None, found.note)
            )
        status, message = (issue.status, issue.message) if issue else (MANUAL, message)
        items.append(
            ItemScore(
                meta["grade_id"], "written answer", 0.0, meta["points"], status, message
            )
        )
    return items


def _student_cells(nb, release_nb, answer: Answer) -> list[str]:
    """The answer cell plus any code cells the student added, in notebook order."""
    release_ids = {cell.get("id") for cell in release_nb.cells}
    cells = []
    for cell in nb.cells:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if cell.cell_type == "code" and (
            grade_id == answer.grade_id or cell.get("id") not in release_ids
        ):
            cells.append(cell.source)
    return cells


def setup_cells(release_nb) -> list[str]:
    """The release's own cells that run before the student's (imports, given helpers)."""
    return [
        c.source
        for c in release_nb.cells
        if (grade_id := c.metadata.get("nbgrader", {}).get("grade_id", ""))
        == SETUP_CELL
        or grade_id.startswith(GIVEN_PREFIX)
    ]


def locate_answer(ex: Exercise, nb, release_nb) -> Answer | Recovered | Problem:
    """The answer cell of ``ex`` by its id; where no cell carries the id, the cell that defines
    the function (``recovery``); else what leaves nothing to grade."""
    answer = find_answer(nb, ex.name)
    if isinstance(answer, Problem) and answer.status == "missing-cell":
        return recover_answer(nb, release_nb, ex.name, GRADED_NAMES)
    return answer


def exercise_job(
    ex: Exercise,
    nb,
    release_nb,
    setup: list[str],
    policy: Policy = Policy(),
    located: Answer | Recovered | Problem | None = None,
) -> dict | Problem:
    """What the sandbox runs for ``ex`` (``ex`` with the course's inputs) after the release's
    ``setup`` cells, or the problem that leaves nothing to run (the answer cell missing,
    duplicated or changed).

    Under the course policy "zero" the job switches off, at the dispatcher, the operators
    ``ex`` forbids: a routine reached in a way the source does not show still computes
    nothing. Under "report" the points stay, so the routines must run.
    """
    answer = located or locate_answer(ex, nb, release_nb)
    if isinstance(answer, Problem):
        return answer
    if isinstance(answer, Recovered):
        source, cells = answer.answer.source, answer.cells
    else:
        source, cells = answer.source, _student_cells(nb, release_nb, answer)
    unparsable = syntax_problem(ex.name, source)
    if unparsable is not None:
        return unparsable
    return {
        "function": ex.name,
        "setup": setup,
        "cells": cells,
        "stand_ins": list(ex.stand_ins),
        "cases": [sandbox_case(case) for case in ex.cases],
        "refuse": refused_operators(ex.forbidden) if policy.conv == "zero" else [],
    }


def sandbox_case(case: Case) -> dict:
    """What the sandbox receives for a case: its inputs and nothing else.

    The tensors themselves (eighths, exact as JSON floats), never the seed that drew them:
    student code can read its job, and nothing in it may lead back to the graded inputs of
    another case or submission. A counting case's inputs are its keyword arguments.
    """
    if case.params:
        return {"params": dict(case.params)}
    X, K = case.inputs()
    return {
        "dtype": str(case.dtype).removeprefix("torch."),
        "X": tensor_data(X),
        "K": tensor_data(K),
    }


def score_reply(
    ex: Exercise,
    reply: dict,
    job: dict,
    sources: list[str],
    limits: Limits,
    policy: Policy,
    budget: StudentBudget | None = None,
) -> tuple[list[ItemScore], list[str]]:
    """Points for what the sandbox sent back for ``ex``'s ``job``, read as hostile data; the
    policy from ``sources``, every cell the student wrote in the notebook, read within
    ``budget`` (this student's)."""
    if reply["status"] != "ok":
        status = clean_text(reply["status"], 100)
        kind = {"timeout": "timeout", STUDENT_BYTES_SPENT: GRADER_BUDGET}
        return _failed(ex, kind.get(status, "crashed"), f"{ex.name}: {status}"), []
    cells = job["setup"] + job["cells"]
    try:
        returned, cell_errors = parse_child(
            reply["child"], ex, limits.result_bytes, cells
        )
    except MalformedReplyError as error:
        return _failed(
            ex, "crashed", f"{ex.name}: the grader got no usable answer ({error})"
        ), []
    if returned and all(r.error == not_defined(ex.name) for r in returned):
        missing = missing_function(ex.name, sources)
        return _failed(ex, missing.status, missing.message), []
    notes = [f"{ex.name}: a cell raised {e}" for e in cell_errors]
    # The policy, from every cell the student wrote here: never from the sandbox's reply.
    verdict = read_policy(
        sources,
        ex.forbidden,
        function=ex.name,
        preamble=job["setup"],
        budget=budget or StudentBudget(),
        refused_at_run_time=job["refuse"] == ["convolution"],
    )
    if isinstance(verdict, Problem):
        return _failed(ex, verdict.status, verdict.message), notes
    refused = next(
        (r.error for r in returned if (r.error or "").startswith(REFUSED_WORDS)), None
    )
    if refused is not None:
        message = (  # the routine by name where the reading found it, else the line
            policy_outcome(ex, verdict, zero=True)[1]
            if verdict.kind == FORBIDDEN
            else refused_message(ex, refused)
        )
        return _failed(ex, "builtin-convolution", message), notes
    items, score_notes = score_exercise(
        ex, returned, policy_verdict=verdict, conv_policy=policy.conv
    )
    return items, notes + score_notes


def refused_message(ex: Exercise, error: str) -> str:
    """Feedback for an answer that reached an operator the sandbox had switched off."""
    what = (
        " and im2col (F.unfold)" if "im2col" in refused_operators(ex.forbidden) else ""
    )
    return (
        f"{ex.name} reached {error}: PyTorch's convolutions{what} are switched off while "
        "this exercise is graded, as it asks you to write the computation yourself"
    )


def grade_notebook(
    path: Path, sandbox: Sandbox | Session, policy: Policy = Policy()
) -> NotebookResult:
    """Grade one submitted file (a file that is not a notebook costs its own items only)."""
    return grade_file(path.name, read_submitted(path), sandbox, policy)


def grade_file(
    name: str, data: bytes | Problem, sandbox: Sandbox | Session, policy: Policy
) -> NotebookResult:
    """Grade the submitted bytes of release notebook ``name`` (or the problem reading them)."""
    return grade_files({name: data}, sandbox, policy)[0]


def grade_files(
    files: dict[str, bytes | Problem], sandbox: Sandbox | Session, policy: Policy
) -> list[NotebookResult]:
    """Grade one student's notebooks (``files``: release name -> bytes, or the problem reading
    them), in that order.

    Every notebook's answers run in one child, one fork per student (as one kernel per student
    would run them: they share that process's state, which only this student's code can
    change). A job that times out or crashes may have left the child, or forged what the jobs
    after it reply; so from the first notebook where one did, each later notebook is graded
    again on its own, in a child of its own, as if every notebook had had one from the start.
    """
    if isinstance(sandbox, Sandbox):
        with sandbox.session() as session:
            return grade_files(files, session, policy)
    pending = [prepare_file(name, data, policy) for name, data in files.items()]
    jobs = [job for p in pending if isinstance(p, Pending) for job in p.runnable]
    replies = iter(_run(sandbox, jobs))
    results: list[NotebookResult] = []
    budget = StudentBudget()  # this student's trusted work, all notebooks together
    troubled = False
    for p in pending:
        if not isinstance(p, Pending):
            results.append(p)
            continue
        mine = [next(replies) for _ in p.runnable]
        if troubled and p.runnable:
            mine = _run(sandbox, p.runnable)
        result = p.finish(iter(mine), sandbox.limits, policy, budget)
        troubled = troubled or any(i.status in RERUN_AFTER for i in result.items)
        results.append(result)
    return results


def _judge_in_one_thread() -> None:
    """The grader's own tensors (right answers, known mistakes) hold a few hundred values: one
    thread computes them in microseconds, while PyTorch's default of one thread per core makes
    the threads wait for each other on a busy machine, and the waiting is this thread's CPU
    time, which the student's budget counts (``StudentBudget``). Measured at a load of 10 on two
    cores: 40 small float64 conv2d took 4.3 s and 438 ms of this thread's CPU with two threads,
    36 ms and 9 ms with one. One thread keeps the budget, and so the grade, off the load."""
    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)


# Statuses that say a child ended or misbehaved while it may still have had jobs to run.
RERUN_AFTER = frozenset({"timeout", "crashed"})


def _run(sandbox: Sandbox | Session, jobs: list[dict]) -> list[dict]:
    return sandbox.run_all(jobs) if jobs else []


@dataclass
class Pending:
    """A notebook read and its jobs built, waiting for the sandbox's replies."""

    name: str
    exercises: list[Exercise]
    jobs: list[dict | Problem]
    sources: list[str]
    notes: list[str]
    release_nb: object
    nb: object
    # Functions graded from a cell that lost its id (``recovery``): the note for each.
    recovered: dict[str, str] = field(default_factory=dict)

    @property
    def runnable(self) -> list[dict]:
        return [job for job in self.jobs if not isinstance(job, Problem)]

    def finish(
        self,
        replies,
        limits: Limits,
        policy: Policy,
        budget: StudentBudget | None = None,
    ) -> NotebookResult:
        """Score each answer from its reply (``replies``: one per runnable job, in order),
        within the student's ``budget`` of trusted work (past it: ``grader-budget``)."""
        _judge_in_one_thread()
        budget = budget or StudentBudget()
        items: list[ItemScore] = []
        notes = list(self.notes)
        for ex, job in zip(self.exercises, self.jobs, strict=True):
            if isinstance(job, Problem):
                items += _failed(ex, job.status, job.message)
                continue
            reply = next(replies)
            if budget.exhausted:
                spent = budget.problem(ex.name)
                items += _failed(ex, spent.status, spent.message)
                continue
            with budget.measured():
                ex_items, ex_notes = score_reply(
                    ex, reply, job, self.sources, limits, policy, budget
                )
            if ex.name in self.recovered:
                ex_items, ex_notes = _as_recovered(
                    ex_items, ex_notes, self.recovered[ex.name]
                )
            items += ex_items
            notes += ex_notes
        return NotebookResult(
            self.name,
            items + manual_items(self.release_nb, self.nb),
            notes,
            inputs_log(self.exercises, self.sources),
        )


def _as_recovered(
    items: list[ItemScore], notes: list[str], note: str
) -> tuple[list[ItemScore], list[str]]:
    """A recovered answer's items: those it earned say ``recovered-cell`` and where the
    answer was found; the rest keep what went wrong."""
    return [
        dataclasses.replace(i, status=RECOVERED, message=note)
        if i.status == "passed"
        else i
        for i in items
    ], [note, *notes]


def prepare_file(
    name: str, data: bytes | Problem, policy: Policy
) -> Pending | NotebookResult:
    """Read the submitted bytes of release notebook ``name`` and build its jobs; an
    unreadable file is its result at once (zero for its own items only)."""
    nb = data if isinstance(data, Problem) else parse_notebook(data, name)
    if isinstance(nb, Problem):
        return unreadable_notebook(name, nb)
    return prepare_notebook(nb, name, policy)


def unreadable_notebook(name: str, problem: Problem) -> NotebookResult:
    """Zero, with the problem as status, for every graded item of release notebook ``name``."""
    exercises = [ex for ex in EXERCISES.values() if ex.notebook == name]
    items = [
        item
        for ex in exercises
        for item in _failed(ex, problem.status, problem.message)
    ]
    items += manual_items(release_notebook(name), problem=problem)
    return NotebookResult(name, items, [])


def grade_notebook_node(
    nb,
    name: str,
    sandbox: Sandbox | Session,
    policy: Policy = Policy(),
    locked_edits: list[Problem] | None = None,
) -> NotebookResult:
    """Grade a parsed notebook that stands for the release notebook ``name``: its answers run
    as one batch (one child, as one kernel would run them), then each is scored.

    ``locked_edits``: the locked cells the student edited, when ``nb`` is no longer the
    submitted notebook (stock nbgrader has put its locked cells back); else found here.
    """
    pending = prepare_notebook(nb, name, policy, locked_edits)
    return pending.finish(iter(_run(sandbox, pending.runnable)), sandbox.limits, policy)


def prepare_notebook(
    nb, name: str, policy: Policy, locked_edits: list[Problem] | None = None
) -> Pending:
    """The jobs of a parsed notebook standing for release notebook ``name``, and what scoring
    them needs (see ``grade_notebook_node`` for ``locked_edits``)."""
    release_nb = release_notebook(name)
    if locked_edits is None:
        locked_edits = edited_locked_cells(nb, release_nb)
    names = [ex.name for ex in EXERCISES.values() if ex.notebook == name]
    lost = has_lost_answers(nb, names)
    # Where an answer lost its cell, every cell the student wrote may hold it: all are read.
    sources = (
        recovered_sources(nb, release_nb, GRADED_NAMES)
        if lost
        else student_sources(nb, release_nb)
    )
    salt = policy.inputs_salt(name, sources)
    exercises = [
        dataclasses.replace(ex, cases=reseeded(ex.cases, salt))
        for ex in EXERCISES.values()
        if ex.notebook == name
    ]
    setup = setup_cells(release_nb)
    located = {ex.name: locate_answer(ex, nb, release_nb) for ex in exercises}
    jobs = [
        exercise_job(ex, nb, release_nb, setup, policy, located[ex.name])
        for ex in exercises
    ]
    recovered = {
        name: answer.note
        for name, answer in located.items()
        if isinstance(answer, Recovered)
    }
    return Pending(
        name,
        exercises,
        jobs,
        sources,
        [problem.message for problem in locked_edits],
        release_nb,
        nb,
        recovered,
    )


@functools.cache
def graded_notebooks() -> tuple[str, ...]:
    """Release notebooks with something to grade: a graded function or a written answer.

    Read once per process: every student of a batch needs the list, and the release is fixed.
    """
    return tuple(
        sorted(
            {ex.notebook for ex in EXERCISES.values()}
            | {
                path.name
                for path in RELEASE_DIR.glob("*.ipynb")
                if manual_items(notebooks.read(path))
            }
        )
    )


@dataclass(frozen=True)
class Submission:
    """One student's submission as data: what a worker needs, with no path to follow."""

    student: str
    # Each graded notebook's bytes, or why there are none (missing, a link, too large).
    files: dict[str, bytes | Problem]
    # Notebooks of names the release does not have: listed in the results, never read.
    stray: list[str] = field(default_factory=list)


def read_submission(student_dir: Path) -> Submission:
    """Read ``submitted/<student>/<assignment>/`` without following links (on the client)."""
    known = {p.name for p in RELEASE_DIR.glob("*.ipynb")}
    # Listed, never followed; a few, in printable names (the student chose them).
    stray = [
        name
        for name in submitted_names(student_dir)
        if name.endswith(".ipynb") and name not in known
    ][:MAX_STRAY_NAMES]
    files = {name: read_submitted(student_dir / name) for name in graded_notebooks()}
    return Submission(student_dir.parent.name, files, stray)


def grade_submission(
    submission: Submission, sandbox: Sandbox, policy: Policy = Policy()
) -> dict:
    """All of one student's results as plain data (what ``report`` writes out).

    Never raises for the grader's own failure on this student (that student gets
    ``grader-error``), only SandboxUnavailableError: that machine can grade no one.
    """
    try:
        # This student's processes, and no one else's.
        files = {name: submission.files[name] for name in graded_notebooks()}
        policy = policy.for_student(submission.student)
        with sandbox.session() as session:
            results = grade_files(files, session, policy)
        return student_result(submission.student, results, submission.stray)
    except SandboxUnavailableError:
        raise
    except Exception as error:  # one student's grading failed: the batch goes on
        return grader_error_result(submission.student, error)


def grade_student(
    student_dir: Path, sandbox: Sandbox, policy: Policy = Policy()
) -> dict:
    """``grade_submission`` of the files in ``student_dir``."""
    return grade_submission(read_submission(student_dir), sandbox, policy)


def student_result(
    student: str,
    results: list[NotebookResult],
    stray: list[str] | None = None,
) -> dict:
    """One student's notebooks as the plain data ``report`` writes out and reads back."""
    return {
        "student": student,
        "assignment": ASSIGNMENT,
        "notebooks": [
            {
                "notebook": r.notebook,
                "items": [asdict(i) for i in r.items],
                "notes": r.notes,
                "inputs": r.inputs,
            }
            for r in results
        ],
        "unrecognised_files": stray or [],
    }


def grader_error(where: str, error: BaseException, scope: str) -> Problem:
    """The grader's own failure ``where`` (``for <student>``, ``in <notebook>``) on one ``scope``.

    The exception is the grader's bug or a case it did not foresee: the instructor's log names
    it, the student's items get status ``grader-error``, and the rest of the batch goes on.
    """
    log.error("grader-error %s: %s", where, clean_text(repr(error), 500))
    return Problem(
        "grader-error",
        f"the grader failed on this {scope}; your instructor has been told",
    )


def grader_error_result(student: str, error: BaseException) -> dict:
    """Every item of a student whose grading raised: zero, status ``grader-error``."""
    problem = grader_error(f"for {student}", error, "submission")
    failed = [unreadable_notebook(name, problem) for name in graded_notebooks()]
    return student_result(student, failed)


def student_dirs(submitted: Path) -> list[Path]:
    """nbgrader's layout: submitted/<student>/<assignment>/<notebook>.ipynb.

    A student or assignment folder that is a link (to another student, to ``solutions/``) is
    still listed, so that the student appears in grades.csv: ``read_notebook`` never follows it,
    and every notebook there is graded ``not-a-regular-file``, with the link named.
    """
    return sorted(
        p / ASSIGNMENT for p in submitted.iterdir() if os.path.lexists(p / ASSIGNMENT)
    )
