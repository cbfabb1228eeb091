"""Shared fixtures: the repository's real notebooks, and submissions built from them."""

from __future__ import annotations

import contextlib
import copy
import functools
import gc
import hashlib
import io
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Collection
from dataclasses import asdict
from pathlib import Path
from typing import TypeVar

import nbformat
import nbgrader.api
import pytest
from jupyter_core.application import NoStart
from nbgrader.apps import NbGraderApp

from autograder import EXERCISES, notebooks
from autograder.course_build.release import nbgrader_env
from autograder.grading.grader import manual_items
from autograder.grading.scoring import MANUAL, ItemScore
from autograder.integration.course_config import SECRET_FILE
from autograder.paths import ASSIGNMENT, RELEASE_DIR, ROOT, SOURCE_DIR
from autograder.sandbox.runner import Limits, Sandbox, shared

# nbgrader stamps every new gradebook with its schema's version, which it asks of `alembic
# heads` in a new process each time (1.2 s of CPU); the answer is fixed by the installed
# nbgrader, and the tests make dozens of gradebooks in their own processes.
nbgrader.api.get_alembic_version = functools.cache(nbgrader.api.get_alembic_version)

# The test files that take longest, longest first (per-file totals of each test's time in a
# `--junitxml` run of the whole suite on four workers, 2026-12-07). `make test` hands whole
# files to its workers in collection order (`--dist loadfile --no-loadscope-reorder`; by
# default xdist would start the files with the most tests first, and the few-test, long files
# such as the Dask cluster's would start last while the other workers idle). The rest keep
# pytest's order after these.
LONGEST_FIRST = (  # seconds per file at four workers (2026-12-07, in a run of 8 min 57 s)
    "tests/test_site.py",  # 253, the fresh clone's build included (it builds the site)
    "tests/grading/test_cluster.py",  # 250
    "tests/test_course_hub.py",  # 240
    "tests/integration/test_stock_nbgrader.py",  # 201
    "tests/integration/test_inert_pages.py",  # 102
    "tests/sandbox/test_attacks.py",  # 87
    "tests/test_bare_jupyter.py",  # 82
    "tests/sandbox/test_attacks_under_stock_nbgrader.py",  # 77
    "tests/course_hub/test_lti_services.py",  # 73
    "tests/outputs/test_instructor_pages.py",  # 67
    "tests/test_readme.py",  # 62
    "tests/test_run_all.py",  # 57
    "tests/grading/test_hostile_notebooks.py",  # 55
    "tests/test_gpu_kit.py",  # 44
    "tests/grading/test_grader.py",  # 42
    "tests/integration/test_late_penalties.py",  # 41
    # 39, after the hub's lock (tests/hubs.py): late, so that the hub file is nearly done.
    "tests/course_hub/test_lti_launch.py",
    "tests/kit/test_kit.py",  # 30
    "tests/course_hub/test_exchange_plugins.py",  # 27
    "tests/test_regrade.py",  # 27
    "tests/integration/test_course_secret.py",  # 19
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {path: i for i, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


def pytest_collection_finish(session: pytest.Session) -> None:
    """Freeze what the imports made (torch, d2l, nbgrader, Playwright, the test modules): it
    lives as long as the test process, and the collector would walk its half a million objects
    at every full collection and once more at exit (5 to 9 s of each worker's CPU, 2026-12-08)."""
    gc.collect()
    gc.freeze()


@functools.cache
def repository_notebook(path: Path) -> nbformat.NotebookNode:
    """A notebook of solutions/ or chapters/, parsed once per test process: the corpus builds
    hundreds of submissions from the same few files. Shared: read it, or deepcopy to change it."""
    return notebooks.read(path)


GRADED = tuple(EXERCISES)  # every graded function, in the order of the chapters
# Which notebook holds each graded function.
NOTEBOOK_OF = {name: ex.notebook for name, ex in EXERCISES.items()}
NOTEBOOK_OF |= {  # and each written answer
    item.cell: path.name
    for path in sorted(RELEASE_DIR.glob("*.ipynb"))
    for item in manual_items(repository_notebook(path))
}
# What the check kit says of a function that still raises NotImplementedError (autograder/kit).
NOT_WRITTEN = "not written yet (it raises NotImplementedError)"


def visible_not_written(name: str) -> str:
    """The one line of ``name``'s visible test while the function is not written yet."""
    return f"{name}, visible tests: {NOT_WRITTEN}. Write it above, run its cell, then this one."


# The functions of sections 7.4.1-7.4.3 (tensor in, tensor out, a shape check up front).
CORE = ("corr2d_multi_in", "corr2d_multi_in_out", "corr2d_multi_in_out_1x1")


def written_answer_ids() -> list[str]:
    """grade_ids of the written-answer cells (nbgrader "manually graded answer") of the release."""
    return [
        item.cell
        for path in sorted(RELEASE_DIR.glob("*.ipynb"))
        for item in manual_items(repository_notebook(path))
    ]


def rubric_points(name: str, *tags: str) -> float:
    """The points of ``name``'s rubric items tagged ``tags`` (all of them: the function's total).

    Tests read points here, from the rubric in ``autograder/grading/exercises.py``, so that a
    change of weights is made once.
    """
    return sum(
        item.points for item in EXERCISES[name].rubric if not tags or item.tag in tags
    )


def full_marks() -> dict[str, tuple[float | None, str]]:
    """(score, status) of each graded cell of a perfect submission, as grades.csv reports it.

    Written answers have no score until the instructor grades them in formgrader.
    """
    marks: dict[str, tuple[float | None, str]] = {}
    for ex in EXERCISES.values():
        for item in ex.rubric:
            points = marks.get(item.cell, (0.0, "passed"))[0] or 0.0
            marks[item.cell] = (points + item.points, "passed")
    for grade_id in written_answer_ids():
        marks[grade_id] = (None, MANUAL)
    return marks


def cell_by_grade_id(nb: nbformat.NotebookNode, grade_id: str) -> nbformat.NotebookNode:
    matches = [
        c
        for c in nb.cells
        if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id
    ]
    assert len(matches) == 1, (
        f"expected one cell with grade_id {grade_id!r}, found {len(matches)}"
    )
    return matches[0]


def namespace_of(grade_id: str, solution_source: str | None = None) -> dict:
    """Run a notebook's setup cell and a (possibly replaced) solution cell in a fresh namespace."""
    ns: dict = {}
    nb = repository_notebook(SOURCE_DIR / NOTEBOOK_OF[grade_id])
    for cell in nb.cells:  # the locked cells the graded functions may rely on
        setup_id = cell.metadata.get("nbgrader", {}).get("grade_id", "")
        if setup_id == "setup_imports" or setup_id.startswith(("stand_in_", "given_")):
            exec(cell.source, ns)
    exec(
        solution_source
        if solution_source is not None
        else cell_by_grade_id(nb, grade_id).source,
        ns,
    )
    return ns


def solution_source(grade_id: str) -> str:
    """The instructor's answer cell for a graded function, as a student would type it."""
    return cell_by_grade_id(
        repository_notebook(SOURCE_DIR / NOTEBOOK_OF[grade_id]), grade_id
    ).source


def stub_answered(grade_id: str, body: str) -> str:
    """The release's answer cell with ``body`` typed in place of the stub's last two lines."""
    stub = cell_by_grade_id(
        repository_notebook(RELEASE_DIR / NOTEBOOK_OF[grade_id]), grade_id
    ).source
    marker = "    # YOUR CODE HERE\n    raise NotImplementedError()"
    assert marker in stub
    return stub.replace(marker, body.strip("\n"))


def write_submission(course: Path, student: str, answers: dict[str, str]) -> Path:
    """Write ``submitted/<student>/channels/`` from the release, with some answer cells replaced.

    The notebooks are the real release; only the cells whose grade_id is in ``answers`` change,
    as when a student types into them in Jupyter.
    """
    dest = course / "submitted" / student / ASSIGNMENT
    dest.mkdir(parents=True)
    for path in sorted(RELEASE_DIR.glob("*.ipynb")):
        nb = copy.deepcopy(repository_notebook(path))
        for grade_id, source in answers.items():
            if path.name == NOTEBOOK_OF[grade_id]:
                cell_by_grade_id(nb, grade_id).source = source
        notebooks.write(nb, dest / path.name)
    return dest


# The secret of every scratch course. The graded inputs are drawn from a course's secret, so a
# new secret per run would grade on new inputs each time, and a wrong answer can be right on one
# of them by chance: a flipped kernel gives the one value of `corr2d_multi_in`'s kernel as large
# as its input right for about one secret in 1,500 (2 of 3,000 drawn), and earns that hidden
# test's "inputs left unchanged" item. tests/integration/test_course_secret.py passes None to
# test the secret's creation on first use.
TEST_SECRET = hashlib.sha256(b"the scratch courses of the test suite").hexdigest()


def build_course(
    course: Path, students: dict[str, dict[str, str]], secret: str | None = TEST_SECRET
) -> None:
    """A scratch nbgrader course: this repository's configs and sources, plus submissions,
    graded on ``secret`` (None: the course makes its own on first use, as a new course does)."""
    shutil.copy(ROOT / "nbgrader_config.py", course)
    shutil.copy(ROOT / "jupyter_server_config.py", course)
    if secret is not None:
        fd = os.open(course / SECRET_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secret + "\n")
    shutil.copytree(ROOT / "solutions", course / "solutions")
    for student, answers in students.items():
        write_submission(course, student, answers)


def recorded_result(student: str, lost: Collection[str] = frozenset()) -> dict:
    """A result as the grade command records it: every rubric item passed but those of the
    cells in ``lost``, every written answer awaiting the instructor."""
    books = []
    for path in sorted(RELEASE_DIR.glob("*.ipynb")):
        items = [
            ItemScore(
                item.cell,
                item.tag,
                0.0 if item.cell in lost else item.points,
                item.points,
                "failed" if item.cell in lost else "passed",
                "",
            )
            for ex in EXERCISES.values()
            if ex.notebook == path.name
            for item in ex.rubric
        ] + manual_items(repository_notebook(path))
        books.append({"notebook": path.name, "items": [asdict(i) for i in items]})
    return {"student": student, "assignment": ASSIGNMENT, "notebooks": books}


def gradebook_view(rows: list[dict]) -> dict[str, tuple[float, bool]]:
    """grades.csv as nbgrader's gradebook shows it: a written answer is 0 and awaits a grader."""
    return {row["item"]: (row["score"] or 0.0, row["status"] == MANUAL) for row in rows}


def nbgrader(course: Path, *args: str) -> str:
    """Run a stock nbgrader command in ``course``, as an instructor would; its log, if it worked.

    In this process, as nbgrader's own tests run its commands (``nbgrader.tests.run_nbgrader``):
    the command reads the course's ``nbgrader_config.py`` and grades in this process's shared
    sandbox. A new process would import nbgrader, torch and the grader again, ask ``alembic
    heads`` and start a zygote: about 8 s of CPU per command, dozens of times in the suite.
    Warnings show as the command line shows them, not as errors.
    """
    log = io.StringIO()
    app = NbGraderApp.instance()
    environ, path, code = os.environ.copy(), sys.path.copy(), 0
    try:
        os.environ.update(nbgrader_env())
        with (
            contextlib.chdir(course),
            contextlib.redirect_stdout(log),
            contextlib.redirect_stderr(log),
            warnings.catch_warnings(record=True) as warned,
        ):
            warnings.simplefilter("default")
            app.initialize(list(args))
            app.init_logging(logging.StreamHandler, [log], color=False, subapps=True)
            app.start()
    except NoStart:  # how a finished subcommand returns
        pass
    except SystemExit as exit:
        code = exit.code
    finally:
        app.reset()
        os.environ.clear()
        os.environ.update(environ)
        sys.path[:] = path  # nbgrader put the course first on it
    for w in warned:  # in the log, as the command prints them
        log.write(warnings.formatwarning(w.message, w.category, w.filename, w.lineno))
    assert not code, f"nbgrader {' '.join(args)} failed:\n{log.getvalue()}"
    return log.getvalue()


def readme_blocks(test_file: str) -> list[str]:
    """The README's bash blocks marked "run as written by <test_file>", in order."""
    mark = f"<!-- run as written by {test_file}"
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(re.escape(mark) + r"[^\n]*\n```bash\n(.*?)```", text, re.S)
    assert len(blocks) == text.count(mark), "a marked block is not a ```bash block"
    return blocks


def instructor_env(course: Path) -> dict[str, str]:
    """A shell as the instructor has it: no venv active, Jupyter's own files in the course."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")
    }
    env["PATH"] = os.pathsep.join(
        p for p in env["PATH"].split(os.pathsep) if ".venv" not in p
    )
    env["HOME"] = str(course / "home")
    env["JUPYTER_CONFIG_DIR"] = str(course / "home" / "jupyter")
    return env


def run_block(block: str, course: Path) -> str:
    """Run a README block as written, in ``course``, as the instructor's shell would."""
    done = subprocess.run(
        ["bash", "-e", "-c", block],
        cwd=course,
        env=instructor_env(course),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, (
        f"{block}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return done.stdout + done.stderr


def resume_after_a_kill(
    out: Path, scratch: Path, killed_before: list[str], sandbox: Sandbox
) -> Path:
    """Copy a graded batch's ``out`` as if the run had been killed before ``killed_before``
    were graded (their results and grades.csv gone), grade it again in ``sandbox``, and
    return the copy."""
    from autograder.batch import grade_batch

    resumed = scratch / "resumed"
    shutil.copytree(out, resumed)
    for student in killed_before:
        (resumed / "results" / f"{student}.json").unlink()
    (resumed / "grades.csv").unlink()
    grade_batch(out.parent / "submitted", resumed, sandbox=sandbox)
    return resumed


def same_files(a: Path, b: Path) -> bool:
    """Every file under ``a`` has a byte-identical twin under ``b``."""
    files = [p for p in a.rglob("*") if p.is_file() and p.name != "gradebook.db"]
    return all((b / p.relative_to(a)).read_bytes() == p.read_bytes() for p in files)


@pytest.fixture(scope="session")
def warm_sandbox() -> Callable[[Limits], Sandbox]:
    """A started sandbox, this test process's shared one (``sandbox.runner.shared``, which the
    in-process nbgrader commands grade in too): a new zygote imports torch and d2l (about 6 s
    of CPU), and nothing a student does reaches the zygote or the next student
    (tests/sandbox/test_attacks.py). Two sets of limits are kept warm, the least recently used
    closed. A test that starts, breaks or patches a sandbox on purpose makes its own."""

    def warm(limits: Limits) -> Sandbox:
        sandbox = shared(limits)
        sandbox.start()  # again, if a test's student took the zygote down
        return sandbox

    return warm


# The browser tests drive Debian's Chromium (no browser download), started as the guide says.
# Chromium 156 also opens its address bar's suggestion popups as WebUI pages with every page,
# one more renderer each that no headless page shows: without them, 21 loads of the site's
# pages took 23 s of CPU instead of 40 s (2026-12-07, this 2-core machine).
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-features=WebUIOmniboxPopup,WebUIOmniboxAimPopup",
]


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium through Playwright, one per test module."""
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is not installed: run `make setup`")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
        )
        yield browser
        browser.close()


# What only the instructor has, for the tests that the release and the site hold none of it.
def solution_lines() -> set[str]:
    """Lines of code that only the instructor has: the reference module's function bodies and
    the solutions' answer code (long enough to be an answer, not an idiom)."""
    lines = set()
    body = False
    for line in (
        (ROOT / "autograder" / "grading" / "reference.py").read_text().splitlines()
    ):
        body = body or line.startswith("def ")
        stripped = line.strip()
        if (
            body
            and len(stripped) > 24
            and not stripped.startswith(('"""', "#", "def "))
        ):
            lines.add(stripped)
    for path in sorted(SOURCE_DIR.glob("*.ipynb")):
        for cell in repository_notebook(path).cells:
            if "### BEGIN SOLUTION" in cell.source:
                answer = cell.source.split("### BEGIN SOLUTION")[1]
                answer = answer.split("### END SOLUTION")[0]
                lines |= {
                    ln.strip() for ln in answer.splitlines() if len(ln.strip()) > 24
                }
    return lines - given_lines()


def given_lines() -> set[str]:
    """What the release shows on purpose: the stubs' signatures and the given helpers
    (``conv2d_output_size`` of section 7.3, in the exercises)."""
    lines = set()
    for path in sorted(RELEASE_DIR.glob("*.ipynb")):
        for cell in repository_notebook(path).cells:
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("solution") or meta.get("grade_id", "").startswith("given_"):
                lines |= {ln.strip() for ln in cell.source.splitlines()}
    return lines


def model_answers() -> list[tuple[str, str]]:
    """(written answer, a sentence of its model answer or rubric) from solutions/."""
    found = []
    for path in sorted(SOURCE_DIR.glob("*.ipynb")):
        for cell in repository_notebook(path).cells:
            meta = cell.metadata.get("nbgrader", {})
            if cell.cell_type == "markdown" and meta.get("solution"):
                found += [
                    (meta["grade_id"], s.strip())
                    for s in re.split(r"(?<=[.:])\s", cell.source)
                    if len(s.strip()) > 40
                ]
    return found


T = TypeVar("T")


def wait_for(
    condition: Callable[[], T], timeout: float, what: str, interval: float = 0.25
) -> T:
    """Poll ``condition`` until it returns something true; its value, or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def stop_group(proc: subprocess.Popen, seconds: float = 60) -> None:
    """Stop a server started with ``start_new_session``: SIGTERM its process group, wait for
    the leader, SIGKILL the group after ``seconds`` (a hub stopping its users' servers takes
    tens of seconds on a busy machine). Always reaped, so no ResourceWarning fails a teardown."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
