"""nbgrader configuration: the stock commands work on this repository's layout.

solutions/channels/*.ipynb  source notebooks (reference solutions, visible and hidden tests)
chapters/channels/*.ipynb   student release (`make release` regenerates it)
submitted/<student>/channels/, autograded/, feedback/, gradebook.db   instructor-side, git-ignored
"""

c = get_config()  # noqa: F821  (nbgrader injects get_config)

c.CourseDirectory.course_id = "d2l-7.4-channels"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "chapters"

# A hidden test takes well under a second; a cell that runs a minute is stuck, not slow.
c.Execute.timeout = 60
