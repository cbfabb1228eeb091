"""The course hub: JupyterHub, nbgrader's exchange and this grader on one machine (`make hub`).

Nothing here is imported by ``autograder``: the hub is one way to run a course, and the grading
package must work without it. Everything runs as root only to build each process's view of the
machine (``views.py``); every server, student's or course's, runs as its own Unix account.
"""
