"""Command line: ``python -m autograder grade | regrade | export | intake | penalties | guide |
release | check-release``."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from autograder import paths
from autograder.course_build import release
from autograder.integration import course_config
from autograder.sandbox.runner import Limits, Sandbox, SandboxUnavailableError

if TYPE_CHECKING:
    from autograder.deadlines.schedule import Calendar
    from autograder.grading.grader import Policy


def main_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "release",
        help="write the check kit into solutions/, then regenerate chapters/ with nbgrader",
    )
    sub.add_parser(
        "check-release", help="fail if chapters/ differs from what solutions/ generates"
    )
    grade = sub.add_parser(
        "grade", help="grade DIR/<student>/channels/*.ipynb in a sandbox"
    )
    grade.add_argument(
        "--submitted", type=Path, required=True, help="nbgrader's submitted/"
    )
    grade.add_argument(
        "--out", type=Path, required=True, help="grades.csv, feedback/, results/"
    )
    grade.add_argument(
        "--workers",
        type=_positive,
        default=1,
        help="grade on N worker processes of this machine, one sandbox each (default 1)",
    )
    grade.add_argument(
        "--dask",
        metavar="ADDRESS",
        default=None,
        help="grade on the Dask cluster whose scheduler is at ADDRESS "
        "(tcp://HOST:8786); each worker needs this course's environment and bubblewrap",
    )
    grade.add_argument(
        "--resume",
        action="store_true",
        help="OUT holds an interrupted run: grade only the students without a results file",
    )
    _grading_options(grade)
    regrade = sub.add_parser(
        "regrade",
        help="grade again after a rubric or reference change: one student, one item or "
        "everyone; a table of what changed, nothing written if nothing did",
    )
    regrade.add_argument(
        "--submitted", type=Path, required=True, help="nbgrader's submitted/"
    )
    regrade.add_argument(
        "--out", type=Path, required=True, help="the grade command's output to update"
    )
    regrade.add_argument(
        "--reason", required=True, help="why: kept in the course's regrades.log"
    )
    regrade.add_argument(
        "--student",
        action="append",
        default=[],
        help="regrade this student (repeat for more; default: everyone graded in OUT)",
    )
    regrade.add_argument(
        "--item",
        action="append",
        default=[],
        help="only this test cell (test_corr2d_multi_in_hidden) or function "
        "(corr2d_multi_in); repeat for more (default: every item)",
    )
    regrade.add_argument(
        "--never-lower",
        action="store_true",
        help="keep the old result of any item the regrade would lower",
    )
    _grading_options(regrade)
    # The export command's module needs nbgrader, imported only when it runs: `execute` serves
    # machines (the GPU run's) that have torch and Jupyter but not the instructor's stack.
    export = sub.add_parser(
        "export",
        help="write canvas.csv and moodle.csv from a gradebook (again after formgrader)",
    )
    export.add_argument(
        "--gradebook",
        type=Path,
        required=True,
        help="an nbgrader gradebook: the grade command's OUT/gradebook.db or a course's",
    )
    export.add_argument(
        "--out", type=Path, required=True, help="folder for canvas.csv and moodle.csv"
    )
    export.add_argument(
        "--course",
        type=Path,
        default=Path("."),
        help="the course root, whose calendar (due date, extensions, late rule, "
        "submission times) sets the late penalties (default: .)",
    )
    guide = sub.add_parser(
        "guide",
        help="write the grading guide for the written answers (model answers, rubrics and "
        "every student's answer, in formgrader's order)",
    )
    guide.add_argument(
        "--submitted", type=Path, required=True, help="nbgrader's submitted/"
    )
    guide.add_argument(
        "--gradebook",
        type=Path,
        required=True,
        help="the gradebook formgrader uses (gradebook.db, or the grade command's)",
    )
    guide.add_argument(
        "--out", type=Path, required=True, help="the page to write (.html)"
    )
    penalties = sub.add_parser(
        "penalties",
        help="record the course calendar's late penalties in a gradebook again (after "
        "moving the due date or granting an extension) and list the late students",
    )
    penalties.add_argument(
        "--gradebook",
        type=Path,
        default=Path("gradebook.db"),
        help="the gradebook to update (default: the course's gradebook.db)",
    )
    penalties.add_argument(
        "--course", type=Path, default=Path("."), help="the course root (default: .)"
    )
    intake = sub.add_parser(
        "intake",
        help="an LMS's 'download all submissions' zip into submitted/, with the LMS's "
        "submission times for the calendar",
    )
    intake.add_argument("zip", type=Path, help="the zip the LMS made")
    intake.add_argument("--lms", choices=["canvas", "moodle"], required=True)
    intake.add_argument(
        "--roster",
        type=Path,
        required=True,
        help="CSV student,lms_id,name: the nbgrader id of each LMS identity",
    )
    intake.add_argument(
        "--course", type=Path, default=Path("."), help="the course root (default: .)"
    )
    intake.add_argument(
        "--lms-timezone",
        default="UTC",
        help="the LMS server's time zone, in which it stamps the files (default: UTC)",
    )
    intake.add_argument(
        "--times",
        type=Path,
        default=None,
        help="the LMS's own table of submission times, CSV lms_id,submitted_at[,late]: "
        "wins over the files' stamps",
    )
    run = sub.add_parser(
        "execute", help="re-run notebooks and store their outputs (for solutions/)"
    )
    run.add_argument("notebooks", nargs="+", type=Path)
    return parser


def _grading_options(parser: argparse.ArgumentParser) -> None:
    """The options that set how students are graded, shared by grade and regrade."""
    parser.add_argument(
        "--course",
        type=Path,
        default=Path("."),
        help="the course root: its nbgrader_config.py (c.TrustedAutograde) and "
        ".autograder-secret set the policy and the graded inputs, as for nbgrader "
        "(default: .)",
    )
    parser.add_argument(
        "--builtin-conv",
        choices=["zero", "report"],
        default=None,
        help="what a hand-written function that calls torch's convolution gets "
        "(default: c.TrustedAutograde.conv_policy)",
    )
    seeds = parser.add_mutually_exclusive_group()
    seeds.add_argument(
        "--seed-salt",
        type=_non_empty,
        default=None,
        help="course secret that picks the graded random inputs (default: "
        "$AUTOGRADER_SEED_SALT, else c.TrustedAutograde.seed_salt, else the course's "
        ".autograder-secret, created on first use)",
    )
    seeds.add_argument(
        "--public-seeds",
        action="store_true",
        help="grade on the public seeds of exercises.py, which students can read "
        "(tests and demos only)",
    )
    for option, unit, key in LIMIT_OPTIONS:
        parser.add_argument(
            f"--{option}",
            type=_positive,
            default=None,
            metavar=unit,
            help=f"limit per graded function (default: c.TrustedAutograde.{key})",
        )
    parser.add_argument(
        "--unsafe-no-sandbox",
        action="store_true",
        help="run student code without bubblewrap, with your permissions (trusted code only)",
    )


# (option, unit, c.TrustedAutograde key): the limits a course sets, which an option overrides.
LIMIT_OPTIONS = (
    ("wall-seconds", "SECONDS", "wall_seconds"),
    ("cpu-seconds", "SECONDS", "cpu_seconds"),
    ("memory-mb", "MB", "memory_mb"),
)


def _positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError("give a whole number, at least 1")
    return int(value)


def _non_empty(value: str) -> str:
    if not value:
        raise argparse.ArgumentTypeError(
            "an empty salt would grade on the public seeds; say --public-seeds for that"
        )
    return value


def grade_settings(args: argparse.Namespace) -> tuple[Policy, Limits]:
    """The course's policy, salt and limits, with the options given explicitly on top.

    The same reading as stock nbgrader's (``course_config``), so both grade on the same inputs.
    """
    # Import torch and nbgrader: only when grading.
    from autograder.grading.grader import Policy
    from autograder.integration.plugin import load_settings

    settings = load_settings(args.course)
    if args.public_seeds:
        salt = ""
    else:
        salt = args.seed_salt or os.environ.get("AUTOGRADER_SEED_SALT") or None
        if salt is None:
            salt = course_config.course_secret(args.course, settings)
    policy = Policy(conv=args.builtin_conv or settings.conv_policy, seed_salt=salt)
    given = {key: getattr(args, key) for _, _, key in LIMIT_OPTIONS}
    return policy, course_config.limits_of(
        settings, **{key: value for key, value in given.items() if value is not None}
    )


def _progress(done: int, total: int) -> None:
    bar = "#" * (30 * done // max(total, 1))
    print(
        f"\rgrading [{bar:<30}] {done}/{total} students",
        end="",
        file=sys.stderr,
        flush=True,
    )
    if done == total:
        print(file=sys.stderr)


# Where a caller that runs the commands again and again in one process (the tests) gets a
# started sandbox for the limits a command settled on, instead of a new zygote per command.
SandboxFor = Callable[[Limits], Sandbox]


def _warm(
    sandbox_for: SandboxFor | None, args: argparse.Namespace, limits: Limits
) -> Sandbox | None:
    """The caller's sandbox for ``limits``, where this command grades here in one sandbox."""
    local = getattr(args, "workers", 1) == 1 and not getattr(args, "dask", None)
    if sandbox_for is None or args.unsafe_no_sandbox or not local:
        return None
    return sandbox_for(limits)


def _grade(args: argparse.Namespace, sandbox_for: SandboxFor | None = None) -> int:
    # Imports torch and nbgrader: only when grading.
    from traitlets import TraitError

    from autograder.batch import grade_batch
    from autograder.deadlines.schedule import load_calendar
    from autograder.grading.cluster import ClusterUnavailableError
    from autograder.outputs import report

    if not args.submitted.is_dir():
        print(f"error: {args.submitted} is not a folder", file=sys.stderr)
        return 2
    try:
        policy, limits = grade_settings(args)
    except course_config.CourseConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    # Results from another run would be kept as they are: only when asked to resume.
    if not args.resume and report.graded_students(args.out):
        print(
            f"error: {args.out} already holds results; pass --resume to finish that run, "
            "or choose another --out",
            file=sys.stderr,
        )
        return 2
    try:
        calendar = load_calendar(args.course, paths.ASSIGNMENT)
    except (ValueError, TraitError) as error:
        print(f"error: the course calendar: {error}", file=sys.stderr)
        return 2
    if not policy.seed_salt:
        print(
            "warning: grading on the public seeds, which students can read",
            file=sys.stderr,
        )
    try:
        results = grade_batch(
            args.submitted,
            args.out,
            sandbox=_warm(sandbox_for, args, limits),
            workers=args.workers,
            dask=args.dask,
            unsafe=args.unsafe_no_sandbox,
            policy=policy,
            limits=limits,
            progress=_progress,
            calendar=calendar,
        )
    except ClusterUnavailableError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except SandboxUnavailableError as error:
        print(
            f"error: {error}\nRefusing to run student code unconfined; pass "
            "--unsafe-no-sandbox to do it anyway.",
            file=sys.stderr,
        )
        return 2
    print(
        f"graded {len(results)} students: {args.out / 'grades.csv'}, {args.out / 'feedback'}/"
    )
    written = class_files(args.submitted, args.out, results, calendar, args.course)
    print(f"wrote {', '.join(map(str, written))}")
    return 0


def class_files(
    submitted: Path,
    out: Path,
    results: list[dict],
    calendar: Calendar | None = None,
    course: Path | None = None,
) -> list[Path]:
    """What the instructor reads after a batch, from its results and gradebook: the LMS
    exports, the grading guide for the written answers, and the class report (with the late
    and extended students of ``calendar``, ``course``'s)."""
    from autograder.outputs import exports
    from autograder.outputs.class_report import write_report
    from autograder.outputs.guide import write_guide

    return [
        *exports.write_exports(out / "gradebook.db", out, course),
        write_guide(submitted, out / "gradebook.db", out / "guide.html"),
        write_report(out, results, submitted, calendar),
    ]


def _regrade(args: argparse.Namespace, sandbox_for: SandboxFor | None = None) -> int:
    """``python -m autograder regrade``: the table of changes, or that nothing changed."""
    from traitlets import TraitError

    from autograder.deadlines.schedule import load_calendar
    from autograder.regrade import regrade

    try:
        policy, limits = grade_settings(args)
        calendar = load_calendar(args.course, paths.ASSIGNMENT)
        found, table = regrade(
            args.submitted,
            args.out,
            reason=args.reason,
            students=args.student,
            items=args.item,
            never_lower=args.never_lower,
            policy=policy,
            limits=limits,
            unsafe=args.unsafe_no_sandbox,
            calendar=calendar,
            course=args.course,
            sandbox=_warm(sandbox_for, args, limits),
        )
    except (course_config.CourseConfigError, ValueError, TraitError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except SandboxUnavailableError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if table is None:
        print("nothing changed: no file was written (logged in regrades.log)")
        return 0
    from autograder.outputs import report

    results = report.load_results(args.out)
    class_files(args.submitted, args.out, results, calendar, args.course)
    print(f"{len(found)} items changed; the table: {table}")
    width = max(len(c.student) for c in found)
    for c in found:
        old = "-" if c.old_score is None else f"{c.old_score:g}/{c.old_max:g}"
        new = "-" if c.new_score is None else f"{c.new_score:g}/{c.new_max:g}"
        print(
            f"  {c.student:<{width}}  {c.notebook}  {c.cell}: {c.item}  "
            f"{old} -> {new}  ({c.old_status} -> {c.new_status})"
        )
    return 0


def _penalties(args: argparse.Namespace) -> int:
    """``python -m autograder penalties``: nbgrader's stored penalties brought up to date."""
    from nbgrader.api import Gradebook
    from traitlets import TraitError

    from autograder.deadlines.schedule import load_calendar
    from autograder.integration.gradebook import apply_penalties

    if not args.gradebook.is_file():
        print(f"error: no gradebook at {args.gradebook}", file=sys.stderr)
        return 2
    try:
        calendar = load_calendar(args.course, paths.ASSIGNMENT)
    except (ValueError, TraitError) as error:
        print(f"error: the course calendar: {error}", file=sys.stderr)
        return 2
    with Gradebook(f"sqlite:///{args.gradebook.resolve()}") as gb:
        apply_penalties(gb, calendar)
        late = [
            (s.student_id, sum(nb.late_submission_penalty or 0 for nb in s.notebooks))
            for s in gb.find_assignment(paths.ASSIGNMENT).submissions
        ]
    print(f"recorded the penalties of {len(late)} submissions in {args.gradebook}")
    for student, points in sorted(late):
        if points:
            print(f"  {student}: {points:g} points off")
    return 0


def _intake(args: argparse.Namespace) -> int:
    """``python -m autograder intake``: a status per entry, exit 2 if the zip is unusable."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from autograder.intake.lms_zip import (
        IntakeError,
        intake_zip,
        read_lms_times,
        report_path,
    )
    from autograder.intake.roster import read_roster

    try:
        report = intake_zip(
            args.zip,
            args.course,
            read_roster(args.roster),
            args.lms,
            timezone=ZoneInfo(args.lms_timezone),
            times=read_lms_times(args.times) if args.times else None,
        )
    except (IntakeError, ValueError, OSError, ZoneInfoNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    collected = {e.student for e in report.entries if e.status == "collected"}
    refused = [e for e in report.entries if e.status != "collected"]
    print(
        f"collected {len(collected)} students into {args.course / 'submitted'}; "
        f"{len(refused)} files refused "
        f"({report_path(args.course, paths.ASSIGNMENT, args.zip)})"
    )
    for e in refused:
        print(f"  {e.student or '?'}: {e.entry}: {e.status}", file=sys.stderr)
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def main(
    argv: Sequence[str] | None = None, *, sandbox_for: SandboxFor | None = None
) -> int:
    """The command line; ``sandbox_for`` lends a process that calls it repeatedly its warm
    sandboxes (``grade`` and ``regrade`` on this machine, with the sandbox)."""
    args = main_parser().parse_args(argv)
    try:
        if args.command == "grade":
            return _grade(args, sandbox_for)
        if args.command == "export":
            from autograder.outputs import exports

            return exports.run(args)
        if args.command == "intake":
            return _intake(args)
        if args.command == "regrade":
            return _regrade(args, sandbox_for)
        if args.command == "penalties":
            return _penalties(args)
        if args.command == "guide":
            from autograder.outputs.guide import write_guide

            print(f"wrote {write_guide(args.submitted, args.gradebook, args.out)}")
            return 0
        if args.command == "release":
            from autograder.course_build.kit_build import write_kit

            for path in write_kit():
                print(
                    f"wrote the kit and first cell into {path.relative_to(paths.ROOT)}"
                )
            # Like otter's assign: from scratch, so a deleted source leaves no stale copy.
            shutil.rmtree(paths.RELEASE_DIR, ignore_errors=True)
            out = release.generate_release(paths.RELEASE_DIR.parent)
            print(
                f"wrote {len(list(out.glob('*.ipynb')))} notebooks to "
                f"{out.relative_to(paths.ROOT)}"
            )
        elif args.command == "check-release":
            from autograder.course_build.kit_build import check_kit

            check_kit()
            release.check_release()
            print("the kit is up to date, and chapters/ matches solutions/")
        else:
            from autograder.course_build.execute import execute_in_place

            for path in args.notebooks:
                execute_in_place(path)
                print(f"executed {path}")
    except release.ReleaseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
