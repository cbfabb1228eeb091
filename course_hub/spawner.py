"""JupyterHub's local spawner, with each student's server started in its view.

LocalProcessSpawner would setuid to the student before running the server; here root builds the
view first (``views.student_view``) and the view drops to the student, so the server never sees
the course's checkout or folders, whatever the student runs in it.
"""

from __future__ import annotations

import sys
from pathlib import Path

from jupyterhub.spawner import LocalProcessSpawner
from traitlets import Unicode

from course_hub.views import student_view


class ViewSpawner(LocalProcessSpawner):
    """A student's server: bubblewrap's view of the machine, then the student's account."""

    exchange = Unicode(config=True, help="nbgrader's exchange, shared by every course")
    student_config = Unicode(config=True, help="The Jupyter config of student servers")

    def make_preexec_fn(self, name):
        return None  # the view drops to the account (setpriv), after root has built it

    async def start(self):
        self.cmd = [
            *student_view(
                self.user.name, Path(self.exchange), Path(self.student_config)
            ),
            str(Path(sys.prefix) / "bin" / "jupyterhub-singleuser"),
        ]
        return await super().start()
