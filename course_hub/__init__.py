"""The course hub: JupyterHub, nbgrader's exchange and this grader on one machine (`make hub`).

``autograder`` imports nothing from here (the hub is one way to run a course, and the grading
package must work without it); the hub takes ``autograder.paths`` from it and the course
calendar's record of submission times (``collect.py`` writes the ``hub`` source), and the LMS
link's passback (``lti/passback.py``, a command, never loaded by the hub) the exports and the
calendar, so that the LMS gets ``canvas.csv``'s totals. Root does no
more than build each process's view of the machine (``views.py``); every server, a student's or
a course's, runs as its own Unix account. ``student_exchange.py`` and ``kernels.py`` alone run
in students' servers, and import nothing of the project (their view has no checkout).
"""
