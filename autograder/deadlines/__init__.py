"""The course calendar: due dates, extensions, the late-penalty rule and the submission time.

Every path that takes a penalty off (the grade command's gradebook, stock ``nbgrader
autograde``, the LMS exports, the class report) reads the same ``Calendar`` and calls the same
``LateRule.penalty``, so they agree by construction.

May import: the shared modules (``paths``, ``untrusted``) and nbgrader; nothing else of the
package: grading, the pages and nbgrader's side all read it.
"""
