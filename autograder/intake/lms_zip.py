"""An LMS's "download all submissions" zip into ``submitted/<student>/<assignment>/``.

Each entry's name says whose it is, by the LMS's pattern: a named regular expression with
``student_id`` (the LMS's number for the student) and ``file_id`` (the file the student
uploaded), the convention of nbgrader's ``FileNameCollectorPlugin``, so the same pattern serves
``nbgrader zip_collect``. nbgrader's ``zip_collect`` itself is not used: it extracts the whole
archive to disk before looking at a name (``nbgrader.utils.unzip``: no size cap, archives inside
archives unpacked too), and takes the time from the file name, which the student chose. Here an
entry is read into memory only after its name, type and declared size pass, under a byte cap
counted as it is read, and only a release notebook of a student on the roster is written, at a
path made from the roster's id and the release's file name, never from the entry's name.

The submission time is the LMS's: the time the LMS stamped on the entry (the upload time, in
the LMS server's time zone), or, when the instructor gives one, the LMS's own table of
submission times (``times``), which wins. Canvas also marks a late submission in the name
(``_LATE_``); that flag is kept beside the time.
"""

from __future__ import annotations

import csv
import json
import os
import re
import stat
import tempfile
import zipfile
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo

from autograder.deadlines.rule import utc
from autograder.deadlines.times import (
    SubmissionTime,
    parse_time,
    read_times,
    record_path,
    write_times,
)
from autograder.intake.roster import Roster
from autograder.paths import ASSIGNMENT, RELEASE_DIR
from autograder.untrusted import clean_text, json_depth

# Canvas: "<sortable name>_[LATE_]<user id>_<attachment id>_<uploaded file name>", the name
# lower-cased without spaces or punctuation; a file uploaded again gets "-1", "-2" before its
# extension. Moodle: "<Full Name>_<participant id>_assignsubmission_file_<file name>", or with
# "Download submissions in folders" the same words as a folder: ".../<file name>".
PATTERNS = {
    "canvas": r"(?P<name>[^/_]+)_(?:(?P<late>LATE)_)?(?P<student_id>\d+)_\d+_(?P<file_id>[^/]+)\Z",
    "moodle": r"(?P<name>[^/]+?)_(?P<student_id>\d+)_assignsubmission_file[_/](?P<file_id>[^/]+)\Z",
}
NOTEBOOK_BYTES = (
    5 * 2**20
)  # as the grader's cap (submission.py): a larger file is refused
ZIP_BYTES = 1 * 2**30  # read from one zip in all; past it, entries get intake-budget
MAX_RATIO = 200  # uncompressed / compressed: honest notebooks compress 3-10x
MAX_ENTRIES = 20_000
MAX_DEPTH = 64
UTC = ZoneInfo("UTC")
# Canvas's "-1" and a browser's " (1)" on a file uploaded twice.
_COPY_SUFFIX = re.compile(r"(?:-\d{1,3}| \(\d{1,3}\))(?=\.ipynb\Z)")


class IntakeError(ValueError):
    """The zip as a whole cannot be read: nothing was written."""


@dataclass(frozen=True)
class EntryResult:
    """What became of one entry of the zip."""

    entry: str  # its name, made printable
    lms_id: str
    student: str  # "" if not known
    notebook: str
    status: str  # "collected" or why not
    message: str = ""


@dataclass
class IntakeReport:
    entries: list[EntryResult] = field(default_factory=list)
    times: dict[str, SubmissionTime] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def statuses(self) -> dict[str, list[str]]:
        """Per student: every status of their entries (``collected`` only, if all went in)."""
        found: defaultdict[str, list[str]] = defaultdict(list)
        for e in self.entries:
            if e.student and e.status not in found[e.student]:
                found[e.student].append(e.status)
        return dict(found)


@dataclass
class _Candidate:
    info: zipfile.ZipInfo
    lms_id: str
    student: str
    notebook: str
    data: bytes
    late: bool | None


def release_notebooks() -> frozenset[str]:
    return frozenset(p.name for p in RELEASE_DIR.glob("*.ipynb"))


def intake_zip(
    archive: Path,
    course: Path,
    roster: Roster,
    lms: str,
    *,
    assignment: str = ASSIGNMENT,
    timezone: tzinfo = UTC,
    times: dict[str, SubmissionTime] | None = None,
) -> IntakeReport:
    """Collect ``archive`` into ``course/submitted/`` and record the LMS's times in
    ``course/intake/<assignment>/times.csv``; every entry gets a status in the report (also
    written as ``intake/<assignment>/<zip>.report.csv``). ``times``: the LMS's own table of
    submission times, by LMS id, over the entries' stamps."""
    known = release_notebooks()
    report = IntakeReport()
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as error:
        raise IntakeError(f"{archive} is not a readable zip: {error}") from error
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_ENTRIES:
            raise IntakeError(
                f"{archive} has {len(infos)} entries (at most {MAX_ENTRIES})"
            )
        budget = ZIP_BYTES
        candidates: list[_Candidate] = []
        for info in infos:
            if info.is_dir():
                continue
            outcome = _read_entry(zf, info, lms, roster, known, budget)
            if isinstance(outcome, EntryResult):
                report.entries.append(outcome)
                continue
            budget -= len(outcome.data)
            candidates.append(outcome)
    seen: defaultdict[tuple[str, str], list[_Candidate]] = defaultdict(list)
    for c in candidates:
        seen[c.student, c.notebook].append(c)
    stamps: defaultdict[str, list[datetime]] = defaultdict(list)
    flags: dict[str, bool | None] = {}
    lms_ids: dict[str, str] = {}
    for (student, notebook), found in sorted(seen.items()):
        if len(found) > 1:
            names = ", ".join(_printable(c.info.filename) for c in found)
            report.entries += [
                _result(
                    c, "duplicate-name", f"{len(found)} files are {notebook}: {names}"
                )
                for c in found
            ]
            continue
        c = found[0]
        written = _write(course, assignment, student, notebook, c.data)
        report.entries.append(_result(c, written[0], written[1]))
        if written[0] == "collected":
            stamps[student].append(_stamp(c.info, timezone))
            flags[student] = flags.get(student) or c.late
            lms_ids[student] = c.lms_id
    for student, when in stamps.items():
        given = (times or {}).get(lms_ids[student])
        report.times[student] = SubmissionTime(
            given.at if given and given.at else max(when),
            "lms",
            given.lms_late if given and given.lms_late is not None else flags[student],
        )
    every = {t for ts in stamps.values() for t in ts}
    if not times and len(stamps) > 1 and len(every) == 1:
        report.warnings.append(
            "every file in the zip has the same time: the LMS stamped when it made the zip, "
            "not when each student submitted; pass the LMS's times (--times)"
        )
    record = record_path(course, assignment, "lms")
    write_times(record, read_times(record, "lms") | report.times)
    _write_report(report_path(course, assignment, archive), report)
    return report


def _read_entry(
    zf: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    lms: str,
    roster: Roster,
    known: frozenset[str],
    budget: int,
) -> _Candidate | EntryResult:
    """One entry, checked before and while it is read; an ``EntryResult`` says why not."""
    name = info.filename
    match = re.search(PATTERNS[lms], name.replace("\\", "/"))
    lms_id = match["student_id"] if match else ""
    student = (roster.student(lms_id, match["name"]) or "") if match else ""

    def refused(status: str, message: str) -> EntryResult:
        return EntryResult(_printable(name), lms_id, student, "", status, message)

    parts = re.split(r"[/\\]", name)
    if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name) or ".." in parts:
        return refused("unsafe-path", "a path outside the zip's folder; not written")
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return refused("link", "a symbolic link; not followed, not written")
    if stat.S_IFMT(mode) not in (0, stat.S_IFREG):  # no type bits: a plain file
        return refused("not-a-regular-file", "a device, FIFO or other special file")
    if info.flag_bits & 0x1:
        return refused("encrypted", "an encrypted entry")
    if not match:
        return refused(
            "unmatched-name", "the name is not the LMS's pattern: whose is it?"
        )
    if not student:
        return refused(
            "unknown-student",
            f"LMS id {lms_id} ({clean_text(match['name'], 80)}) is not on the roster",
        )
    notebook = _COPY_SUFFIX.sub("", match["file_id"])
    if not notebook.endswith(".ipynb"):
        return refused("not-a-notebook", "not a notebook (.ipynb); not collected")
    if notebook not in known:
        return refused(
            "unknown-notebook",
            f"{clean_text(notebook, 120)} is not a notebook of this assignment",
        )
    if info.file_size > NOTEBOOK_BYTES:
        return refused("too-large", f"over {NOTEBOOK_BYTES >> 20} MB")
    if (
        info.file_size > MAX_RATIO * max(info.compress_size, 1)
        and info.file_size > 2**16
    ):
        return refused("zip-bomb", f"compressed over {MAX_RATIO} times; not expanded")
    if budget <= 0:
        return refused("intake-budget", f"past {ZIP_BYTES >> 30} GB read from this zip")
    try:
        with zf.open(info) as f:
            data = f.read(min(NOTEBOOK_BYTES, budget) + 1)
    except (
        zipfile.BadZipFile,
        OSError,
        RuntimeError,
        EOFError,
        NotImplementedError,
    ) as e:
        return refused("corrupt", clean_text(f"unreadable: {e}", 200))
    if len(data) > min(NOTEBOOK_BYTES, budget):
        return refused("zip-bomb", "expands past its declared size; not expanded")
    problem = _not_a_notebook(data)
    if problem:
        return EntryResult(
            _printable(name), lms_id, student, notebook, "not-a-notebook", problem
        )
    return _Candidate(
        info,
        lms_id,
        student,
        notebook,
        data,
        bool(match["late"]) if lms == "canvas" else None,
    )


def _not_a_notebook(data: bytes) -> str:
    """Why ``data`` is not a Jupyter notebook (nbformat 4), or "" if it is one."""
    try:
        text = data.decode("utf-8")
        if json_depth(text) > MAX_DEPTH:
            return f"nested over {MAX_DEPTH} deep"
        nb = json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return "not a notebook: not JSON text"
    if not (
        isinstance(nb, dict)
        and nb.get("nbformat") == 4
        and isinstance(nb.get("cells"), list)
    ):
        return "not a notebook in nbformat 4"
    return ""


def _result(c: _Candidate, status: str, message: str) -> EntryResult:
    return EntryResult(
        _printable(c.info.filename), c.lms_id, c.student, c.notebook, status, message
    )


def _printable(name: str) -> str:
    return clean_text(name, 200).replace("\n", " ").replace("\t", " ")


def _stamp(info: zipfile.ZipInfo, timezone: tzinfo) -> datetime:
    """The LMS's time on an entry (local to the LMS server), in UTC."""
    return utc(datetime(*info.date_time, tzinfo=timezone))


def _write(
    course: Path, assignment: str, student: str, notebook: str, data: bytes
) -> tuple[str, str]:
    """Write one notebook at ``submitted/<student>/<assignment>/<notebook>``, a path made of
    the roster's id and the release's name; never through a link."""
    folder = Path(course) / "submitted" / student / assignment
    for level in (folder.parent.parent, folder.parent, folder):
        if level.is_symlink() or (level.exists() and not level.is_dir()):
            return (
                "write-refused",
                f"{level} is not a plain folder; nothing written there",
            )
    target = folder / notebook
    if target.is_symlink() or (target.exists() and not target.is_file()):
        return "write-refused", f"{target} is not a plain file; not replaced"
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{notebook}.")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o644)
    os.replace(tmp, target)
    return "collected", ""


def report_path(course: Path, assignment: str, archive: Path) -> Path:
    """Where the statuses of one zip's entries go: ``intake/<assignment>/<zip>.report.csv``."""
    return record_path(course, assignment, "lms").with_name(
        f"{archive.stem}.report.csv"
    )


REPORT_COLUMNS = ("entry", "lms_id", "student", "notebook", "status", "message")


def _write_report(path: Path, report: IntakeReport) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(REPORT_COLUMNS)
        for e in sorted(report.entries, key=lambda e: (e.student, e.entry)):
            writer.writerow(
                [e.entry, e.lms_id, e.student, e.notebook, e.status, e.message]
            )
    return path


def read_lms_times(path: Path) -> dict[str, SubmissionTime]:
    """The LMS's own table of submission times (``lms_id,submitted_at[,late]``), by LMS id."""
    found = {}
    with path.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            when = (row.get("submitted_at") or "").strip()
            late = (row.get("late") or "").strip().lower()
            found[(row.get("lms_id") or "").strip()] = SubmissionTime(
                parse_time(when) if when else None,
                "lms",
                {"true": True, "yes": True, "false": False, "no": False}.get(late),
            )
    return found
