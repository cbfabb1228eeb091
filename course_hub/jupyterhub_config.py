"""JupyterHub for the courses of one roster (``make hub``; README, "Run the course on one
machine").

Read from the environment that ``make hub`` (or the hub test) sets: ``COURSE_HUB_ROOT`` (the
folder ``course_hub.provision`` filled), ``COURSE_HUB_ROSTER``, ``COURSE_HUB_PORT`` (the proxy's
public port; the hub's API and the courses' services take the ports after it) and
``COURSE_HUB_IP`` (``127.0.0.1`` unless told otherwise: put TLS in front before opening it).
"""

import os
import sys
from pathlib import Path

from course_hub.provision import course_dir, layout, student_python
from course_hub.roster import read_roster
from course_hub.views import grader_view

c = get_config()  # noqa: F821

ROOT = Path(os.environ["COURSE_HUB_ROOT"])
ROSTER = read_roster(os.environ["COURSE_HUB_ROSTER"])
PORT = int(os.environ.get("COURSE_HUB_PORT", "8000"))
IP = os.environ.get("COURSE_HUB_IP", "127.0.0.1")
PATHS = layout(ROOT)
CHECKOUT = Path(__file__).resolve().parent.parent
BIN = Path(sys.prefix) / "bin"

c.JupyterHub.bind_url = f"http://{IP}:{PORT}"
c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{PORT + 1}"
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{PORT + 2}"
# The proxy from the project's node_modules (package.json pins it), not a global install.
c.ConfigurableHTTPProxy.command = [
    str(CHECKOUT / "node_modules" / ".bin" / "configurable-http-proxy")
]
c.ConfigurableHTTPProxy.pid_file = str(PATHS["hub"] / "proxy.pid")
c.JupyterHub.db_url = f"sqlite:///{PATHS['hub'] / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(PATHS["hub"] / "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = str(PATHS["hub"] / "jupyterhub.pid")

# Real Unix accounts, checked by PAM; only the roster's people may log in.
c.JupyterHub.authenticator_class = "pam"
c.PAMAuthenticator.open_sessions = (
    False  # no login sessions (containers have no logind)
)
c.Authenticator.allowed_users = set(ROSTER.people)

c.JupyterHub.spawner_class = "course_hub.spawner.ViewSpawner"
c.ViewSpawner.exchange = str(PATHS["exchange"])
c.ViewSpawner.student_config = str(PATHS["student_config"])
c.Spawner.default_url = "/lab"
c.Spawner.environment = {
    "PATH": f"{BIN}:/usr/bin:/bin",
    "JUPYTER_CONFIG_PATH": str(PATHS["student_config"]),
    "LANG": "C.UTF-8",
    "PYTHONPATH": str(student_python(ROOT)),  # the student-side exchange (provision.py)
}
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120

# nbgrader's groups: nbgrader-<course> lists the course for its students, formgrade-<course>
# for its staff, who alone may open the course's formgrader service.
c.JupyterHub.load_groups = {
    group: {"users": list(users)}
    for course in ROSTER.courses
    for group, users in (
        (course.student_group, course.students),
        (course.staff_group, course.staff),
    )
}
c.JupyterHub.load_roles = [
    {
        "name": f"formgrade-{course.id}",
        "groups": [course.staff_group],
        "scopes": [f"access:services!service={course.id}"],
    }
    for course in ROSTER.courses
] + [
    {
        # A server may read its own user's name and groups: nbgrader's JupyterHubAuthPlugin
        # lists the courses from them. Nothing about any other user.
        "name": "server",
        "scopes": [
            "users:activity!user",
            "access:servers!server",
            "read:users:name!user",
            "read:users:groups!user",
        ],
    }
]

# One formgrader per course, a managed service run as the course's grading account in its
# view; its nbgrader_config.py is the course folder's, its server settings (the pages'
# Content-Security-Policy) the checkout's jupyter_server_config.py.
c.JupyterHub.services = [
    {
        "name": course.id,
        "url": f"http://127.0.0.1:{PORT + 10 + i}",
        "command": [
            *grader_view(course.grader, course_dir(ROOT, course)),
            str(BIN / "jupyterhub-singleuser"),
            f"--port={PORT + 10 + i}",
            "--ServerApp.ip=127.0.0.1",
        ],
        "environment": {
            "PATH": f"{BIN}:/usr/bin:/bin",
            "HOME": str(PATHS["graders"] / course.grader),
            "JUPYTER_CONFIG_PATH": str(CHECKOUT),
            "JUPYTERHUB_DEFAULT_URL": "/formgrader",
            "LANG": "C.UTF-8",
            "PYTHONPATH": str(CHECKOUT),  # this checkout's course_hub and autograder
        },
        "oauth_no_confirm": True,
    }
    for i, course in enumerate(ROSTER.courses)
]

# Each course's receipts (course_hub/receipts.py): the time each submission reached the inbox,
# taken by the grading account, which no student runs; lateness is decided on it.
c.JupyterHub.services += [
    {
        "name": f"receipts-{course.id}",
        "command": [
            *grader_view(course.grader, course_dir(ROOT, course)),
            str(BIN / "python"),
            "-m",
            "course_hub.receipts",
            f"--inbound={PATHS['exchange'] / course.id / 'inbound'}",
            f"--course-dir={course_dir(ROOT, course)}",
        ],
        "environment": {
            "HOME": str(PATHS["graders"] / course.grader),
            "PYTHONPATH": str(CHECKOUT),
        },
    }
    for course in ROSTER.courses
]

# HTTPS served by the proxy itself (COURSE_HUB_SSL_CERT and COURSE_HUB_SSL_KEY, PEM files), for
# a hub with no TLS proxy in front; an LTI launch needs it (course_hub/lti/launch.py).
if os.environ.get("COURSE_HUB_SSL_CERT"):
    c.JupyterHub.bind_url = f"https://{IP}:{PORT}"
    c.JupyterHub.ssl_cert = os.environ["COURSE_HUB_SSL_CERT"]
    c.JupyterHub.ssl_key = os.environ["COURSE_HUB_SSL_KEY"]

# People arrive from the LMS instead of typing a Unix password: LTI 1.3 launch with the tool's
# registration in COURSE_HUB_LTI (README, "Grades where the course lives"). The roster above
# still decides who is in which course as what; the launch must agree with it.
if os.environ.get("COURSE_HUB_LTI"):
    from course_hub.lti.launch import configure as configure_lti

    configure_lti(
        c,
        Path(os.environ["COURSE_HUB_LTI"]),
        Path(os.environ["COURSE_HUB_ROSTER"]),
        ROOT,
    )
