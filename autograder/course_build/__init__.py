"""The course build: the check kit written into ``solutions/``, the student release in
``chapters/`` (and the gradebook nbgrader records it in), and running notebooks to store their
outputs.

May import every other part but the entry points (``batch``, ``__main__``); nothing imports it
but them and the tests.
"""
