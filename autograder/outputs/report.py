"""What the instructor gets: grades.csv, one feedback page per student, one results file each.

Results are written per student, atomically, as soon as that student is graded, which is what
makes a killed batch resumable; grades.csv and the feedback pages are rebuilt from those files,
so an interrupted and resumed run ends with exactly the files of an uninterrupted one.
"""

from __future__ import annotations

import csv
import html
import json
import os
from pathlib import Path

from autograder.deadlines.schedule import Calendar
from autograder.grading.scoring import EARNED, MANUAL, ItemScore, cell_totals
from autograder.untrusted import CSP_META, clean_text

COLUMNS = [
    "student",
    "assignment",
    "notebook",
    "item",
    "score",
    "max_score",
    "status",
    "message",
]
MESSAGE_CHARS = 500  # per item, in the CSV and the feedback


def results_dir(out: Path) -> Path:
    return out / "results"


def save_result(out: Path, result: dict) -> None:
    """Write one student's results atomically (a crash leaves the old file or none)."""
    folder = results_dir(out)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{result['student']}.json.tmp"
    tmp.write_text(json.dumps(result, indent=1, sort_keys=True))
    os.replace(tmp, folder / f"{result['student']}.json")


def load_results(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(results_dir(out).glob("*.json"))]


def graded_students(out: Path) -> set[str]:
    return {p.stem for p in results_dir(out).glob("*.json")}


def rows(result: dict) -> list[dict]:
    """One row per student, notebook and graded item (an nbgrader test cell's grade_id).

    A cell's score adds up its rubric items; its status and message are those of the first item
    that lost points (the feedback page lists every item).
    """
    return [
        {
            "student": result["student"],
            "assignment": result["assignment"],
            "notebook": nb["notebook"],
            "item": cell,
            "score": None if status == MANUAL else score,
            "max_score": max_score,
            "status": status,
            "message": clean_text(message, MESSAGE_CHARS),
        }
        for nb in result["notebooks"]
        for cell, (score, max_score, status, message) in cell_totals(
            [ItemScore(**item) for item in nb["items"]]
        ).items()
    ]


def write_grades_csv(out: Path, results: list[dict]) -> Path:
    path = out / "grades.csv"
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for result in sorted(results, key=lambda r: r["student"]):
            writer.writerows(rows(result))
    return path


def feedback_html(result: dict, calendar: Calendar | None = None) -> str:
    """A self-contained page for one student: points per item, messages, notes, and with the
    course's ``calendar`` the submission time, extension and late penalty. No hidden values."""
    esc = html.escape
    items = [i for nb in result["notebooks"] for i in nb["items"]]
    total = sum(i["score"] for i in items if i["status"] != MANUAL)
    possible = sum(i["max_score"] for i in items if i["status"] != MANUAL)
    by_hand = sum(i["max_score"] for i in items if i["status"] == MANUAL)
    parts = [
        f"<!doctype html><html lang='en'><head>{CSP_META}<meta charset='utf-8'>",
        f"<title>Feedback: {esc(result['student'])}</title>",
        "<style>body{font-family:sans-serif;max-width:60rem;margin:2rem auto}"
        "td,th{border-bottom:1px solid #ccc;padding:.3rem;text-align:left;vertical-align:top}"
        ".passed{color:#155724}.lost{color:#721c24}</style></head>",
        f"<h1>{esc(result['assignment'])}: {esc(result['student'])}</h1>",
        f"<p><strong>{total:g} of {possible:g} points</strong> from the autograder."
        + (
            f" Your written answers ({by_hand:g} points) are graded by your instructor."
            if by_hand
            else ""
        )
        + "</p>",
    ]
    lateness = calendar.lateness(result["student"]) if calendar else None
    if lateness and (lateness.late or lateness.extension):
        penalty = lateness.total_penalty(
            sum(i["score"] for i in nb["items"] if i["status"] != MANUAL)
            for nb in result["notebooks"]
        )
        parts.append(
            f"<p class='late'>{esc(clean_text(lateness.describe(calendar.rule), 500))}"
            + (
                f" <strong>{total - penalty:g} of {possible:g} points</strong> after it."
                if lateness.late
                else ""
            )
            + "</p>"
        )
    for nb in result["notebooks"]:
        parts.append(f"<h2>{esc(nb['notebook'])}</h2><table>")
        parts.append("<tr><th>Item</th><th>Points</th><th>What happened</th></tr>")
        for item in nb["items"]:
            css = "passed" if item["status"] in EARNED | {MANUAL} else "lost"
            points = "?" if item["status"] == MANUAL else f"{item['score']:g}"
            message = esc(clean_text(item["message"], MESSAGE_CHARS))
            parts.append(
                f"<tr class='{css}'><td>{esc(item['cell'])}: {esc(item['item'])}</td>"
                f"<td>{points} / {item['max_score']:g}</td>"
                f"<td>{esc(item['status'])}. {message}</td></tr>"
            )
        parts.append("</table>")
        if nb["notes"]:
            parts.append(
                "<ul>"
                + "".join(
                    f"<li>{esc(clean_text(n, MESSAGE_CHARS))}</li>" for n in nb["notes"]
                )
                + "</ul>"
            )
    if result.get("unrecognised_files"):
        names = ", ".join(result["unrecognised_files"])
        parts.append(f"<p>Not graded (unknown notebook names): {esc(names)}</p>")
    return "\n".join(parts) + "\n</html>\n"


def write_feedback(
    out: Path, results: list[dict], calendar: Calendar | None = None
) -> None:
    folder = out / "feedback"
    folder.mkdir(parents=True, exist_ok=True)
    for result in results:
        page = feedback_html(result, calendar)
        (folder / f"{result['student']}.html").write_text(page)
