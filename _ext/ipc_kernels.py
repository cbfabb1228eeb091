"""Run the book's notebooks in kernels that talk over Unix sockets, not TCP.

Each kernel that myst-nb starts through jupyter-cache warned, on the build's output, that it is
"running over TCP without encryption" (course_hub/kernels.py says why IPC). Neither myst-nb nor
jupyter-cache passes configuration to nbclient, so this extension hands nbclient's own
``kernel_manager_class`` option to jupyter-cache's one call of ``nbclient.execute``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import jupyter_cache.executors.utils as cache_execution
from sphinx.application import Sphinx

# The checkout, for course_hub (jupyter-book puts only _ext/ on the path), after what is
# installed so that no folder of the checkout shadows a package.
sys.path.append(str(Path(__file__).resolve().parents[1]))
from course_hub.kernels import IPCKernelManager

_execute = cache_execution.executenb


def _execute_over_ipc(nb: Any, *args: Any, **kwargs: Any) -> Any:
    kwargs.setdefault("kernel_manager_class", IPCKernelManager)
    return _execute(nb, *args, **kwargs)


def setup(app: Sphinx) -> dict[str, object]:
    cache_execution.executenb = _execute_over_ipc
    return {"parallel_read_safe": True, "parallel_write_safe": True}
