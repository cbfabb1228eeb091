"""The sandbox boundary: everything a security review reads, and nothing else.

``inside/``: the only code bound into the sandbox, next to student code (it imports nothing of
this package). ``runner.py``: the only code that starts the sandbox's processes, and enforces
their deadlines and size caps. ``replies.py``: what comes back, parsed as hostile data.

May import: ``kit`` (the types a reply becomes) and ``untrusted``; never the grader, the pages,
nbgrader or the course build (tests/test_layout.py).
"""
