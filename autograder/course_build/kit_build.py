"""Build the student's check kit and write the cells that carry it into the source notebooks.

The kit is ``autograder/kit/`` (the grader's judging and policy, the notebook checks) plus
``data.json``: every exercise's rubric, its visible and practice inputs as seeds and shapes, and,
for the counts and the composed kernels (whose answers are the exercise), the answers to those
inputs only, right and known wrong, computed here from the reference solutions. No graded seed,
salt, reference code or model answer goes in (``tests/kit/test_kit.py`` looks).

It travels inside the notebooks, so that a notebook downloaded alone still checks itself: every
graded notebook gets a locked ``setup_kit`` cell holding the kit as a base64 zip, which unpacks it
into a private temporary folder and imports it. Every notebook's first cell, ``setup_packages``,
installs what a bare Jupyter or Colab lacks; its text lives here too. ``python -m autograder
release`` writes both cells into ``solutions/`` before nbgrader generates ``chapters/``, and
``check-release`` fails when they are out of date.
"""

from __future__ import annotations

import base64
import io
import json
import textwrap
import zipfile
from pathlib import Path

import nbformat
import torch

from autograder import notebooks
from autograder.course_build.release import ReleaseError
from autograder.grading.exercises import (
    EXERCISES,
    Case,
    Exercise,
    reseeded,
    tensor_data,
)
from autograder.grading.mistakes import defined_names
from autograder.kit.notebook import KIT_TITLE, Kit, cell_hash
from autograder.notebooks import KIT_CELL, PACKAGES_CELL
from autograder.paths import ROOT, SOURCE_DIR

KIT_DIR = Path(__file__).parent.parent / "kit"
KIT_PACKAGE = "channels_kit"
KIT_FILES = ("__init__.py", "judging.py", "notebook.py", "policy.py")
# Practice inputs: the graded shapes drawn from seeds derived from this public salt, so the
# practice check teaches nothing about the graded numbers.
PRACTICE_SALT = "practice"
# What the first cell installs where it is missing: torch as the course pins it, and the
# modules d2l.torch imports at the versions d2l 1.0.3 pins (its own requirements). d2l itself
# comes without dependencies: its pins (numpy 1.23.5, ...) would downgrade a working Colab.
NEEDED = {
    "torch": "torch==2.14.1",
    "torchvision": "torchvision==0.29.1",
    "matplotlib": "matplotlib==3.7.2",
    "matplotlib_inline": "matplotlib-inline==0.1.6",
    "pandas": "pandas==2.0.3",
    "scipy": "scipy==1.10.1",
    "requests": "requests==2.31.0",
}
D2L = "d2l==1.0.3"
NUMPY = "numpy==1.23.5"  # d2l 1.0.3's pin, where no numpy 1 is installed


def packages_cell() -> str:
    """The first cell of every notebook: install what is missing, and only that."""
    needed = "\n".join(f'    "{module}": "{pip}",' for module, pip in NEEDED.items())
    return f'''\
# A course hub has everything; Colab or a bare Jupyter may not. This installs what is missing,
# and only that: torch and torchvision if absent, the modules d2l uses at the versions d2l 1.0.3
# asks for, then d2l itself without its dependencies (its pins, numpy 1.23.5 among them, would
# downgrade a working Colab).
import importlib
import importlib.metadata
import importlib.util
import subprocess
import sys

NEEDED = {{  # module: what pip installs where it is missing
{needed}
}}
missing = [pip for module, pip in NEEDED.items() if importlib.util.find_spec(module) is None]
if missing:
    # These releases are built for numpy 1: keep a numpy 1 that is there, else take d2l's.
    try:
        numpy = "numpy==" + importlib.metadata.version("numpy")
    except importlib.metadata.PackageNotFoundError:
        numpy = "{NUMPY}"
    if not numpy.startswith("numpy==1."):
        numpy = "{NUMPY}"
    print("Installing", ", ".join(missing))
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", *missing, numpy], check=True
    )
if importlib.util.find_spec("d2l") is None:
    print("Installing {D2L}")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "{D2L}"], check=True
    )
importlib.invalidate_caches()'''


def _tensor_data(t: torch.Tensor) -> dict:
    """A stored answer as JSON. Its values are exact (seeded inputs are eighths:
    judging.seeded_inputs); adding +0.0 turns a -0.0, whose sign can depend on the order of a
    sum, into 0.0."""
    return tensor_data(t.to("cpu", torch.float64) + 0.0)


def _answer_data(value) -> object:
    return _tensor_data(value) if isinstance(value, torch.Tensor) else value


def practice_cases(ex: Exercise) -> tuple[Case, ...]:
    """The graded cases with their random ones re-seeded; worked examples stay as written."""
    return reseeded(ex.cases, PRACTICE_SALT)


def _exercise_data(ex: Exercise) -> dict:
    practice = practice_cases(ex)
    answers = []
    if ex.kind != "conv":  # a convolution's answers are conv2d's: the kit computes them
        for case in dict.fromkeys((*practice, *ex.visible)):
            magnitude = ex.answers.magnitude(ex, case) if ex.kind == "compose" else None
            answers.append(
                {
                    "case": case.to_data(),
                    "expected": _answer_data(ex.answers.expected(ex, case)),
                    "magnitude": None if magnitude is None else _tensor_data(magnitude),
                    "wrong": {
                        why: _answer_data(value)
                        for why, value in ex.answers.wrong(ex, case).items()
                    },
                }
            )
    return {
        "name": ex.name,
        "section": ex.section,
        "notebook": ex.notebook,
        "kernel_dims": ex.kernel_dims,
        "kind": ex.kind,
        "arg_names": list(ex.arg_names),
        "stand_ins": list(ex.stand_ins),
        "forbidden": sorted(ex.forbidden),
        "product_tip": ex.product_tip,
        "rubric": [
            {
                "cell": item.cell,
                "tag": item.tag,
                "points": item.points,
                "description": item.description,
            }
            for item in ex.rubric
        ],
        "visible": [case.to_data() for case in ex.visible],
        "practice": [case.to_data() for case in practice],
        "answers": answers,
    }


def _own_code(nb: nbformat.NotebookNode) -> list[str]:
    """The notebook's own code cells: not the answers, not the kit itself."""
    return [
        cell.source
        for cell in nb.cells
        if cell.cell_type == "code"
        and not cell.metadata.get("nbgrader", {}).get("solution")
        and not cell.source.startswith(KIT_TITLE)
    ]


def kit_data(sources: dict[str, nbformat.NotebookNode], conv_policy: str) -> dict:
    return {
        "conv_policy": conv_policy,
        "exercises": [_exercise_data(ex) for ex in EXERCISES.values()],
        # How the kit tells the student's cells from the notebook's own, and the names the
        # notebook defines (``book_corr2d_multi_in``): never the misspelling of a graded name.
        "release_cells": {
            name: sorted(set(map(cell_hash, _own_code(nb))))
            for name, nb in sorted(sources.items())
        },
        "release_names": {
            name: defined_names(_own_code(nb)) for name, nb in sorted(sources.items())
        },
    }


def kit_files(data: dict) -> dict[str, bytes]:
    """The kit's files by their path in the zip: the package's modules and its data."""
    files = {
        f"{KIT_PACKAGE}/{name}": (KIT_DIR / name).read_bytes() for name in KIT_FILES
    }
    files[f"{KIT_PACKAGE}/data.json"] = (
        json.dumps(data, sort_keys=True, separators=(",", ":")) + "\n"
    ).encode()
    return files


def kit_zip(files: dict[str, bytes]) -> bytes:
    """The files as a zip that is the same bytes for the same files (fixed dates, order)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for path in sorted(files):
            info = zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            z.writestr(info, files[path])
    return buffer.getvalue()


def kit_cell(zipped: bytes) -> str:
    encoded = base64.b64encode(zipped).decode()
    lines = "\n".join(f'    "{chunk}"' for chunk in textwrap.wrap(encoded, 88))
    return f"""\
{KIT_TITLE}
# What the visible tests and the practice checks below run: the rubric, its diagnoses and
# inputs of their own, as the package `channels_kit`, zipped into this cell so that the notebook
# works on its own, wherever it is opened. It holds no solution and none of the graded inputs.
# Do not edit this cell.
import atexit
import base64
import importlib
import shutil
import sys
import tempfile
from pathlib import Path

KIT = (
{lines}
)
_kit_dir = tempfile.mkdtemp(prefix="channels_kit-")
atexit.register(shutil.rmtree, _kit_dir, True)  # the copy goes when the kernel stops
_kit_zip = Path(_kit_dir) / "channels_kit.zip"
_kit_zip.write_bytes(base64.b64decode(KIT))
sys.path.insert(0, str(_kit_zip))
for _module in [m for m in sys.modules if m.split(".")[0] == "channels_kit"]:
    del sys.modules[_module]  # running the cell again loads this copy
importlib.invalidate_caches()
from channels_kit import practice, visible_test, written  # noqa: E402 (its path is set above)"""


def kit_of_cell(source: str) -> dict[str, bytes]:
    """The files a kit cell carries (for the drift check and the leak test)."""
    encoded = "".join(
        line.strip().strip('"')
        for line in source.split("KIT = (\n", 1)[1].split("\n)\n", 1)[0].splitlines()
    )
    with zipfile.ZipFile(io.BytesIO(base64.b64decode(encoded))) as z:
        return {name: z.read(name) for name in z.namelist()}


def _graded_notebooks() -> set[str]:
    return {ex.notebook for ex in EXERCISES.values()}


def _cell_after(nb: nbformat.NotebookNode, grade_id: str | None) -> int:
    """Where a new cell goes: after the cell ``grade_id``; with None, before the first code
    cell (a new notebook's first cell goes under its title)."""
    if grade_id is None:
        code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
        return code[0] if code else len(nb.cells)
    ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells]
    return ids.index(grade_id) + 1


def _locked_cell(source: str, grade_id: str, hidden: bool) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source, id=grade_id.replace("_", "-"))
    cell.metadata = {
        "nbgrader": {
            "grade": False,
            "grade_id": grade_id,
            "locked": True,
            "schema_version": 3,
            "solution": False,
            "task": False,
        },
        "tags": ["remove-cell"],
    }
    # Folded in JupyterLab and Notebook 7, the classic Notebook's "Hide input" and Colab.
    if hidden:
        cell.metadata |= {
            "cellView": "form",  # Colab: a form shows its title only
            "hide_input": True,
            "jupyter": {"source_hidden": True},
        }
    return cell


def _settle(
    nb: nbformat.NotebookNode, grade_id: str, source: str, after: str | None
) -> bool:
    """Put ``source`` into the cell ``grade_id`` (created after ``after``); True if changed."""
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            if cell.source == source:
                return False
            cell.source = source
            return True
    nb.cells.insert(
        _cell_after(nb, after), _locked_cell(source, grade_id, grade_id == KIT_CELL)
    )
    return True


def _conv_policy() -> str:
    # The course's configuration, read by the plugin's class (which imports nbgrader).
    from autograder.integration.plugin import load_settings

    return load_settings(ROOT).conv_policy


def _source_notebooks(source_dir: Path) -> dict[str, nbformat.NotebookNode]:
    return {p.name: notebooks.read(p) for p in sorted(source_dir.glob("*.ipynb"))}


def write_kit(source_dir: Path = SOURCE_DIR) -> list[Path]:
    """Write the first cell and the kit cell into the source notebooks; the ones changed."""
    nbs = _source_notebooks(source_dir)
    changed = {
        name
        for name, nb in nbs.items()
        if _settle(nb, PACKAGES_CELL, packages_cell(), None)
    }
    cell = kit_cell(kit_zip(kit_files(kit_data(nbs, _conv_policy()))))
    for name in _graded_notebooks():
        if _settle(nbs[name], KIT_CELL, cell, "setup_imports"):
            changed.add(name)
    for name in sorted(changed):
        notebooks.write(nbs[name], source_dir / name)
    return [source_dir / name for name in sorted(changed)]


def kit_problems(source_dir: Path = SOURCE_DIR) -> list[str]:
    """What is out of date in the source notebooks' first and kit cells (empty: nothing)."""
    nbs = _source_notebooks(source_dir)
    fresh = kit_files(kit_data(nbs, _conv_policy()))
    problems = []
    for name, nb in nbs.items():
        cells = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in nb.cells}
        if PACKAGES_CELL not in cells or cells[PACKAGES_CELL].source != packages_cell():
            problems.append(f"{name}: its first cell is not kit_build.packages_cell()")
        if name in _graded_notebooks():
            if KIT_CELL not in cells:
                problems.append(f"{name}: no kit cell")
            elif kit_of_cell(cells[KIT_CELL].source) != fresh:
                problems.append(f"{name}: its kit is not what autograder/kit/ builds")
    return problems


def check_kit(source_dir: Path = SOURCE_DIR) -> None:
    problems = kit_problems(source_dir)
    if problems:
        raise ReleaseError(
            "the kit is out of date (run `make release`):\n  " + "\n  ".join(problems)
        )


def current_kit(source_dir: Path = SOURCE_DIR) -> Kit:
    """The kit the source notebooks would carry, loaded here (for tests and the instructor)."""
    nbs = _source_notebooks(source_dir)
    return Kit.from_data(json.loads(json.dumps(kit_data(nbs, _conv_policy()))))
