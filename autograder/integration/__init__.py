"""Stock nbgrader on this course: the plugin that grades in the sandbox inside ``nbgrader
autograde``, the course's configuration and secret (``nbgrader_config.py``), and the gradebook
the grade command writes for formgrader.

May import: ``outputs``, ``grading``, ``sandbox``, ``kit`` and the shared modules; never the
course build, which reads the course's configuration from here.
"""
