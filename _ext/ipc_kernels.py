"""Run the book's notebooks in kernels that talk over Unix sockets, not TCP.

Each kernel that myst-nb starts through jupyter-cache warns, on the build's output, that it is
"running over TCP without encryption": any local user could connect to its loopback ports. IPC
sockets live in Jupyter's runtime folder (mode 0700) and need no ports, which is also what
the grader's sandbox uses. Neither myst-nb nor jupyter-cache passes configuration to nbclient,
so this extension hands nbclient's own ``kernel_manager_class`` option to jupyter-cache's one
call of ``nbclient.execute``.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import jupyter_cache.executors.utils as cache_execution
from jupyter_client import AsyncKernelManager
from jupyter_core.paths import jupyter_runtime_dir
from sphinx.application import Sphinx
from traitlets import default


class IPCKernelManager(AsyncKernelManager):
    """nbclient's default kernel manager with the IPC transport."""

    @default("transport")
    def _transport_default(self) -> str:
        return "ipc"

    @default("ip")
    def _ip_default(self) -> str:
        # jupyter_client's own default is a path relative to the manager's folder, which the
        # kernel (started in the notebook's folder) does not share: give an absolute one.
        runtime = Path(jupyter_runtime_dir())
        runtime.mkdir(mode=0o700, parents=True, exist_ok=True)
        return str(runtime / f"kernel-{uuid.uuid4()}-ipc")


_execute = cache_execution.executenb


def _execute_over_ipc(nb: Any, *args: Any, **kwargs: Any) -> Any:
    kwargs.setdefault("kernel_manager_class", IPCKernelManager)
    return _execute(nb, *args, **kwargs)


def setup(app: Sphinx) -> dict[str, object]:
    cache_execution.executenb = _execute_over_ipc
    return {"parallel_read_safe": True, "parallel_write_safe": True}
