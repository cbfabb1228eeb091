"""A release notebook runs top to bottom in a bare Jupyter: its first cell brings the rest.

Students open the release in Colab or in a Jupyter that has only its kernel, torch and
torchvision; the first code cell (``setup_packages``) must install d2l and d2l's own pins
(matplotlib, matplotlib-inline, pandas, scipy, requests) without touching numpy, and the notebook
must then work without the course's ``autograder`` package. The course's own environment has all
of these, so only a separate environment can show it.

The environment: a venv of the same CPython, ``pip install ipykernel`` from this machine's
mirrors (its ``matplotlib-inline`` dependency removed again, so the first cell has to install
it), and torch, torchvision and their dependency closure from the course venv, read from their
metadata (extras included) and linked into a folder outside the venv that a ``.pth`` file adds
to ``sys.path``. Linking takes about a second; ``pip install torch==2.14.1
torchvision==0.29.1`` from the local mirrors took 40 s and 5.5 GB here (CUDA wheels). The
folder lies outside the venv's prefix so that pip in the notebook can shadow but never uninstall
what it links to. The notebook runs in that venv's kernel, driven by nbclient from the test's own
process, in a folder that holds only the notebook.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from conftest import cell_by_grade_id, rubric_points
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from autograder.paths import RELEASE_DIR, ROOT

NOTEBOOK = RELEASE_DIR / "01-multiple-input-channels.ipynb"
KERNEL = "bare-jupyter"
# d2l 1.0.3's own pins, which the first cell installs where they are missing.
D2L_PINS = {
    "matplotlib": "3.7.2",
    "matplotlib-inline": "0.1.6",
    "pandas": "2.0.3",
    "scipy": "1.10.1",
    "requests": "2.31.0",
    "d2l": "1.0.3",
}
# What a bare Jupyter lacks: the first cell's job (and the course's grader, which it never has).
ABSENT = (
    "autograder",
    "matplotlib",
    "matplotlib_inline",
    "pandas",
    "scipy",
    "requests",
    "d2l",
)

# Two students: an honest loop over channels and windows, and the same with the kernel flipped
# (a convolution instead of a cross-correlation).
ANSWER = '''\
def corr2d_multi_in(X: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Cross-correlate X (c_i, h, w) with K (c_i, k_h, k_w) and sum over the channels."""
    if X.dim() != 3 or K.dim() != 3 or X.shape[0] != K.shape[0]:
        raise ValueError(
            f"expected X of shape (c_i, h, w) and K of shape (c_i, k_h, k_w) with the same c_i; "
            f"got X {{tuple(X.shape)}} and K {{tuple(K.shape)}}"
        )
    k_h, k_w = K.shape[1:]
    Y = torch.zeros(
        (X.shape[1] - k_h + 1, X.shape[2] - k_w + 1),
        dtype=torch.promote_types(X.dtype, K.dtype),
        device=X.device,
    )
    for x, k in zip(X, K{flip}):
        for i in range(Y.shape[0]):
            for j in range(Y.shape[1]):
                Y[i, j] += (x[i : i + k_h, j : j + k_w] * k).sum()
    return Y
'''
STUDENTS = {
    "correct": ANSWER.format(flip=""),
    "flipped": ANSWER.format(flip=".flip(-1, -2)"),
}


def needed_pins(source: str) -> dict[str, str] | None:
    """The NEEDED dict of a first cell (module -> pip requirement), or None if it has none."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "NEEDED" for t in node.targets
        ):
            return ast.literal_eval(node.value)
    return None


def pins_of(lines: list[str]) -> dict[str, str]:
    """{canonical name: specifier} of requirement lines (comments and blanks skipped)."""
    reqs = [
        Requirement(line) for line in lines if line.strip() and not line.startswith("#")
    ]
    return {canonicalize_name(r.name): str(r.specifier) for r in reqs if not r.marker}


def test_first_cell_pins_are_d2ls_own_and_the_course_torch():
    """The first cell must install what d2l 1.0.3 asks for, and the course's torch pair."""
    source = cell_by_grade_id(
        nbformat.read(NOTEBOOK, as_version=4), "setup_packages"
    ).source
    needed = needed_pins(source)
    if needed is None:
        pytest.skip("the release's setup_packages cell has no NEEDED dict yet")
    cell = pins_of(list(needed.values()))
    d2l = pins_of(importlib.metadata.requires("d2l") or [])
    course = pins_of((ROOT / "requirements.in").read_text().splitlines())
    for name in ("matplotlib", "matplotlib-inline", "pandas", "scipy", "requests"):
        assert cell[name] == d2l[name], name
    for name in ("torch", "torchvision"):
        assert cell[name] == course[name], name
    assert f"d2l{course['d2l']}" in source.replace(" ", "")


# --- the bare environment -------------------------------------------------------------------


def dependency_closure(roots: tuple[str, ...]) -> list[importlib.metadata.Distribution]:
    """The installed distributions that `roots` need on this platform, extras followed."""
    found: dict[str, importlib.metadata.Distribution] = {}
    todo = [(name, frozenset[str]()) for name in roots]
    done: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name, extras = todo.pop()
        if (canonicalize_name(name), extras) in done:
            continue
        done.add((canonicalize_name(name), extras))
        dist = importlib.metadata.distribution(name)
        found[canonicalize_name(dist.metadata["Name"])] = dist
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker is None or any(
                req.marker.evaluate({"extra": extra}) for extra in ("", *extras)
            ):
                todo.append((req.name, frozenset(req.extras)))
    return list(found.values())


def link_distributions(
    dists: list[importlib.metadata.Distribution], into: Path
) -> None:
    """Symlink exactly the files of `dists` into `into` (whole top-level folders they own alone)."""
    names = {canonicalize_name(d.metadata["Name"]) for d in dists}
    # Each top-level entry of site-packages -> the distributions with files under it.
    owners: dict[str, set[str]] = {}
    for dist in importlib.metadata.distributions():
        for top in {f.parts[0] for f in dist.files or []}:
            owners.setdefault(top, set()).add(canonicalize_name(dist.metadata["Name"]))
    for dist in dists:
        for file in dist.files or []:
            top = file.parts[0]
            whole = top != "__pycache__" and owners[top] <= names
            source = Path(dist.locate_file(top if whole else file))
            target = into / (top if whole else file)
            if top == ".." or not source.exists() or target.is_symlink():
                continue  # scripts in bin/, files a RECORD lists but pip never wrote
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(source)


def bare_env(tmp: Path, venv: Path) -> dict[str, str]:
    """This process's environment without the course: no PYTHONPATH, no path into the repo."""
    drop = {"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "IPYTHONDIR"}
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in drop and not k.startswith("JUPYTER") and str(ROOT) not in v
    }
    path = [
        p for p in os.environ["PATH"].split(os.pathsep) if not p.startswith(str(ROOT))
    ]
    env["PATH"] = os.pathsep.join([str(venv / "bin"), *path])
    env["IPYTHONDIR"] = str(tmp / "ipython")
    env["MPLCONFIGDIR"] = str(tmp / "matplotlib")
    # Never write bytecode caches into the course venv through the links.
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


PROBE = textwrap.dedent(
    """
    import importlib, importlib.metadata, json, re, sys
    imports = {}
    for module in sys.argv[1:]:
        try:
            importlib.import_module(module)
        except ImportError as error:
            imports[module] = type(error).__name__
        else:
            imports[module] = "ok"
    versions = {}  # the first of a name on sys.path is the one that imports
    for d in importlib.metadata.distributions():
        versions.setdefault(re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower(), d.version)
    print(json.dumps({"imports": imports, "versions": versions, "path": sys.path}))
    """
)


@dataclass
class BareJupyter:
    tmp: Path
    python: Path
    site_packages: Path
    kernels: Path
    env: dict[str, str]

    def probe(self, *modules: str) -> dict:
        """Import `modules` in a fresh interpreter of the venv; report them and all versions."""
        done = subprocess.run(
            [self.python, "-c", PROBE, *modules],
            cwd=self.tmp,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
        return json.loads(done.stdout.splitlines()[-1])

    def run(self, nb: nbformat.NotebookNode, folder: Path) -> nbformat.NotebookNode:
        """Run All in the venv's kernel, in `folder`; errors stay in the outputs, as in Jupyter."""
        folder.mkdir()
        nbformat.write(nb, folder / NOTEBOOK.name)
        km = KernelManager(
            kernel_name=KERNEL,
            kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(self.kernels)]),
        )
        client = NotebookClient(
            nb,
            km=km,
            timeout=900,  # per cell: the first cell installs d2l's pins with pip
            startup_timeout=120,
            allow_errors=True,
            record_timing=False,
            resources={"metadata": {"path": str(folder)}},
        )
        # We made km, so nbclient would leave the kernel running: ask it to stop it.
        client.execute(env=self.env, cleanup_kc=True)
        return nb


@pytest.fixture(scope="module")
def bare_jupyter(tmp_path_factory: pytest.TempPathFactory) -> BareJupyter:
    """A venv with a kernel, torch and torchvision, and nothing else the notebook uses."""
    tmp = tmp_path_factory.mktemp("bare")
    venv = tmp / "venv"
    subprocess.run([sys._base_executable, "-m", "venv", venv], check=True, timeout=300)
    python = venv / "bin" / "python"
    env = bare_env(tmp, venv)
    pip = [python, "-m", "pip", "--quiet"]
    ipykernel = f"ipykernel=={importlib.metadata.version('ipykernel')}"
    subprocess.run([*pip, "install", ipykernel], env=env, check=True, timeout=600)
    # ipykernel pulls in matplotlib-inline, which the kernel runs without: leave it to the cell.
    subprocess.run([*pip, "uninstall", "-y", "matplotlib-inline"], env=env, check=True)
    site_packages = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    has = {
        canonicalize_name(d.metadata["Name"])
        for d in importlib.metadata.distributions(path=[str(site_packages)])
    }
    # Outside the venv's prefix: pip in the notebook may shadow these but never uninstall them.
    closure = tmp / "torch-closure"
    link_distributions(
        [
            d
            for d in dependency_closure(("torch", "torchvision"))
            if canonicalize_name(d.metadata["Name"]) not in has
        ],
        closure,
    )
    (site_packages / "course-torch.pth").write_text(f"{closure}\n")
    kernel = tmp / "kernels" / KERNEL
    kernel.mkdir(parents=True)
    spec = {
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (bare Jupyter)",
        "language": "python",
    }
    (kernel / "kernel.json").write_text(json.dumps(spec))
    return BareJupyter(tmp, python, site_packages, tmp / "kernels", env)


@dataclass
class Runs:
    before: dict  # the venv before any notebook ran
    after: dict  # and after both
    notebooks: dict[str, nbformat.NotebookNode]  # student -> the notebook as it ran


@pytest.fixture(scope="module")
def runs(bare_jupyter: BareJupyter) -> Runs:
    """Both students' notebooks run in the bare venv, the correct one first (it installs)."""
    modules = ("torch", "torchvision", "numpy", *ABSENT)
    before = bare_jupyter.probe(*modules)
    notebooks = {}
    for student, answer in STUDENTS.items():
        nb = nbformat.read(NOTEBOOK, as_version=4)
        cell_by_grade_id(nb, "corr2d_multi_in").source = answer
        notebooks[student] = bare_jupyter.run(
            nb, bare_jupyter.tmp / f"student-{student}"
        )
    return Runs(before, bare_jupyter.probe(*modules), notebooks)


def errors(cell: nbformat.NotebookNode) -> list[str]:
    """The error outputs of a code cell, each as its name, value and (uncoloured) traceback."""
    return [
        re.sub(r"\x1b\[[0-9;]*m", "", "\n".join([o.ename, o.evalue, *o.traceback]))
        for o in cell.get("outputs", [])
        if o.output_type == "error"
    ]


def printed(cell: nbformat.NotebookNode) -> str:
    return "".join(o.text for o in cell.get("outputs", []) if o.output_type == "stream")


def practice_cell(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The code cell of the practice check (it has no grade_id: it is not graded)."""
    cells = [
        c
        for c in nb.cells
        if c.cell_type == "code" and c.source.startswith("# Practice")
    ]
    assert len(cells) == 1
    return cells[0]


def practice_output(nb: nbformat.NotebookNode) -> str:
    return printed(practice_cell(nb))


@pytest.mark.slow
def test_bare_venv_has_torch_and_a_kernel_but_not_what_the_first_cell_brings(
    runs: Runs,
):
    assert runs.before["imports"] == {
        "torch": "ok",
        "torchvision": "ok",
        "numpy": "ok",
        **dict.fromkeys(ABSENT, "ModuleNotFoundError"),
    }
    assert "ipykernel" in runs.before["versions"]
    assert not any(str(ROOT) in p for p in runs.before["path"])


@pytest.mark.slow
def test_correct_student_runs_top_to_bottom(runs: Runs):
    nb = runs.notebooks["correct"]
    assert not {i: e for i, c in enumerate(nb.cells) for e in errors(c)}
    assert "Visible tests pass" in printed(
        cell_by_grade_id(nb, "test_corr2d_multi_in_example")
    )


@pytest.mark.slow
def test_first_cell_installs_d2ls_pins_keeps_numpy_and_brings_no_grader(runs: Runs):
    assert {name: runs.after["versions"].get(name) for name in D2L_PINS} == D2L_PINS
    numpy = runs.before["versions"]["numpy"], runs.after["versions"]["numpy"]
    assert numpy[0] == numpy[1], (
        f"the first cell changed numpy from {numpy[0]} to {numpy[1]}"
    )
    assert runs.after["imports"]["autograder"] == "ModuleNotFoundError"
    for module in set(ABSENT) - {"autograder"}:
        assert runs.after["imports"][module] == "ok", module
    # The second run found everything and installed nothing.
    first = [
        printed(cell_by_grade_id(nb, "setup_packages"))
        for nb in runs.notebooks.values()
    ]
    assert "Installing" in first[0] and "Installing" not in first[1], first


@pytest.mark.slow
def test_flipped_student_fails_the_visible_test_and_it_says_flipped(runs: Runs):
    nb = runs.notebooks["flipped"]
    failures = errors(cell_by_grade_id(nb, "test_corr2d_multi_in_example"))
    assert failures, "the visible test passed a flipped kernel"
    assert "flipped" in "\n".join(failures)
    # Run with errors allowed, every code cell ran past it, the practice check included
    # (Run All itself stops at the visible test: tests/test_run_all.py).
    assert all(c.execution_count for c in nb.cells if c.cell_type == "code")


@pytest.mark.slow
def test_practice_check_gives_the_correct_student_full_marks_without_the_grader(
    runs: Runs,
):
    text = practice_output(runs.notebooks["correct"])
    assert "needs the course's autograder package" not in text
    lines = text.splitlines()
    assert any(line.startswith("ok  ") for line in lines), text
    assert not any(line.startswith("FAIL") for line in lines), text
    total = rubric_points("corr2d_multi_in")
    verdict = [line for line in lines if "points on practice inputs" in line]
    assert len(verdict) == 1 and f"{total:g} of {total:g}" in verdict[0], text


@pytest.mark.slow
def test_practice_check_diagnoses_the_flipped_kernel_without_the_grader(runs: Runs):
    text = practice_output(runs.notebooks["flipped"])
    assert "needs the course's autograder package" not in text
    assert any(line.startswith("FAIL") for line in text.splitlines()), text
    assert "kernel is flipped" in text
