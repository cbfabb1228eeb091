"""The grader's core: the exercises and their answers, reading submissions, scoring, and the
orchestration of one student's grading, here or on Dask workers (``cluster.py``).

May import: ``kit``, ``sandbox``, and the shared modules (``paths``, ``untrusted``,
``notebooks``); never the pages it leads to (``outputs``), nbgrader's side or the course build.
The batch that joins grading to its files is ``autograder/batch.py``, above both.
"""
