"""LMS downloads taken in, and hostile ones refused entry by entry (written as the attacker).

The zips are built here as Canvas and Moodle build them ("download all submissions"), from real
release notebooks. The attacker is a student of the course whose uploads land in the same zip
as the victim's and the bystanders': whatever the attacker's entries are, the victim and the
bystanders are collected exactly, the attacker's bad entries get a status, and nothing is
written outside the course.
"""

from __future__ import annotations

import stat
import zipfile
from datetime import datetime
from pathlib import Path

import pytest
from conftest import write_submission

from autograder.__main__ import main as autograder_main
from autograder.deadlines.times import read_times, record_path
from autograder.intake.lms_zip import (
    NOTEBOOK_BYTES,
    IntakeError,
    intake_zip,
)
from autograder.intake.roster import RosterError, read_roster
from autograder.paths import ASSIGNMENT, RELEASE_DIR

NOTEBOOK = "01-multiple-input-channels.ipynb"
WHEN = datetime(2026, 12, 4, 16, 30)
ROSTER = (
    "student,lms_id,name\n"
    "victim,51001,Vic Tim\n"
    "bystander,51002,Bys Tander\n"
    "mallory,51666,Mallory Evil\n"
)


@pytest.fixture(scope="module")
def release_bytes(tmp_path_factory) -> dict[str, bytes]:
    folder = write_submission(tmp_path_factory.mktemp("nb"), "x", {})
    return {p.name: p.read_bytes() for p in folder.glob("*.ipynb")}


def canvas(lms_id: str, file: str, name: str = "timvic", late: bool = False) -> str:
    return f"{name}_{'LATE_' if late else ''}{lms_id}_{7000000 + int(lms_id)}_{file}"


def honest(release_bytes: dict[str, bytes]) -> list[tuple[str, bytes]]:
    return [
        (canvas(lms_id, file, name), data)
        for lms_id, name in (("51001", "timvic"), ("51002", "tanderbys"))
        for file, data in sorted(release_bytes.items())
    ]


def make_zip(path: Path, entries: list[tuple[str | zipfile.ZipInfo, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            info = name if isinstance(name, zipfile.ZipInfo) else zipfile.ZipInfo(name)
            if not isinstance(name, zipfile.ZipInfo):
                info.date_time = WHEN.timetuple()[:6]
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return path


def link(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name, WHEN.timetuple()[:6])
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode()


def collect(tmp_path: Path, entries, lms: str = "canvas"):
    course = tmp_path / "course"
    course.mkdir(exist_ok=True)
    (tmp_path / "roster.csv").write_text(ROSTER)
    archive = make_zip(tmp_path / "download.zip", entries)
    report = intake_zip(archive, course, read_roster(tmp_path / "roster.csv"), lms)
    return course, report


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def assert_victim_and_bystander_collected_exactly(course: Path, release_bytes):
    for student in ("victim", "bystander"):
        folder = course / "submitted" / student / ASSIGNMENT
        assert {p.name: p.read_bytes() for p in folder.iterdir()} == release_bytes


def test_an_honest_canvas_download_becomes_submitted_with_the_lms_times(
    tmp_path, release_bytes
):
    late = [
        (canvas("51002", f, "tanderbys", late=True), d)
        for f, d in sorted(release_bytes.items())
    ]
    course, report = collect(
        tmp_path, honest(release_bytes)[: len(release_bytes)] + late
    )
    assert_victim_and_bystander_collected_exactly(course, release_bytes)
    assert report.statuses() == {"victim": ["collected"], "bystander": ["collected"]}
    times = read_times(record_path(course, ASSIGNMENT, "lms"), "lms")
    assert times["victim"].at == WHEN and times["victim"].lms_late is False
    assert times["bystander"].lms_late is True  # Canvas's _LATE_ in the name


def test_a_moodle_download_in_folders_is_matched_by_participant_id(
    tmp_path, release_bytes
):
    entries = [
        (f"Vic Tim_51001_assignsubmission_file/{f}", d)
        for f, d in sorted(release_bytes.items())
    ] + [
        (f"Bys Tander_51002_assignsubmission_file_{f}", d)
        for f, d in sorted(release_bytes.items())
    ]
    course, _ = collect(tmp_path, entries, lms="moodle")
    assert_victim_and_bystander_collected_exactly(course, release_bytes)
    times = read_times(record_path(course, ASSIGNMENT, "lms"), "lms")
    assert times["victim"].lms_late is None  # Moodle's names carry no late flag


def test_a_file_uploaded_twice_keeps_its_name_without_canvass_copy_number(
    tmp_path, release_bytes
):
    entries = [(canvas("51001", NOTEBOOK.replace(".ipynb", "-1.ipynb")), b"")]
    entries[0] = (entries[0][0], release_bytes[NOTEBOOK])
    course, _ = collect(tmp_path, entries)
    assert (course / "submitted" / "victim" / ASSIGNMENT / NOTEBOOK).is_file()


# The attacker's entries, each with the status it must get. Every name is one Canvas could
# carry: the student chose the uploaded file's name and its bytes, and a crafted zip is what a
# compromised download or a careless re-zip hands the instructor.
ATTACKS = {
    "traversal": (
        canvas("51666", "../../../escaped.ipynb", "evilmallory"),
        "unsafe-path",
    ),
    "absolute": ("/tmp/" + canvas("51666", NOTEBOOK, "evilmallory"), "unsafe-path"),
    "backslashes": (
        "..\\..\\" + canvas("51666", NOTEBOOK, "evilmallory"),
        "unsafe-path",
    ),
    "python file": (canvas("51666", "solution.py", "evilmallory"), "not-a-notebook"),
    "html page": (canvas("51666", "page.html", "evilmallory"), "not-a-notebook"),
    "unknown notebook": (
        canvas("51666", "99-extra.ipynb", "evilmallory"),
        "unknown-notebook",
    ),
    "not on the roster": (canvas("77777", NOTEBOOK, "strangerx"), "unknown-student"),
    "no pattern": ("readme.ipynb", "unmatched-name"),
    # Uploading a file named as the victim's entry: the LMS prefixes the uploader's own name.
    "impersonation": (
        canvas("51666", canvas("51001", NOTEBOOK), "evilmallory"),
        "unknown-notebook",
    ),
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_a_hostile_entry_gets_its_status_and_the_others_are_collected_exactly(
    tmp_path, release_bytes, attack
):
    name, status = ATTACKS[attack]
    before = files_under(tmp_path)
    course, report = collect(
        tmp_path, [*honest(release_bytes), (name, release_bytes[NOTEBOOK])]
    )
    assert_victim_and_bystander_collected_exactly(course, release_bytes)
    (hostile,) = [e for e in report.entries if e.status != "collected"]
    assert hostile.status == status
    written = files_under(tmp_path) - before
    assert all(
        w.startswith(("course", "roster.csv", "download.zip")) for w in written
    ), written
    assert not (course / "submitted" / "mallory").exists()
    assert not list(tmp_path.rglob("escaped.ipynb"))


def test_a_link_entry_is_never_followed_or_written(tmp_path, release_bytes):
    secret = tmp_path / "secret"
    secret.write_text("course secret")
    entry = link(canvas("51666", NOTEBOOK, "evilmallory"), str(secret))
    course, report = collect(tmp_path, [*honest(release_bytes), entry])
    assert_victim_and_bystander_collected_exactly(course, release_bytes)
    assert report.statuses()["mallory"] == ["link"]
    assert not (course / "submitted" / "mallory").exists()


def test_a_zip_bomb_is_refused_unexpanded(tmp_path, release_bytes):
    bombs = [
        (canvas("51666", NOTEBOOK, "evilmallory"), b"0" * (4 << 20)),  # 4 MB of one byte
        (canvas("51666", "02-multiple-output-channels.ipynb", "evilmallory"),
         b" " * (NOTEBOOK_BYTES + 1)),
    ]  # fmt: skip
    course, report = collect(tmp_path, [*honest(release_bytes), *bombs])
    assert_victim_and_bystander_collected_exactly(course, release_bytes)
    assert sorted(e.status for e in report.entries if e.student == "mallory") == [
        "too-large",
        "zip-bomb",
    ]


def test_duplicate_names_collect_neither_copy(tmp_path, release_bytes):
    twice = canvas("51666", NOTEBOOK, "evilmallory")
    other = canvas("51666", NOTEBOOK.replace(".ipynb", "-2.ipynb"), "evilmallory")
    entries = [
        *honest(release_bytes),
        (twice, release_bytes[NOTEBOOK]),
        (other, release_bytes[NOTEBOOK]),
        (canvas("51666", "03-1x1-convolution.ipynb", "evilmallory"),
         release_bytes["03-1x1-convolution.ipynb"]),
    ]  # fmt: skip
    course, report = collect(tmp_path, entries)
    assert_victim_and_bystander_collected_exactly(course, release_bytes)
    assert report.statuses()["mallory"] == ["duplicate-name", "collected"]
    assert [
        p.name for p in (course / "submitted" / "mallory" / ASSIGNMENT).iterdir()
    ] == ["03-1x1-convolution.ipynb"]


@pytest.mark.parametrize(
    "data", [b"", b"not json", b"[1, 2]", b'{"nbformat": 3, "cells": []}', b"[" * 100]
)
def test_a_notebook_name_that_is_not_a_notebook_is_not_collected(
    tmp_path, release_bytes, data
):
    course, report = collect(
        tmp_path,
        [*honest(release_bytes), (canvas("51666", NOTEBOOK, "evilmallory"), data)],
    )
    assert_victim_and_bystander_collected_exactly(course, release_bytes)
    assert report.statuses()["mallory"] == ["not-a-notebook"]


def test_a_link_planted_in_submitted_is_not_written_through(tmp_path, release_bytes):
    course = tmp_path / "course"
    elsewhere = tmp_path / "elsewhere"
    (course / "submitted").mkdir(parents=True)
    elsewhere.mkdir()
    (course / "submitted" / "mallory").symlink_to(elsewhere)
    course, report = collect(
        tmp_path,
        [*honest(release_bytes), (canvas("51666", NOTEBOOK, "evilmallory"),
                                  release_bytes[NOTEBOOK])],
    )  # fmt: skip
    assert report.statuses()["mallory"] == ["write-refused"]
    assert list(elsewhere.iterdir()) == []


def test_a_file_that_is_not_a_zip_stops_the_intake_with_a_reason(tmp_path):
    (tmp_path / "roster.csv").write_text(ROSTER)
    (tmp_path / "download.zip").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(IntakeError, match="not a readable zip"):
        intake_zip(
            tmp_path / "download.zip",
            tmp_path,
            read_roster(tmp_path / "roster.csv"),
            "canvas",
        )
    assert not (tmp_path / "submitted").exists()


def test_the_command_reports_each_refused_entry_and_exits_zero(
    tmp_path, release_bytes, capsys
):
    (tmp_path / "roster.csv").write_text(ROSTER)
    archive = make_zip(
        tmp_path / "download.zip",
        [*honest(release_bytes), (ATTACKS["traversal"][0], b"{}")],
    )
    code = autograder_main(
        ["intake", str(archive), "--lms", "canvas", "--roster",
         str(tmp_path / "roster.csv"), "--course", str(tmp_path)]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0
    assert "collected 2 students" in out and "unsafe-path" in err
    assert (tmp_path / "intake" / ASSIGNMENT / "download.report.csv").is_file()


def test_roster_names_match_only_when_unambiguous(tmp_path):
    path = tmp_path / "roster.csv"
    path.write_text("student,lms_id,name\nann,,Ann Lee\nann2,,ann  lee\nbob,,Bob Day\n")
    roster = read_roster(path)
    assert roster.student("1", "BOB DAY") == "bob"
    assert roster.student("2", "Ann Lee") is None


@pytest.mark.parametrize(
    "body",
    [
        "who,id\nx,1\n",
        "student,lms_id,name\n../x,1,\n",
        "student,lms_id,name\na,1,\nb,1,\n",
    ],
)
def test_a_roster_that_cannot_be_used_is_refused(tmp_path, body):
    (tmp_path / "roster.csv").write_text(body)
    with pytest.raises(RosterError):
        read_roster(tmp_path / "roster.csv")


def test_every_release_notebook_name_is_known_to_the_intake():
    from autograder.intake.lms_zip import release_notebooks

    assert release_notebooks() == {p.name for p in RELEASE_DIR.glob("*.ipynb")}


def test_the_lms_table_of_times_wins_over_the_files_stamps(tmp_path, release_bytes):
    (tmp_path / "times.csv").write_text(
        "lms_id,submitted_at,late\n51001,2026-12-05 10:00:00 UTC,yes\n"
    )
    (tmp_path / "roster.csv").write_text(ROSTER)
    archive = make_zip(tmp_path / "download.zip", honest(release_bytes))
    code = autograder_main(
        ["intake", str(archive), "--lms", "canvas", "--roster",
         str(tmp_path / "roster.csv"), "--course", str(tmp_path),
         "--times", str(tmp_path / "times.csv")]
    )  # fmt: skip
    assert code == 0
    times = read_times(record_path(tmp_path, ASSIGNMENT, "lms"), "lms")
    assert times["victim"].at == datetime(2026, 12, 5, 10) and times["victim"].lms_late
    assert times["bystander"].at == WHEN  # not in the table: the file's stamp


def test_one_stamp_on_every_file_is_called_out(tmp_path, release_bytes):
    _, report = collect(tmp_path, honest(release_bytes))
    assert any("same time" in w for w in report.warnings)


def test_a_zone_turns_the_servers_local_stamps_into_utc(tmp_path, release_bytes):
    from zoneinfo import ZoneInfo

    (tmp_path / "roster.csv").write_text(ROSTER)
    archive = make_zip(tmp_path / "download.zip", honest(release_bytes))
    intake_zip(
        archive,
        tmp_path,
        read_roster(tmp_path / "roster.csv"),
        "canvas",
        timezone=ZoneInfo("Europe/Paris"),
    )
    times = read_times(record_path(tmp_path, ASSIGNMENT, "lms"), "lms")
    assert times["victim"].at == datetime(2026, 12, 4, 15, 30)  # 16:30 in Paris, winter
