"""What the instructor opens or hands out: grades.csv, feedback pages and results, the class
report and similar submissions, the grading guide, the LMS exports, and the math typeset in them.

May import: ``grading`` (scores, submissions), ``kit`` and the shared modules; never
``sandbox``, even through another module: a page is written from trusted results and the
submitted text, never from anything that ran student code (tests/test_layout.py).
"""
