"""A kernel manager whose kernels talk over Unix sockets, not TCP.

A kernel started over TCP listens on loopback ports that every account of the machine can
connect to (ipykernel warns that it is "running over TCP without encryption"); IPC sockets lie
in the account's Jupyter runtime folder (mode 0700). JupyterLab's kernels only need
``ServerKernelManager.transport = "ipc"`` (their manager names each kernel's connection file);
the managers that nbclient makes (the site build's execution, nbgrader's validation in a
student's server) name none, so this one gives each kernel its own absolute socket path.

Copied into students' servers with ``student_exchange.py`` (provision.py): it imports nothing
of the project.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from jupyter_client import AsyncKernelManager
from jupyter_core.paths import jupyter_runtime_dir
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
