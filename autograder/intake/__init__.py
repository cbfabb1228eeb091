"""Submissions from an LMS: the zip that Canvas or Moodle makes with "download all submissions"
becomes nbgrader's ``submitted/``, with the LMS's submission times recorded for the calendar.

May import: ``deadlines`` (the time record it writes) and the shared modules; nothing that
grades or renders. Everything in the zip is hostile: names, sizes, types and contents.
"""
