"""nbgrader configuration: the stock commands work on this repository's layout.

solutions/channels/*.ipynb  source notebooks (reference solutions, visible and hidden tests)
chapters/channels/*.ipynb   student release (`make release` regenerates it)
submitted/<student>/channels/, autograded/, feedback/, gradebook.db, .autograder-secret
                            instructor-side, git-ignored
"""

c = get_config()  # noqa: F821  (nbgrader injects get_config)

c.CourseDirectory.course_id = "d2l-7.4-channels"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "chapters"

# Autograding never runs a student's notebook in a kernel with the instructor's permissions:
# stock nbgrader's Execute step is replaced by the sandboxed grader
# (autograder/integration/plugin.py), which writes the trusted scores into the test cells; the
# rest is nbgrader's default order, with nbgrader's AssignLatePenalties on the course calendar
# below (the grade command and the exports apply the same one), and after SaveAutoGrades a note
# for the grader on each written answer found after its question (its cell lost its id).
c.Autograde.autograde_preprocessors = [
    "autograder.integration.plugin.TrustedAutograde",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades",
    "autograder.integration.plugin.NoteRecoveredAnswers",
    "autograder.integration.plugin.AssignCoursePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]
# nbgrader's sanitizing steps, with DeduplicateIds replaced: a graded cell copied in Jupyter
# costs that answer's points (duplicated-cell), not the student's whole submission. The first
# step notes the locked cells the student edited before OverwriteCells restores them.
c.Autograde.sanitize_preprocessors = [
    "autograder.integration.plugin.NoteEditedLockedCells",
    "nbgrader.preprocessors.ClearOutput",
    "autograder.integration.plugin.SetDuplicatesAside",
    "nbgrader.preprocessors.OverwriteKernelspec",
    "nbgrader.preprocessors.OverwriteCells",
    "nbgrader.preprocessors.CheckCellMetadata",
]
# A submitted file that is not a notebook costs that notebook's points only (stock nbgrader would
# drop the student's whole submission): it is read as the grade command reads it.
c.Autograde.exporter_class = "autograder.integration.plugin.TolerantNotebookExporter"
# Feedback pages carry their math typeset (the project's MathJax, run once here) instead of
# asking a CDN for MathJax, which a student opening the page offline cannot reach.
c.GenerateFeedback.exporter_class = (
    "autograder.integration.feedback_pages.TypesetFeedbackExporter"
)
# Student content is inert on every page nbgrader renders from a submission (formgrader's
# submission view, the feedback pages): markdown, raw cells, HTML, SVG and markdown outputs go
# through the project's allow-list and its math is typeset without links or styles
# (autograder/integration/safe_pages.py; formgrader's template skips nbconvert's own clean_html on
# markdown, so the filters themselves are replaced); sanitize_html also drops JavaScript outputs.
c.HTMLExporter.sanitize_html = True
c.HTMLExporter.filters = {
    "markdown2html": "autograder.integration.safe_pages.markdown2html",
    "clean_html": "autograder.integration.safe_pages.clean_html",
}
# Course-wide policy for a hand-written function that calls torch's convolution:
# "zero" (no points for that function) or "report" (a note, points kept).
c.TrustedAutograde.conv_policy = "zero"
# The hidden random inputs are the public seeds of autograder/grading/exercises.py (students have
# the package, for the practice check) reseeded with a course secret. Left unset, the secret is
# made on first use in .autograder-secret beside this file (mode 0600, git-ignored); stock nbgrader
# and the grade command both read it. Back it up, and keep this directory away from students, the
# site build and chapters/. Or set your own (then keep this file private):
# c.TrustedAutograde.seed_salt = "..."
# Tests and demos only: grade on the public seeds, which students can read.
# c.TrustedAutograde.public_seeds = True
# Per graded function: wall clock, CPU time, and memory on top of the warm interpreter's
# (the grade command's --wall-seconds, --cpu-seconds and --memory-mb override them).
c.TrustedAutograde.wall_seconds = 10.0
c.TrustedAutograde.cpu_seconds = 10
c.TrustedAutograde.memory_mb = 1024
# Only if bubblewrap is unavailable and every submission is trusted:
# c.TrustedAutograde.unsafe = True
# The course calendar (autograder/deadlines/; README "Deadlines"): the due date is nbgrader's own
# (`nbgrader db assignment add channels --duedate "2026-12-04 17:00:00 UTC"`), extensions are
# extensions.csv (with reasons) over nbgrader's, and this is the one late-penalty rule, which the
# grade command, `nbgrader autograde` and every export apply: a percentage of the earned score per
# started day late, at most cap_percent, and zero after zero_after ("" never, "due" at once).
c.CourseCalendar.percent_per_day = 0.0
c.CourseCalendar.cap_percent = 100.0
c.CourseCalendar.zero_after = ""
# The submission time that decides lateness, never one the student wrote: "lms" (the LMS's own,
# recorded by `python -m autograder intake`), "hub" (the course hub's instructor-side record) or
# "exchange" (nbgrader's timestamp.txt: only with an exchange students cannot write).
c.CourseCalendar.time_source = "lms"
c.CourseCalendar.extensions_file = "extensions.csv"
