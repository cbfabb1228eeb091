"""What each process of the hub sees of the machine, and as whom it runs.

JupyterHub runs as root, so that PAM can check passwords and every server can run as its own
Unix account. Each server starts inside a bubblewrap view that root builds (an unprivileged
user could not bind root's private folders, such as a pyenv Python under /root) and then drops,
through setpriv, to the account with no capabilities and no way to gain one:

* a **student** sees what a zero-to-jupyterhub pod would: the system and the Python
  environment (read-only), their own home, the exchange and the student configuration; not
  the course's checkout (the instructor package, ``solutions/``, the course secret), not the
  courses' folders (gradebooks, submissions), not other homes;
* a course's **grading account** sees the machine as an ordinary user does (the checkout it
  grades with, its own course folder; others are closed to it by their modes), and the
  grader's own sandbox nests inside, in a user namespace, as for any ordinary user.
"""

from __future__ import annotations

import pwd
import sys
from pathlib import Path

BWRAP = "/usr/bin/bwrap"
SETPRIV = "/usr/bin/setpriv"
# The system, read-only. /bin, /lib, /lib64 and /sbin are links into /usr on Debian 12 (and
# folders elsewhere): bound either way.
SYSTEM = ("/usr", "/etc", "/bin", "/lib", "/lib64", "/sbin")


def python_install() -> tuple[Path, Path]:
    """The interpreter's installation and the environment the hub runs from."""
    return Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve()


def drop_to(user: str) -> list[str]:
    """setpriv's arguments to become ``user`` with its groups, no capabilities, for good."""
    account = pwd.getpwnam(user)
    return [
        SETPRIV,
        f"--reuid={account.pw_uid}",
        f"--regid={account.pw_gid}",
        "--init-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--no-new-privs",
        "--",
    ]


def student_view(user: str, exchange: Path, config_dir: Path) -> list[str]:
    """bwrap + setpriv for a student's server: an allow-list of what it may see."""
    home = pwd.getpwnam(user).pw_dir
    base, env = python_install()
    view = [
        BWRAP,
        "--die-with-parent",
        "--new-session",
        "--unshare-pid",
        "--unshare-ipc",
    ]
    for path in SYSTEM:
        if Path(path).exists():
            view += ["--ro-bind", path, path]
    view += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    shown = [(p, "--ro-bind") for p in (base, env, config_dir)]
    shown += [(Path(home), "--bind"), (exchange, "--bind")]
    # bwrap makes a bound folder's parents private (0700); they must be passable.
    parents = dict.fromkeys(
        a for p, _ in shown for a in reversed(p.parents) if a != a.parent
    )
    for parent in parents:
        view += ["--perms", "0755", "--dir", str(parent)]
    for path, how in dict.fromkeys(shown):  # base is env for a bare install
        view += [how, str(path), str(path)]
    return [*view, "--chdir", home, *drop_to(user)]


def grader_view(user: str, workdir: Path) -> list[str]:
    """bwrap + setpriv for a course's formgrader: the machine as an ordinary user sees it."""
    base, _ = python_install()
    view = [BWRAP, "--die-with-parent", "--unshare-pid", "--dev-bind", "/", "/"]
    if base.is_relative_to(
        "/root"
    ):  # root's home is private: show its Python, nothing else
        install = Path("/root", base.relative_to("/root").parts[0])
        view += ["--tmpfs", "/root", "--ro-bind", str(install), str(install)]
    return [*view, "--chdir", str(workdir), *drop_to(user)]
