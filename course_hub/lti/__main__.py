"""Command line: ``python -m course_hub.lti roster | passback | keys`` (README, "Grades where
the course lives"). Run in the course folder (or give ``--course``), as the account that owns
its gradebook."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from course_hub.lti.registration import RegistrationError, read_registration


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="python -m course_hub.lti", description=__doc__)
    sub = main.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--registration",
            type=Path,
            required=True,
            help="the tool's registration (JSON)",
        )

    def course(p: argparse.ArgumentParser) -> None:
        common(p)
        p.add_argument(
            "--course",
            type=Path,
            default=Path("."),
            help="the nbgrader course folder, with gradebook.db (default: .)",
        )
        p.add_argument(
            "--course-id",
            default=None,
            help="the hub course linked in the registration (default: the course's "
            "nbgrader course_id)",
        )

    roster = sub.add_parser(
        "roster",
        help="the LMS course's students into nbgrader's gradebook (NRPS); never deletes",
    )
    course(roster)
    passback = sub.add_parser(
        "passback",
        help="each student's total (canvas.csv's) into the LMS's gradebook (AGS)",
    )
    course(passback)
    passback.add_argument("--assignment", required=True, help="the nbgrader assignment")
    keys = sub.add_parser(
        "keys", help="the tool's signing keys: add, use, retire, show"
    )
    common(keys)
    action = keys.add_mutually_exclusive_group(required=True)
    action.add_argument(
        "--new", action="store_true", help="add a key (published, not used)"
    )
    action.add_argument("--use", metavar="KID", help="sign with this key from now on")
    action.add_argument("--retire", metavar="KID", help="stop publishing this key")
    action.add_argument(
        "--public", action="store_true", help="print the public key set"
    )
    return main


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        registration = read_registration(args.registration)
    except (OSError, RegistrationError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.command == "keys":
        return _keys(args, registration.key_dir)
    from course_hub.lti.roster_sync import course_id_of

    course = args.course.resolve()
    course_id = args.course_id or course_id_of(course)
    if not course_id:
        print("error: name the hub course (--course-id)", file=sys.stderr)
        return 2
    if args.command == "roster":
        from course_hub.lti.roster_sync import run_roster

        return run_roster(registration, course_id, course)
    from course_hub.lti.passback import run_passback

    return run_passback(registration, course_id, course, args.assignment)


def _keys(args: argparse.Namespace, key_dir: Path) -> int:
    import json

    from course_hub.lti import keys

    try:
        if args.new:
            print(keys.new_key(key_dir))
        elif args.use:
            keys.use_key(key_dir, args.use)
        elif args.retire:
            keys.retire_key(key_dir, args.retire)
        else:
            print(json.dumps(keys.public_key_set(key_dir), indent=2))
    except (OSError, keys.KeyFolderError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
