"""``python -m autograder execute``: the package's only code that runs a notebook in a kernel.

For the instructor after editing ``solutions/``, and for the GPU run's speed chapter, whose
machine has nbclient and a kernel but not nbgrader: so nothing here imports it.
"""

from __future__ import annotations

from pathlib import Path

from nbclient import NotebookClient

from autograder.notebooks import read, write


def execute_in_place(path: Path, timeout: int = 600) -> None:
    """Re-run a notebook top to bottom in its own folder and store its outputs (no timing metadata).

    Used to refresh the stored outputs of ``solutions/`` after an edit; nbval then checks that a
    fresh run reproduces them.
    """
    nb = read(path)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        record_timing=False,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    write(nb, path)
