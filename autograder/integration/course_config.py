"""The course's grading settings and secret, read the same way by both grading paths.

The grade command and stock ``nbgrader autograde`` (``plugin.TrustedAutograde``) must
grade on the same inputs under the same policy, so both take ``c.TrustedAutograde`` from the
course's ``nbgrader_config.py`` (``plugin.load_settings``, beside the class whose traits
validate it) and, unless it sets ``seed_salt``, the same secret file beside it.
The seeds in ``exercises.py`` are in a public repository (students get only the check kit, which
has none of them, but may find the course's code), so grading on them is an explicit opt-in
(``public_seeds``) for tests and demos only.

The course directory (``nbgrader_config.py``, ``gradebook.db``, ``submitted/``) is the
instructor's: it must never be inside what the site build serves (``_build/html``) or what
students get (``chapters/``), or the secret would go with it. Trusted side only.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from autograder.paths import RELEASE_DIR, ROOT
from autograder.sandbox.runner import Limits

CONFIG_FILE = "nbgrader_config.py"
# Created once, at the course root beside nbgrader_config.py and gradebook.db (git-ignored).
SECRET_FILE = ".autograder-secret"
# What students or site visitors can see: a course root in here would publish the secret.
PUBLIC_DIRS = (RELEASE_DIR.parent, ROOT / "_build")

log = logging.getLogger(__name__)


class CourseConfigError(RuntimeError):
    """The course's configuration or secret cannot be used as it is; grading must not guess."""


@dataclass(frozen=True)
class CourseSettings:
    """``c.TrustedAutograde``'s settings (defaults: the plugin's trait defaults)."""

    conv_policy: str = "zero"
    seed_salt: str = ""
    public_seeds: bool = False
    wall_seconds: float = 10.0
    cpu_seconds: int = 10
    memory_mb: int = 1024


def limits_of(settings: CourseSettings, **overrides: float) -> Limits:
    """The sandbox's per-function limits from the course's settings (``overrides`` win)."""
    chosen = {
        "wall_seconds": settings.wall_seconds,
        "cpu_seconds": settings.cpu_seconds,
        "memory_mb": settings.memory_mb,
    } | overrides
    return Limits(
        wall_seconds=float(chosen["wall_seconds"]),
        cpu_seconds=int(chosen["cpu_seconds"]),
        memory_bytes=int(chosen["memory_mb"]) << 20,
    )


def settings_of(trusted) -> CourseSettings:
    """The settings of a configured ``TrustedAutograde``: one reading for both paths."""
    return CourseSettings(
        conv_policy=trusted.conv_policy,
        seed_salt=trusted.seed_salt,
        public_seeds=trusted.public_seeds,
        wall_seconds=trusted.wall_seconds,
        cpu_seconds=trusted.cpu_seconds,
        memory_mb=trusted.memory_mb,
    )


def course_secret(course_dir: Path | str, settings: CourseSettings) -> str:
    """The salt the course grades with: "" (public seeds) only when asked for explicitly.

    In order: ``seed_salt`` if the configuration sets one (``settings``: the course's, from
    ``plugin.load_settings``), else the course's secret file (created on first use).
    """
    if settings.public_seeds:
        if settings.seed_salt:
            raise CourseConfigError(
                "c.TrustedAutograde sets both public_seeds and seed_salt: choose one"
            )
        return ""
    return settings.seed_salt or secret_file(course_dir)


def secret_file(course_dir: Path | str = ".") -> str:
    """The secret in ``course_dir/.autograder-secret``, created atomically on first use.

    The new file is written in full under a temporary name and then hard-linked into place,
    which fails if the name exists: of two first uses at once, one wins and the other reads the
    winner's complete file, so both grade on the same inputs.
    """
    course = Path(course_dir).resolve()
    for public in PUBLIC_DIRS:
        if course.is_relative_to(public.resolve()):
            raise CourseConfigError(
                f"the course directory {course} is inside {public}, which is published: "
                "grade from the course root"
            )
    path = course / SECRET_FILE
    if not os.path.lexists(path):
        _create(path)
    return _read(path)


def _create(path: Path) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f"{SECRET_FILE}.", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.link(tmp, path)  # FileExistsError if another first use won: read theirs
        log.warning(
            "created the course secret %s: the graded inputs depend on it, keep it "
            "(and keep it from students)",
            path,
        )
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)


def _read(path: Path) -> str:
    try:  # O_NONBLOCK: a FIFO planted at the path is refused below, not waited on
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as error:
        raise CourseConfigError(
            f"cannot read the course secret {path} ({error.strerror}); it must be a "
            "regular file, not a symbolic link"
        ) from error
    with os.fdopen(fd) as f:
        mode = os.fstat(f.fileno()).st_mode
        if not stat.S_ISREG(mode):
            raise CourseConfigError(f"the course secret {path} is not a regular file")
        if mode & stat.S_IRWXO:
            raise CourseConfigError(
                f"the course secret {path} is open to other users: chmod 600 it (and "
                "ask whether students could have read it)"
            )
        secret = f.read().strip()
    if not secret:
        raise CourseConfigError(
            f"the course secret {path} is empty: restore it from a backup, or delete it "
            "before the first grading to have a new one created"
        )
    return secret
