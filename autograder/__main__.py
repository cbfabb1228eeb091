"""Command line: ``python -m autograder release | check-release | execute NOTEBOOK...``."""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from autograder import notebooks, release


def main_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("release", help="regenerate chapters/ from solutions/ with nbgrader")
    sub.add_parser(
        "check-release", help="fail if chapters/ differs from what solutions/ generates"
    )
    run = sub.add_parser(
        "execute", help="re-run notebooks and store their outputs (for solutions/)"
    )
    run.add_argument("notebooks", nargs="+", type=Path)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = main_parser().parse_args(argv)
    try:
        if args.command == "release":
            # Like otter's assign: from scratch, so a deleted source leaves no stale copy.
            shutil.rmtree(release.RELEASE_DIR, ignore_errors=True)
            out = release.generate_release(release.RELEASE_DIR.parent)
            print(
                f"wrote {len(list(out.glob('*.ipynb')))} notebooks to "
                f"{out.relative_to(release.ROOT)}"
            )
        elif args.command == "check-release":
            release.check_release()
            print("chapters/ matches solutions/")
        else:
            for path in args.notebooks:
                notebooks.execute_in_place(path)
                print(f"executed {path}")
    except release.ReleaseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
