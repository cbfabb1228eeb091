"""Secure by default: a course that sets no salt grades on a secret nobody outside can read.

The seeds in exercises.py are in the course's public code (never in the students' kit). Unless
the course opts into them, both the grade command and stock nbgrader grade on inputs reseeded
with the course's ``.autograder-secret``, created once on first use.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import shutil
import stat
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import (
    GRADED,
    build_course,
    full_marks,
    nbgrader,
    solution_source,
    stub_answered,
    write_submission,
)
from nbgrader.api import Gradebook
from traitlets.config.loader import PyFileConfigLoader

from autograder import EXERCISES
from autograder import __main__ as cli
from autograder.grading import reference
from autograder.grading.exercises import reseeded
from autograder.grading.grader import Policy
from autograder.integration.course_config import (
    CONFIG_FILE,
    SECRET_FILE,
    CourseConfigError,
    course_secret,
    limits_of,
    secret_file,
    settings_of,
)
from autograder.integration.plugin import TrustedAutograde, load_settings
from autograder.outputs import report
from autograder.paths import ASSIGNMENT, RELEASE_DIR, ROOT

# The functions graded on seeded random inputs (the counting ones take fixed sizes).
SEEDED = [name for name, ex in EXERCISES.items() if ex.kind in ("conv", "compose")]


def course_with(tmp_path: Path, *settings: str) -> Path:
    """A scratch course root: this repository's nbgrader_config.py, plus ``settings`` lines."""
    course = tmp_path / "course"
    course.mkdir(parents=True)
    shutil.copy(ROOT / CONFIG_FILE, course)
    with open(course / CONFIG_FILE, "a") as f:
        f.writelines(f"{line}\n" for line in settings)
    return course


def grade_args(course: Path, *options: str):
    argv = ["grade", "--submitted", "s", "--out", "o", "--course", str(course)]
    return cli.main_parser().parse_args([*argv, *options])


def plugin_policy(course: Path, monkeypatch):
    """What stock nbgrader's TrustedAutograde grades with, run in the course root as nbgrader."""
    config = PyFileConfigLoader(CONFIG_FILE, path=str(course)).load_config()
    monkeypatch.chdir(course)
    return TrustedAutograde(config=config).policy()


def test_the_shipped_configuration_grades_on_a_secret_not_the_public_seeds():
    settings = load_settings(ROOT)
    assert settings.seed_salt == "" and not settings.public_seeds


def test_a_secret_is_created_once_private_and_reused(tmp_path):
    course = course_with(tmp_path)
    secret = course_secret(course, load_settings(course))
    path = course / SECRET_FILE
    assert len(secret) == 64 and int(secret, 16) >= 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == secret + "\n"
    assert (
        course_secret(course, load_settings(course)) == secret
    )  # a second run reads it
    assert sorted(os.listdir(course)) == [SECRET_FILE, CONFIG_FILE]  # no temp file left


def test_the_secret_file_is_ignored_by_git():
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    for path in (SECRET_FILE, f"{SECRET_FILE}.tmp1234", f"somewhere/{SECRET_FILE}"):
        done = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "-q", path])
        assert done.returncode == 0, path


def test_concurrent_first_uses_agree(tmp_path):
    course = course_with(tmp_path)
    start = threading.Barrier(16)
    got: list[str] = []

    def first_use() -> None:
        start.wait()
        got.append(secret_file(course))

    threads = [threading.Thread(target=first_use) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(got) == 16 and len(set(got)) == 1
    assert sorted(os.listdir(course)) == [SECRET_FILE, CONFIG_FILE]


def test_the_loser_of_a_first_use_race_reads_the_winners_secret(tmp_path, monkeypatch):
    """Another process links its secret in between our check and our own link."""
    course = course_with(tmp_path)
    real_link = os.link

    def winner_first(src, dst):
        (course / SECRET_FILE).write_text("the winner's secret\n")
        (course / SECRET_FILE).chmod(0o600)
        real_link(src, dst)

    monkeypatch.setattr(os, "link", winner_first)
    assert secret_file(course) == "the winner's secret"
    assert sorted(os.listdir(course)) == [SECRET_FILE, CONFIG_FILE]


def test_the_grade_command_and_stock_nbgrader_read_the_same_secret_and_policy(
    tmp_path, monkeypatch
):
    course = course_with(
        tmp_path,
        'c.TrustedAutograde.conv_policy = "report"',
        "c.TrustedAutograde.wall_seconds = 3.0",
    )
    monkeypatch.delenv("AUTOGRADER_SEED_SALT", raising=False)
    stock = plugin_policy(course, monkeypatch)  # the first use: nbgrader creates it
    monkeypatch.chdir(tmp_path)  # the grade command finds the course by --course
    policy, limits = cli.grade_settings(grade_args(course))
    assert policy == stock
    assert policy.conv == "report" and limits.wall_seconds == 3.0
    assert policy.seed_salt == (course / SECRET_FILE).read_text().strip()


def test_limits_come_from_the_configuration_and_options_override_them(
    tmp_path, monkeypatch
):
    course = course_with(
        tmp_path,
        "c.TrustedAutograde.wall_seconds = 4.0",
        "c.TrustedAutograde.cpu_seconds = 3",
        "c.TrustedAutograde.memory_mb = 512",
    )
    config = PyFileConfigLoader(CONFIG_FILE, path=str(course)).load_config()
    stock = limits_of(settings_of(TrustedAutograde(config=config)))
    _, limits = cli.grade_settings(grade_args(course, "--public-seeds"))
    assert limits == stock
    assert (limits.wall_seconds, limits.cpu_seconds, limits.memory_bytes) == (
        4.0,
        3,
        512 << 20,
    )
    _, given = cli.grade_settings(
        grade_args(course, "--public-seeds", "--cpu-seconds", "7", "--memory-mb", "256")
    )
    assert (given.wall_seconds, given.cpu_seconds, given.memory_bytes) == (
        4.0,
        7,
        256 << 20,
    )


def test_explicit_options_and_settings_choose_the_salt(tmp_path, monkeypatch):
    monkeypatch.delenv("AUTOGRADER_SEED_SALT", raising=False)
    course = course_with(tmp_path)
    policy, _ = cli.grade_settings(grade_args(course, "--seed-salt", "s3cret"))
    assert policy.seed_salt == "s3cret"
    assert cli.grade_settings(grade_args(course, "--public-seeds"))[0].seed_salt == ""
    monkeypatch.setenv("AUTOGRADER_SEED_SALT", "from-env")
    policy, _ = cli.grade_settings(grade_args(course, "--builtin-conv", "report"))
    assert (policy.seed_salt, policy.conv) == ("from-env", "report")
    assert not (course / SECRET_FILE).exists()
    with pytest.raises(SystemExit):  # "" would be the public seeds in disguise
        grade_args(course, "--seed-salt", "")

    monkeypatch.delenv("AUTOGRADER_SEED_SALT")
    salted = course_with(tmp_path / "a", 'c.TrustedAutograde.seed_salt = "configured"')
    assert plugin_policy(salted, monkeypatch).seed_salt == "configured"
    assert cli.grade_settings(grade_args(salted))[0].seed_salt == "configured"
    public = course_with(tmp_path / "b", "c.TrustedAutograde.public_seeds = True")
    assert plugin_policy(public, monkeypatch).seed_salt == ""
    both = course_with(
        tmp_path / "c",
        "c.TrustedAutograde.public_seeds = True",
        'c.TrustedAutograde.seed_salt = "configured"',
    )
    with pytest.raises(CourseConfigError, match="choose one"):
        course_secret(both, load_settings(both))
    assert not any(
        (tmp_path / d / "course" / SECRET_FILE).exists() for d in ("a", "b", "c")
    )


@pytest.mark.parametrize("problem", ["symlink", "empty", "world-readable"])
def test_a_suspect_secret_file_is_refused(tmp_path, problem):
    course = course_with(tmp_path)
    path = course / SECRET_FILE
    if problem == "symlink":
        (tmp_path / "elsewhere").write_text("a secret\n")
        path.symlink_to(tmp_path / "elsewhere")
    else:
        path.write_text("" if problem == "empty" else "a secret\n")
        path.chmod(0o600 if problem == "empty" else 0o644)
    with pytest.raises(CourseConfigError, match=str(path)):
        course_secret(course, load_settings(course))


def test_the_grade_command_refuses_a_folder_that_is_not_a_course(tmp_path, capsys):
    (tmp_path / "submitted").mkdir()
    argv = ["--submitted", str(tmp_path / "submitted"), "--out", str(tmp_path / "o")]
    assert cli.main(["grade", *argv, "--course", str(tmp_path)]) == 2
    assert f"no {CONFIG_FILE} in {tmp_path}" in capsys.readouterr().err
    assert not (tmp_path / SECRET_FILE).exists()


def test_a_course_root_inside_the_release_or_the_site_build_is_refused():
    for published in (RELEASE_DIR, ROOT / "_build" / "html"):
        with pytest.raises(CourseConfigError, match="published"):
            secret_file(published)
        assert not (published / SECRET_FILE).exists()


def memorised(name: str, cases=None) -> str:
    """An answer cell that looks its result up in a table computed for ``cases`` (by default
    the public seeds')."""
    a, b = EXERCISES[name].arg_names
    table = {}
    for case in cases or EXERCISES[name].cases:
        A, B = case.inputs()
        key = (tuple(A.shape), round(float(A.sum()), 4), round(float(B.sum()), 4))
        table[key] = getattr(reference, name)(A, B).tolist()
    return stub_answered(
        name,
        f"    TABLE = {table!r}\n"
        f"    key = (tuple({a}.shape), round(float({a}.sum()), 4), "
        f"round(float({b}.sum()), 4))\n"
        f"    return torch.tensor(TABLE[key], dtype={a}.dtype)",
    )


def grade_command(warm: Callable, course: Path, out: str, *options: str) -> str:
    """``python -m autograder grade`` run in the course root, as an instructor would (in this
    process, on its warm sandbox for the limits the command settles on)."""
    logs = io.StringIO()
    with contextlib.redirect_stdout(logs), contextlib.redirect_stderr(logs):
        argv = ["grade", "--submitted", "submitted", "--out", out, *options]
        code = cli.main(argv, sandbox_for=warm)
    assert code == 0, logs.getvalue()
    return logs.getvalue()


@pytest.fixture(scope="module")
def attacked_course(tmp_path_factory, warm_sandbox) -> tuple[Path, str, str]:
    """Mallory memorised the public-seed answers; the bystander typed the solutions.

    Graded with the default configuration by the grade command (the first use: it creates the
    secret), then by stock nbgrader, then by the grade command on the public seeds (control).
    """
    course = tmp_path_factory.mktemp("course")
    build_course(
        course,
        {
            "mallory": {name: memorised(name) for name in SEEDED},
            "bystander": {name: solution_source(name) for name in GRADED},
        },
        secret=None,
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("AUTOGRADER_SEED_SALT", raising=False)
        patch.chdir(course)
        logs = grade_command(warm_sandbox, course, "ours")
        secret = (course / SECRET_FILE).read_text().strip()
        logs += nbgrader(course, "generate_assignment", ASSIGNMENT, "--force")
        logs += nbgrader(course, "autograde", ASSIGNMENT)
        logs += grade_command(warm_sandbox, course, "public", "--public-seeds")
    assert (course / SECRET_FILE).read_text().strip() == secret  # read, not remade
    return course, secret, logs


def scores(out: Path) -> dict[str, dict[str, float | None]]:
    return {
        result["student"]: {row["item"]: row["score"] for row in report.rows(result)}
        for result in report.load_results(out)
    }


# Full marks of each autograded test cell (the written answers await the instructor).
FULL = {item: score for item, (score, _) in full_marks().items() if score is not None}


@pytest.mark.slow
@pytest.mark.sandbox
def test_the_memorised_table_is_right_on_the_public_seeds(attacked_course):
    """The control: the attack works where the course opts into the public seeds."""
    course, _, _ = attacked_course
    got = scores(course / "public")["mallory"]
    for name in SEEDED:
        for item in EXERCISES[name].rubric:
            assert got[item.cell] == FULL[item.cell], item.cell


@pytest.mark.slow
@pytest.mark.sandbox
def test_a_memorised_table_earns_zero_by_default_in_the_grade_command(attacked_course):
    course, _, _ = attacked_course
    got = scores(course / "ours")
    assert {item: got["bystander"][item] for item in FULL} == FULL
    assert sum(score or 0.0 for score in got["mallory"].values()) == 0.0


@pytest.mark.slow
@pytest.mark.sandbox
def test_a_memorised_table_earns_zero_by_default_in_stock_nbgrader(attacked_course):
    course, _, _ = attacked_course
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        mallory = gb.find_submission(ASSIGNMENT, "mallory").score
        bystander = gb.find_submission(ASSIGNMENT, "bystander").score
    assert mallory == 0.0
    assert bystander == sum(FULL.values())


@pytest.mark.slow
@pytest.mark.sandbox
def test_the_results_log_the_secret_seeds_but_never_the_secret(attacked_course):
    course, secret, logs = attacked_course
    ours, public = (report.load_results(course / d)[0] for d in ("ours", "public"))
    for name in SEEDED:
        notebook = EXERCISES[name].notebook
        assert (
            logged_seeds(ours, notebook)[name] != logged_seeds(public, notebook)[name]
        )
    assert secret not in logs
    for path in course.rglob("*"):
        if path.is_file() and path.name != SECRET_FILE:
            assert secret.encode() not in path.read_bytes(), path


def logged_seeds(result: dict, notebook: str) -> dict[str, list]:
    """The seeds a student's notebook was graded on, as the results log them."""
    (nb,) = [nb for nb in result["notebooks"] if nb["notebook"] == notebook]
    return nb["inputs"]["seeds"]


def memorised_from(result: dict) -> dict[str, str]:
    """Answer cells that look up answers computed offline (with the reference, as a student
    would with F.conv2d) for exactly the inputs one graded submission was graded on."""
    answers = {}
    for name in SEEDED:
        ex = EXERCISES[name]
        seeds = logged_seeds(result, ex.notebook)[name]
        cases = [
            dataclasses.replace(case, seed=seed) if case.values is None else case
            for case, seed in zip(ex.cases, seeds, strict=True)
        ]
        answers[name] = memorised(name, cases)
    return answers


@pytest.fixture(scope="module")
def replayed_course(tmp_path_factory, warm_sandbox) -> Path:
    """Mallory's first submission probes; its graded inputs leak (the results' log stands for
    any channel); she and Eve then submit a table of answers for exactly those inputs."""
    course = tmp_path_factory.mktemp("replay")
    build_course(course, {"mallory": {name: solution_source(name) for name in GRADED}})
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("AUTOGRADER_SEED_SALT", raising=False)
        patch.chdir(course)
        grade_command(warm_sandbox, course, "first")
        (first,) = report.load_results(course / "first")
        table = memorised_from(first)
        shutil.rmtree(course / "submitted")
        bystander = {name: solution_source(name) for name in GRADED}
        for student, answers in (
            ("mallory", table),
            ("eve", table),
            ("bystander", bystander),
        ):
            write_submission(course, student, answers)
        grade_command(warm_sandbox, course, "second")
    return course


@pytest.mark.slow
@pytest.mark.sandbox
def test_a_table_of_one_submissions_inputs_scores_zero_next_time_and_for_anyone_else(
    replayed_course,
):
    got = scores(replayed_course / "second")
    assert {item: got["bystander"][item] for item in FULL} == FULL
    for student in ("mallory", "eve"):
        for name in SEEDED:
            for item in EXERCISES[name].rubric:
                assert not got[student][item.cell], (student, item.cell)


def test_graded_inputs_differ_by_student_and_by_code_and_repeat_for_the_same_both():
    policy = Policy(seed_salt="a course secret")
    code = ["def f(X, K):\n    return X"]
    salt = policy.for_student("ann").inputs_salt("01.ipynb", code)
    assert salt == policy.for_student("ann").inputs_salt("01.ipynb", code)
    assert salt != policy.for_student("bob").inputs_salt("01.ipynb", code)
    assert salt != policy.for_student("ann").inputs_salt("01.ipynb", [code[0] + " "])
    assert salt != policy.for_student("ann").inputs_salt("02.ipynb", code)
    assert (
        Policy().for_student("ann").inputs_salt("01.ipynb", code) == ""
    )  # public seeds


def test_every_derived_variant_keeps_each_cases_geometry_and_edge():
    # Many students' variants: the shapes, dtypes and tags (the edge each case tests) stay;
    # only the drawn values (seeds) and a counting case's channel counts change.
    for i in range(200):
        salt = Policy(seed_salt="s").for_student(f"s{i}").inputs_salt("nb", [str(i)])
        for ex in EXERCISES.values():
            for case, variant in zip(ex.cases, reseeded(ex.cases, salt), strict=True):
                assert (
                    variant.x_shape,
                    variant.k_shape,
                    variant.dtype,
                    variant.tags,
                ) == (case.x_shape, case.k_shape, case.dtype, case.tags)
                if case.values is not None:
                    assert variant == case  # worked examples stay as written
                elif case.params:
                    keep = {k: v for k, v in case.params if k not in ("c_i", "c_o")}
                    assert {k: v for k, v in variant.params if k in keep} == keep
                else:
                    assert variant.seed != case.seed
