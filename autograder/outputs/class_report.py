"""How the class did, on one offline page: ``grades/report.html``, written by the grade command.

Everything here is read from the trusted results (``results/*.json``) and, for the similar
submissions, from the submitted notebooks' text (parsed, never run). The page is for the
instructor: it names students. Plots are drawn here with matplotlib and embedded as PNG, each
with alt text and a table that says the same; the page needs no network and prints cleanly.
"""

from __future__ import annotations

import base64
import html
import io
import itertools
import re
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from autograder.deadlines.schedule import Calendar, Lateness, duration
from autograder.grading.scoring import MANUAL
from autograder.untrusted import CSP_META, clean_text

# Statuses an instructor should look at: the grader could not judge, or the run went wrong.
TROUBLE = (
    "timeout",
    "crashed",
    "needs-review",
    "grader-error",
    "not-a-notebook",
    "wrong-format",
    "malformed-notebook",
    "not-a-regular-file",
    "too-large",
    "missing-notebook",
    "missing-cell",
    "duplicated-cell",
    "changed-cell",
)
# Mistakes the grader names without "It looks like ...": (what the message says, the mistake).
NAMED = (
    (
        "should be stacked along dimension 0",
        "the output channels were stacked on the wrong axis",
    ),
    ("changed its input", "an input was changed in place"),
    ("got ndarray", "the result is a NumPy array, not a tensor"),
    ("expected an int, got float", "a count was returned as a float (/ instead of //)"),
    ("not written yet", "the function was not written (NotImplementedError)"),
)
# Statuses that are themselves the mistake.
STATUS_MISTAKES = {
    "builtin-convolution": "torch's convolution was called where the point is to compute "
    "by hand",
    "hard-coded": "the answer was written out (hard-coded) instead of computed",
    "missing-function": "the graded function was never defined (a misspelled name, most often)",
    "syntax-error": "the answer cell is not valid Python",
}
# The library's im2col is a forbidden routine of its own (the im2col exercise's point).
UNFOLD = ("unfold", "Unfold")
DIAGNOSIS = re.compile(r"It looks like ([^:;(]+?)[.:;(]")
EXAMPLE_CHARS = 400


@dataclass(frozen=True)
class Mistake:
    """One kind of mistake across the class."""

    what: str
    students: tuple[str, ...]
    functions: tuple[str, ...]
    example: str  # one message the grader gave for it (names no student)


def mistakes_of(status: str, message: str) -> list[str]:
    """The mistakes the grader's message for one item names (often none)."""
    found = [m.group(1).strip() for m in DIAGNOSIS.finditer(message)]
    found += [mistake for said, mistake in NAMED if said in message]
    if status == "builtin-convolution" and any(name in message for name in UNFOLD):
        found.append("the library's im2col (F.unfold or nn.Unfold) was called")
    elif status in STATUS_MISTAKES:
        found.append(STATUS_MISTAKES[status])
    return found


def common_mistakes(results: list[dict]) -> list[Mistake]:
    """Each mistake with the students who made it (most common first)."""
    students: dict[str, set[str]] = defaultdict(set)
    functions: dict[str, set[str]] = defaultdict(set)
    examples: dict[str, str] = {}
    for result in sorted(results, key=lambda r: r["student"]):
        for nb in result["notebooks"]:
            for item in nb["items"]:
                for what in mistakes_of(item["status"], item["message"]):
                    students[what].add(result["student"])
                    functions[what].add(_function_of(item["cell"]))
                    examples.setdefault(
                        what, clean_text(item["message"], EXAMPLE_CHARS)
                    )
    return sorted(
        (
            Mistake(
                what, tuple(sorted(who)), tuple(sorted(functions[what])), examples[what]
            )
            for what, who in students.items()
        ),
        key=lambda m: (-len(m.students), m.what),
    )


def _function_of(cell: str) -> str:
    return cell.removeprefix("test_").removesuffix("_example").removesuffix("_hidden")


def totals(result: dict) -> dict[str, tuple[float, float]]:
    """(autograded points, autograded maximum) per notebook and "all" for one student."""
    out: dict[str, tuple[float, float]] = {}
    for nb in result["notebooks"]:
        graded = [i for i in nb["items"] if i["status"] != MANUAL]
        if graded:
            out[nb["notebook"]] = (
                sum(i["score"] for i in graded),
                sum(i["max_score"] for i in graded),
            )
    out["all"] = (sum(s for s, _ in out.values()), sum(m for _, m in out.values()))
    return out


def item_shares(results: list[dict]) -> list[tuple[str, str, float, float, int]]:
    """Per rubric item: (test cell, item, its points, share of students with all of them,
    how many students)."""
    earned: Counter[tuple[str, str]] = Counter()
    seen: Counter[tuple[str, str]] = Counter()
    points: dict[tuple[str, str], float] = {}
    order: list[tuple[str, str]] = []
    for result in results:
        for nb in result["notebooks"]:
            for item in nb["items"]:
                if item["status"] == MANUAL or item["item"] == "written answer":
                    continue
                key = (item["cell"], item["item"])
                if key not in points:
                    order.append(key)
                points[key] = item["max_score"]
                seen[key] += 1
                earned[key] += item["score"] >= item["max_score"]
    return [
        (c, i, points[c, i], earned[c, i] / seen[c, i], seen[c, i]) for c, i in order
    ]


def troubled(results: list[dict]) -> list[tuple[str, str, list[str]]]:
    """(student, status, the items it hit) for every status an instructor should look at."""
    rows = []
    for result in sorted(results, key=lambda r: r["student"]):
        hit: dict[str, list[str]] = defaultdict(list)
        for nb in result["notebooks"]:
            for item in nb["items"]:
                if item["status"] in TROUBLE:
                    hit[item["status"]].append(f"{item['cell']}: {item['item']}")
        rows += [
            (result["student"], status, items) for status, items in sorted(hit.items())
        ]
    return rows


def bands(values: list[float], top: float) -> list[tuple[str, int]]:
    """Students per score: one bar per half point up to 6 points, else ten equal bands."""
    if top <= 6:
        steps = [k / 2 for k in range(int(top * 2) + 1)]
        return [
            (f"{v:g}", sum(round(x * 2) == round(v * 2) for x in values)) for v in steps
        ]
    width = -(-top // 10)
    edges = [k * width for k in range(int(-(-top // width)))] + [top]
    rows = []
    for lo, hi in itertools.pairwise(edges):
        last = hi == top
        label = f"{lo:g} to {hi:g}" if last else f"{lo:g} to under {hi:g}"
        rows.append((label, sum(lo <= x < hi or (last and x == top) for x in values)))
    return rows


def histogram(rows: list[tuple[str, int]], title: str) -> str:
    """A bar chart of ``bands``' rows, as a PNG data URI."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 2.6), dpi=110)
    labels = [
        label.replace(" to under ", "–").replace(" to ", "–") for label, _ in rows
    ]
    counts = [n for _, n in rows]
    ax.bar(labels, counts, color="#3b6ea8", edgecolor="#1a1a1a", hatch="//")
    ax.set_title(title, fontsize=11)
    ax.set_xlabel("points")
    ax.set_ylabel("students")
    ax.tick_params(axis="x", labelsize=8)
    for x, n in enumerate(counts):
        if n:
            ax.annotate(str(n), (x, n), ha="center", va="bottom", fontsize=8)
    ax.margins(y=0.15)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


STYLE = """
body { font-family: system-ui, sans-serif; max-width: 64rem; margin: 2rem auto; padding: 0 1rem;
       line-height: 1.45; color: #1a1a1a; }
table { border-collapse: collapse; margin: .5rem 0 1rem; }
th, td { border-bottom: 1px solid #999; padding: .25rem .5rem; text-align: left;
         vertical-align: top; overflow-wrap: break-word; }
.wide { overflow-x: auto; max-width: 100%; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.none { font-weight: bold; color: #8a1c1c; }
figure { margin: 1rem 0; } img { max-width: 100%; height: auto; }
.plot { display: flex; flex-wrap: wrap; gap: 1rem; align-items: flex-start; }
a { color: #1f5687; }
nav a { display: inline-block; padding: .25rem 0; }  /* WCAG 2.5.8: 24 px targets */
.example { font-size: .9em; color: #333; }
@media print { a { color: inherit; } section { break-inside: avoid-page; } }
"""


def _wide(label: str) -> str:
    """A box that scrolls a wide table on a narrow screen, reachable by keyboard."""
    return f"<div class='wide' tabindex='0' role='region' aria-label='{html.escape(label)}'>"


def report_html(
    results: list[dict],
    similarity=None,
    title: str = "channels",
    calendar: Calendar | None = None,
) -> str:
    """The class report's page; ``similarity`` (``similarity.Similarity``) adds
    the similar submissions, ``calendar`` the late and extended students."""
    esc = html.escape
    results = sorted(results, key=lambda r: r["student"])
    per_student = {r["student"]: totals(r) for r in results}
    n = len(results)
    parts = [
        f"<!doctype html><html lang='en'><head>{CSP_META}<meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>Class report: {esc(title)}</title><style>{STYLE}</style></head><body><main>",
        f"<h1>Class report: {esc(title)}</h1>",
        f"<p>{n} students graded. Autograded points only: written answers are graded in "
        "formgrader, with the <a href='guide.html'>grading guide</a> (model answers and "
        "rubrics beside every answer). Files: <a href='grades.csv'>grades.csv</a>, "
        "<a href='canvas.csv'>canvas.csv</a>, <a href='moodle.csv'>moodle.csv</a>, one "
        "feedback page per student in <a href='feedback/'>feedback/</a>.</p>",
        "<nav aria-label='Sections'><ul><li><a href='#scores'>Scores</a></li>"
        "<li><a href='#items'>Rubric items</a></li><li><a href='#mistakes'>Common "
        "mistakes</a></li><li><a href='#trouble'>Submissions to look at</a></li>"
        "<li><a href='#similar'>Similar submissions</a></li>"
        "<li><a href='#late'>Late and extended</a></li></ul></nav>",
    ]
    parts += _scores_section(per_student, n)
    parts += _items_section(results)
    parts += _mistakes_section(results, n)
    parts += _trouble_section(results)
    parts += _similar_section(similarity)
    parts += _late_section(results, calendar)
    parts.append("</main></body></html>")
    return "\n".join(parts) + "\n"


def _scores_section(per_student: dict[str, dict], n: int) -> list[str]:
    esc = html.escape
    parts = ["<section id='scores'><h2>Scores</h2>"]
    names = [*sorted({k for t in per_student.values() for k in t if k != "all"}), "all"]
    for name in names:
        pairs = [t[name] for t in per_student.values() if name in t]
        if not pairs:
            continue
        top = max(m for _, m in pairs)
        values = [s for s, _ in pairs]
        label = "All notebooks" if name == "all" else name
        median = statistics.median(values)
        full = sum(v >= top for v in values)
        rows = bands(values, top)
        uri = histogram(rows, f"{label}: points of {len(values)} students")
        spread = "; ".join(f"{c} at {band}" for band, c in rows if c)
        alt = (
            f"Bar chart of {label} scores out of {top:g} for {len(values)} students: "
            f"median {median:g}, {full} with full marks; {spread}."
        )
        parts += [
            f"<h3>{esc(label)} (out of {top:g})</h3>",
            f"<p>Median {median:g}, mean {statistics.fmean(values):.3g}; {full} of "
            f"{len(values)} with full marks, {sum(v == 0 for v in values)} with none.</p>",
            "<div class='plot'>",
            f"<figure><img src='{uri}' alt='{esc(alt)}' width='660' height='286'></figure>",
            f"<table><caption>{esc(label)}: students per score</caption>"
            "<tr><th scope='col'>Points</th><th scope='col' class='num'>Students</th></tr>",
            *(f"<tr><td>{band}</td><td class='num'>{c}</td></tr>" for band, c in rows),
            "</table></div>",
        ]
    parts.append("</section>")
    return parts


def _items_section(results: list[dict]) -> list[str]:
    esc = html.escape
    rows = item_shares(results)
    nobody = [r for r in rows if r[3] == 0]
    parts = [
        "<section id='items'><h2>Rubric items</h2>",
        "<p>The share of students who earned each item's points in full"
        + (
            f"; <span class='none'>nobody</span> earned {len(nobody)} of them."
            if nobody
            else "."
        )
        + "</p>",
        _wide("Rubric items")
        + "<table><tr><th scope='col'>Test cell</th><th scope='col'>Item</th>"
        "<th scope='col' class='num'>Points</th><th scope='col' class='num'>Earned by</th></tr>",
    ]
    for cell, item, points, share, seen in rows:
        mark = " <span class='none'>(nobody)</span>" if share == 0 else ""
        parts.append(
            f"<tr><td>{esc(cell)}</td><td>{esc(item)}{mark}</td><td class='num'>{points:g}</td>"
            f"<td class='num'>{share:.0%} of {seen}</td></tr>"
        )
    parts.append("</table></div></section>")
    return parts


def _mistakes_section(results: list[dict], n: int) -> list[str]:
    esc = html.escape
    found = common_mistakes(results)
    parts = [
        "<section id='mistakes'><h2>Common mistakes</h2>",
        "<p>From the grader's diagnoses, most common first; each with one message the grader "
        "gave for it (it names no student).</p>",
    ]
    if not found:
        return [*parts, "<p>None diagnosed.</p></section>"]
    parts.append(
        _wide("Common mistakes")
        + "<table><tr><th scope='col'>Mistake</th><th scope='col' class='num'>Students</th>"
        "<th scope='col'>In</th><th scope='col'>Example</th></tr>"
    )
    for m in found:
        parts.append(
            f"<tr><td>{esc(m.what)}</td><td class='num'>{len(m.students)} of {n}</td>"
            f"<td>{esc(', '.join(m.functions))}</td>"
            f"<td class='example'>{esc(m.example)}</td></tr>"
        )
    parts.append("</table></div></section>")
    return parts


def _trouble_section(results: list[dict]) -> list[str]:
    esc = html.escape
    rows = troubled(results)
    parts = [
        "<section id='trouble'><h2>Submissions to look at</h2>",
        "<p>Timeouts, crashes, answers the grader left for you to review, its own errors, and "
        "files it could not grade as submitted.</p>",
    ]
    if not rows:
        return [*parts, "<p>None.</p></section>"]
    parts.append(
        _wide("Submissions to look at")
        + "<table><tr><th scope='col'>Student</th><th scope='col'>Status</th>"
        "<th scope='col'>Items</th></tr>"
    )
    for student, status, items in rows:
        parts.append(
            f"<tr><td><a href='feedback/{esc(student)}.html'>{esc(student)}</a></td>"
            f"<td>{esc(status)}</td><td>{esc('; '.join(items))}</td></tr>"
        )
    parts.append("</table></div></section>")
    return parts


def _similar_section(similarity) -> list[str]:
    esc = html.escape
    parts = ["<section id='similar'><h2>Similar submissions</h2>"]
    if similarity is None:
        return [*parts, "<p>Not computed.</p></section>"]
    parts.append(
        "<p>Answers that stay alike once names, comments, layout and numbers are set aside, "
        "and the book's code and the release's stubs are left out. The score is the share of "
        "their own code that two students have in common (1 = all of it); pairs at or above "
        f"{similarity.threshold:g} are listed. Alike is not proof of copying: read both "
        "before deciding anything.</p>"
    )
    if similarity.clusters:
        parts.append("<h3>Groups</h3><ul>")
        parts += [
            f"<li>{esc(', '.join(c.students))}: each linked to the group at "
            f"{c.score:.2f} or more</li>"
            for c in similarity.clusters
        ]
        parts.append("</ul>")
    if not similarity.pairs:
        return [*parts, "<p>No pair reached the threshold.</p></section>"]
    parts.append(
        "<h3>Pairs</h3>"
        + _wide("Similar pairs")
        + "<table><tr><th scope='col'>Students</th><th scope='col' "
        "class='num'>Score</th><th scope='col'>By notebook</th></tr>"
    )
    for p in similarity.pairs:
        by_nb = ", ".join(f"{nb} {s:.2f}" for nb, s in sorted(p.notebooks.items()))
        parts.append(
            f"<tr><td><a href='feedback/{esc(p.a)}.html'>{esc(p.a)}</a> and "
            f"<a href='feedback/{esc(p.b)}.html'>{esc(p.b)}</a></td>"
            f"<td class='num'>{p.score:.2f}</td><td>{esc(by_nb)}</td></tr>"
        )
    parts.append("</table></div></section>")
    return parts


def late_rows(results: list[dict], calendar: Calendar) -> list[LateRow]:
    """The students who were late, had an extension, or have no known submission time (not
    late, for want of a time: look at them), with what the rule took off their autograded
    points (notebook by notebook, as the gradebook and the exports take it)."""
    found = []
    for result in sorted(results, key=lambda r: r["student"]):
        lateness = calendar.lateness(result["student"])
        unknown = calendar.due is not None and lateness.submitted.at is None
        if not (lateness.late or lateness.extension or unknown):
            continue
        points = totals(result)
        penalty = sum(
            lateness.penalty(s) for nb, (s, _) in points.items() if nb != "all"
        )
        found.append(LateRow(lateness, points["all"][0], penalty))
    return found


@dataclass(frozen=True)
class LateRow:
    lateness: Lateness
    score: float  # autograded points before the penalty
    penalty: float


def _late_section(results: list[dict], calendar: Calendar | None) -> list[str]:
    esc = html.escape
    parts = [
        "<section id='late'><h2>Late and extended</h2>",
        "<p>Students who submitted late, have an extension, or whose submission time is "
        "unknown (counted on time: check them).</p>",
    ]
    if calendar is None:
        return [*parts, "<p>No course calendar given.</p></section>"]
    due = (
        f"{calendar.due:%Y-%m-%d %H:%M} UTC"
        if calendar.due
        else "not set (nobody is late)"
    )
    parts.append(
        f"<p>Due: {esc(due)}. Rule: {esc(calendar.rule.describe())}. Submission times from "
        f"the {esc(calendar.source)} record.</p>"
    )
    rows = late_rows(results, calendar)
    if not rows:
        return [*parts, "<p>None.</p></section>"]
    parts.append(
        _wide("Late and extended")
        + "<table><tr><th scope='col'>Student</th><th scope='col'>Submitted</th>"
        "<th scope='col'>Extension</th><th scope='col'>Late by</th>"
        "<th scope='col'>Penalty</th><th scope='col'>Points</th></tr>"
    )
    for row in rows:
        late = row.lateness
        when = (
            f"{late.submitted.at:%Y-%m-%d %H:%M}"
            if late.submitted.at
            else f"unknown (no {calendar.source} time)"
        ) + (" (the LMS marked it late)" if late.submitted.lms_late else "")
        extension = (
            f"{duration(late.extension.length.total_seconds())}"
            + (f": {late.extension.reason}" if late.extension.reason else "")
            if late.extension
            else ""
        )
        parts.append(
            f"<tr><td><a href='feedback/{esc(late.student)}.html'>{esc(late.student)}</a>"
            f"</td><td>{esc(when)}</td><td>{esc(clean_text(extension, 200))}</td>"
            f"<td>{esc(duration(late.seconds_late)) if late.late else 'on time'}</td>"
            f"<td>{late.fraction:.0%}</td>"
            f"<td>{row.score - row.penalty:g} of {row.score:g}</td></tr>"
        )
    parts.append("</table></div></section>")
    return parts


def write_report(
    out: Path,
    results: list[dict],
    submitted: Path | None = None,
    calendar: Calendar | None = None,
) -> Path:
    """Write ``out/report.html``; with ``submitted``, the similar submissions too, and with the
    course's ``calendar``, its late and extended students."""
    similarity = None
    if submitted is not None:
        from autograder.outputs import similarity as alike

        sources = alike.sources_of(submitted, [r["student"] for r in results])
        similarity = alike.similar_submissions(sources, alike.book_boilerplate())
    path = out / "report.html"
    path.write_text(
        report_html(results, similarity, calendar=calendar), encoding="utf-8"
    )
    return path
