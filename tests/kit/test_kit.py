"""The student's check kit: it leaks no solution, judges as the grader does, and its visible
tests tell the truth the grader will tell (the mistakes real students make, and the rules)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import (
    NOT_WRITTEN,
    cell_by_grade_id,
    model_answers,
    rubric_points,
    solution_lines,
    visible_not_written,
)

from autograder import EXERCISES, notebooks
from autograder.course_build.kit_build import (
    KIT_FILES,
    KIT_PACKAGE,
    PRACTICE_SALT,
    current_kit,
    kit_of_cell,
    kit_problems,
)
from autograder.grading import reference
from autograder.grading.scoring import Returned, judge
from autograder.kit.judging import Case
from autograder.kit.notebook import Kit
from autograder.notebooks import KIT_CELL, PACKAGES_CELL
from autograder.paths import RELEASE_DIR, ROOT

KIT = current_kit()
GRADED_NOTEBOOKS = sorted({ex.notebook for ex in EXERCISES.values()})


def grade_id(cell) -> str:
    return cell.metadata.get("nbgrader", {}).get("grade_id", "")


def release_kits() -> dict[str, dict[str, bytes]]:
    """The kit each release notebook carries, unpacked."""
    kits = {}
    for name in GRADED_NOTEBOOKS:
        cell = cell_by_grade_id(notebooks.read(RELEASE_DIR / name), KIT_CELL)
        kits[name] = kit_of_cell(cell.source)
    return kits


def student_files() -> dict[str, str]:
    """Every file a student receives: the release folder, and each notebook's kit, unpacked."""
    files = {
        str(path.relative_to(ROOT)): path.read_text(errors="replace")
        for path in RELEASE_DIR.rglob("*")
        if path.is_file()
    }
    for name, kit in release_kits().items():
        for path, data in kit.items():
            files[f"{name}:{path}"] = data.decode()
    return files


def test_the_release_and_its_kits_hold_no_solution_seed_or_model_answer():
    files = student_files()
    assert any(path.endswith("data.json") for path in files)
    # Reference code and answer code.
    answers = solution_lines()
    assert len(answers) > 40
    leaks = [
        (path, line) for path, text in files.items() for line in answers if line in text
    ]
    assert leaks == []
    # Model answers and their rubrics.
    written = model_answers()
    assert len(written) > 20
    leaks = [
        (path, gid) for path, text in files.items() for gid, s in written if s in text
    ]
    assert leaks == []
    # No module of the instructor's package, nothing that imports it.
    for path, text in files.items():
        assert not re.search(r"^\s*(from|import)\s+autograder\b", text, re.M), path
        assert not re.search(r"import\s+(reference|answer_key)\b", text), path


def test_the_kit_carries_no_graded_seed_and_no_course_secret():
    for name, kit in release_kits().items():
        assert sorted(kit) == sorted(
            [f"{KIT_PACKAGE}/{f}" for f in KIT_FILES] + [f"{KIT_PACKAGE}/data.json"]
        )
        data = json.loads(kit[f"{KIT_PACKAGE}/data.json"])
        for ex in data["exercises"]:
            graded = EXERCISES[ex["name"]]
            random_seeds = {
                c.seed for c in graded.cases if c.values is None and not c.params
            }
            carried = {c["seed"] for c in ex["practice"] + ex["visible"]}
            assert not random_seeds & carried, (name, ex["name"])
            # Counting cases: the graded channel counts are not carried either.
            graded_sizes = {tuple(sorted(c.params)) for c in graded.cases if c.params}
            carried_sizes = {
                tuple(sorted(Case.from_data(c).params))
                for c in ex["practice"]
                if "example" not in c["tags"]
            }
            assert not graded_sizes & carried_sizes, (name, ex["name"])
    secret = ROOT / ".autograder-secret"
    if secret.exists():  # made by the first grading run here, never committed
        value = secret.read_text().strip()
        assert all(value not in text for text in student_files().values())
    assert PRACTICE_SALT == "practice"  # public: the practice inputs are no secret


def test_every_rubric_line_the_kit_carries_is_in_its_released_notebook():
    for ex in EXERCISES.values():
        text = (RELEASE_DIR / ex.notebook).read_text()
        for item in ex.rubric:
            assert json.dumps(item.description)[1:-1] in text, (
                ex.name,
                item.description,
            )


def test_the_source_notebooks_carry_the_kit_autograder_kit_builds():
    assert kit_problems() == []


def test_the_kit_judges_every_practice_and_visible_case_as_the_grader_does():
    """Same verdicts and wording for the reference answers and for known wrong ones."""

    def flipped(X, K):
        return reference.compose_kernels(X, K.flip(-1, -2))

    for name, ex in EXERCISES.items():
        kit_ex = KIT.exercises[name]
        fn = getattr(reference, name)
        for case in (*KIT.practice_cases[name], *kit_ex.visible):
            if "invalid" in case.tags and not case.params:
                continue
            for answer in (fn, flipped) if ex.kind == "compose" else (fn,):
                if case.params:
                    got = Returned.from_count(answer, dict(case.params))
                else:
                    got = Returned.from_call(answer, *case.inputs())
                assert judge(kit_ex, case, got) == judge(ex, case, got), (name, case)


# The visible tests, on the mistakes the issue names; what the student reads in the cell.


def visible_failure(name: str, fn, sources: list[str] | None = None) -> str:
    with pytest.raises(AssertionError) as info:
        KIT.visible_test(name, fn, sources=sources)
    return str(info.value)


def test_a_flipped_kernel_fails_the_visible_test_with_the_diagnosis_and_both_values():
    def corr2d_multi_in(X, K):
        return reference.corr2d_multi_in(X, K.flip(-1, -2))

    message = visible_failure("corr2d_multi_in", corr2d_multi_in)
    assert "FAIL corr2d_multi_in on the worked example" in message
    assert "It looks like the kernel is flipped" in message
    # The worked example side by side: expected 56, 72, 104, 120; the flipped kernel's result.
    assert "expected" in message and "got" in message
    assert re.search(r"\[56, 72\]\s+\[\d+, \d+\]", message), message


def test_an_input_changed_in_place_is_a_line_of_its_own_beside_wrong_values():
    def corr2d_multi_in(X, K):
        Y = reference.corr2d_multi_in(X, K.flip(-1, -2))
        X.zero_()
        return Y

    lines = visible_failure("corr2d_multi_in", corr2d_multi_in).splitlines()
    flipped = [ln for ln in lines if "It looks like the kernel is flipped" in ln]
    changed = [ln for ln in lines if "changed its input X or K in place" in ln]
    assert flipped and changed and not set(flipped) & set(changed)
    assert all(ln.startswith("FAIL corr2d_multi_in on ") for ln in changed)


def test_a_count_returned_as_a_float_is_told_its_value_and_the_fix():
    def conv2d_multiplications(c_i, c_o, h, w, k_h, k_w, padding=0, stride=1):
        return float(
            reference.conv2d_multiplications(c_i, c_o, h, w, k_h, k_w, padding, stride)
        )

    message = visible_failure("conv2d_multiplications", conv2d_multiplications)
    assert "(a float): return int(...)" in message
    assert (
        "FAIL conv2d_multiplications on the worked example: c_i=2, c_o=3, h=3"
        in message
    )


def test_channels_not_summed_fails_the_visible_test_with_the_diagnosis():
    def corr2d_multi_in(X, K):
        return torch.stack(
            [
                reference.corr2d_multi_in(x[None], k[None])
                for x, k in zip(X, K, strict=True)
            ]
        )

    message = visible_failure("corr2d_multi_in", corr2d_multi_in)
    assert "It looks like the channels were not summed" in message


def test_im2col_with_f_unfold_fails_the_visible_test_under_the_course_rules():
    source = """
def corr2d_multi_in_out_matmul(X, K):
    c_o, c_i, k_h, k_w = K.shape
    patches = F.unfold(X[None], (k_h, k_w))[0]
    h_out, w_out = X.shape[1] - k_h + 1, X.shape[2] - k_w + 1
    return (K.reshape(c_o, -1) @ patches).reshape(c_o, h_out, w_out)
"""
    namespace = {"F": F}
    exec(source, namespace)
    message = visible_failure(
        "corr2d_multi_in_out_matmul", namespace["corr2d_multi_in_out_matmul"], [source]
    )
    assert (
        "ok   corr2d_multi_in_out_matmul on the worked example" in message
    )  # right values
    assert (
        "FAIL corr2d_multi_in_out_matmul calls one of PyTorch's convolutions or F.unfold"
        in (message)
    )


def test_padding_on_one_side_fails_the_visible_test_with_the_diagnosis():
    def conv2d_additions(c_i, c_o, h, w, k_h, k_w, padding=0, stride=1):
        h_out = (h + padding - k_h) // stride + 1
        w_out = (w + padding - k_w) // stride + 1
        return c_o * h_out * w_out * (c_i * k_h * k_w - 1)

    message = visible_failure("conv2d_additions", conv2d_additions)
    assert "padding was added on one side only" in message


def test_a_misspelled_function_is_named_with_its_closest_definition():
    """In the notebook the kit looks the function up by name, as the grader does; the names the
    notebook itself defines (the book's version) are no suggestion."""
    namespace = {
        "corr2d_muli_in": lambda X, K: X,
        "book_corr2d_multi_in": lambda X, K: X,
        "torch": torch,
    }
    assert KIT.missing("corr2d_multi_in", namespace) == (
        "corr2d_multi_in: no function named `corr2d_multi_in` was defined; did you mean "
        "`corr2d_muli_in`? The grader calls `corr2d_multi_in`: keep the name of the stub."
    )


def test_a_right_answer_passes_every_visible_test(capsys):
    for name in EXERCISES:
        KIT.visible_test(name, getattr(reference, name))
    out = capsys.readouterr().out
    assert out.count("Visible tests pass.") == len(EXERCISES)
    assert "FAIL" not in out


# A function not written yet (the stub as released): one line from each check, never a stop in
# the student's Run All; a failure where nbgrader grades or validates the notebook.


def stub(name: str):
    """The released stub of ``name`` as a function: it raises NotImplementedError (after the
    shape check, where the stub has one)."""
    namespace: dict = {"torch": torch}
    exec(stub_source(name), namespace)
    return namespace[name]


def stub_source(name: str) -> str:
    nb = notebooks.read(RELEASE_DIR / EXERCISES[name].notebook)
    cell = cell_by_grade_id(nb, name)
    assert "raise NotImplementedError()" in cell.source
    return cell.source


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_an_unwritten_functions_visible_test_says_so_in_one_line_and_lets_run_all_go_on(
    name, capsys, monkeypatch
):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    KIT.visible_test(name, stub(name))  # does not raise
    lines = capsys.readouterr().out.splitlines()
    assert lines == [visible_not_written(name)]


@pytest.mark.parametrize("execution", ["autograde", "validate"])
def test_under_nbgrader_an_unwritten_functions_visible_test_fails(
    execution, monkeypatch
):
    """nbgrader scores a test cell by whether it raises, and sets NBGRADER_EXECUTION while it
    runs a notebook to grade (``autograde``) or to check it (``validate``)."""
    monkeypatch.setenv("NBGRADER_EXECUTION", execution)
    for name in EXERCISES:
        message = visible_failure(name, stub(name))
        assert message == visible_not_written(name)


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_an_unwritten_functions_practice_check_is_one_line(name, capsys):
    KIT.practice(name, stub(name), sources=[stub_source(name)])
    points = sum(item.points for item in EXERCISES[name].rubric)
    assert capsys.readouterr().out.splitlines() == [
        f"{name}: {NOT_WRITTEN}: 0 of {points:g} points on practice inputs."
    ]


def test_written_says_in_one_line_that_a_stub_is_not_and_runs_nothing_else(capsys):
    assert not KIT.written("corr2d_multi_in", stub("corr2d_multi_in"))
    assert capsys.readouterr().out.splitlines() == [
        f"corr2d_multi_in: {NOT_WRITTEN}; this cell runs it once it is written."
    ]


def test_a_written_function_is_written_even_when_wrong_and_its_prints_are_not_doubled(
    capsys,
):
    def corr2d_multi_in(X, K):
        print("debugging")
        return reference.corr2d_multi_in(X, K.flip(-1, -2))

    assert KIT.written("corr2d_multi_in", corr2d_multi_in)
    assert capsys.readouterr().out == ""  # the cell's own call prints, not the question


def test_a_function_written_for_some_inputs_only_is_judged_and_its_visible_test_raises(
    monkeypatch,
):
    """Not written means raising NotImplementedError on every input that should compute:
    a function that computes anything is judged as usual, and fails where it is missing."""
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)

    def conv2d_multiplications(c_i, c_o, h, w, k_h, k_w, padding=0, stride=1):
        if padding:
            raise NotImplementedError("padding comes later")
        return reference.conv2d_multiplications(c_i, c_o, h, w, k_h, k_w)

    message = visible_failure("conv2d_multiplications", conv2d_multiplications)
    assert "ok   conv2d_multiplications on the worked example" in message
    assert "FAIL conv2d_multiplications on " in message
    assert NOT_WRITTEN in message
    assert KIT.written("conv2d_multiplications", conv2d_multiplications)


# The practice check's matrix-product tip (7.4.3): for answers without one, never for those
# that use any matrix product, however written.
WITH_A_PRODUCT = {
    "@": "return (K.reshape(c_o, c_i) @ X.reshape(c_i, h * w)).reshape(c_o, h, w)",
    "@=": "W = K.reshape(c_o, c_i)\n    W @= X.reshape(c_i, h * w)\n"
    "    return W.reshape(c_o, h, w)",
    "torch.matmul": "return torch.matmul(K.reshape(c_o, c_i), X.reshape(c_i, -1))"
    ".reshape(c_o, h, w)",
    "torch.mm": "return torch.mm(K.reshape(c_o, c_i), X.reshape(c_i, -1)).reshape(c_o, h, w)",
    "Tensor.mm": "return K.reshape(c_o, c_i).mm(X.reshape(c_i, -1)).reshape(c_o, h, w)",
    "torch.einsum": 'return torch.einsum("oc,chw->ohw", K[:, :, 0, 0], X)',
    "from torch import einsum": "from torch import einsum\n\n"
    '    return einsum("oc,chw->ohw", K[:, :, 0, 0], X)',
    "torch.tensordot": "return torch.tensordot(K[:, :, 0, 0], X, dims=1)",
    "F.linear": "return torch.nn.functional.linear(X.permute(1, 2, 0), K[:, :, 0, 0])"
    ".permute(2, 0, 1)",
    "a helper with @": "return _product(K.reshape(c_o, c_i), X.reshape(c_i, -1))"
    ".reshape(c_o, h, w)",
}
WITHOUT_A_PRODUCT = {
    "a loop over channels": "Y = X.new_zeros((c_o, h, w))\n"
    "    for o in range(c_o):\n"
    "        for c in range(c_i):\n"
    "            Y[o] += K[o, c, 0, 0] * X[c]\n"
    "    return Y",
    "broadcasting": "return (K[:, :, 0, 0, None, None] * X[None]).sum(dim=1)",
    "the general function": "return corr2d_multi_in_out(X, K)",
    # A comment or a docstring that mentions @ or matmul is not a product.
    "a comment": "# no matmul here, and no @ either\n"
    "    return (K[:, :, 0, 0, None, None] * X[None]).sum(dim=1)",
}
TIP = "Tip: this section's point is one matrix product"
ONE_BY_ONE_TOTAL = rubric_points("corr2d_multi_in_out_1x1")


def one_by_one(body: str) -> tuple[str, object]:
    source = (
        "def _product(A, B):\n    return A @ B\n\n\n"
        "def corr2d_multi_in_out_1x1(X, K):\n"
        "    c_i, h, w = X.shape\n"
        "    c_o = K.shape[0]\n"
        f"    {body}\n"
    )
    namespace = {"torch": torch, "corr2d_multi_in_out": reference.corr2d_multi_in_out}
    exec(source, namespace)
    return source, namespace["corr2d_multi_in_out_1x1"]


@pytest.mark.parametrize("style", sorted(WITH_A_PRODUCT))
def test_no_matrix_product_tip_for_an_answer_with_a_product(style, capsys):
    source, fn = one_by_one(WITH_A_PRODUCT[style])
    KIT.practice("corr2d_multi_in_out_1x1", fn, sources=[source])
    out = capsys.readouterr().out
    assert (
        f"{ONE_BY_ONE_TOTAL:g} of {ONE_BY_ONE_TOTAL:g} points on practice inputs" in out
    )
    assert TIP not in out


@pytest.mark.parametrize("style", sorted(WITHOUT_A_PRODUCT))
def test_the_matrix_product_tip_for_an_answer_without_one(style, capsys):
    source, fn = one_by_one(WITHOUT_A_PRODUCT[style])
    KIT.practice("corr2d_multi_in_out_1x1", fn, sources=[source])
    out = capsys.readouterr().out
    assert (
        f"{ONE_BY_ONE_TOTAL:g} of {ONE_BY_ONE_TOTAL:g} points on practice inputs" in out
    )
    assert out.splitlines()[-1].startswith(TIP)


def test_the_tip_is_the_one_exercise_s_and_under_a_written_answer_only(capsys):
    assert [n for n, ex in EXERCISES.items() if ex.product_tip] == [
        "corr2d_multi_in_out_1x1"
    ]
    name = "corr2d_multi_in_out_1x1"
    KIT.practice(name, stub(name), sources=[stub_source(name)])
    assert TIP not in capsys.readouterr().out


def test_the_kit_loads_from_its_own_zip_without_the_autograder_package(tmp_path: Path):
    """As a notebook cell loads it: from the zip alone, in a process that cannot import the
    instructor's package."""
    import subprocess
    import sys

    nb = notebooks.read(RELEASE_DIR / "01-multiple-input-channels.ipynb")
    cell = cell_by_grade_id(nb, KIT_CELL)
    script = (
        "import sys\nsys.modules['autograder'] = None\n"
        + cell.source
        + "\nimport channels_kit\nprint(sorted(channels_kit._loaded().exercises))"
    )
    run = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
        check=False, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == str(sorted(EXERCISES))
    assert isinstance(KIT, Kit)


def test_a_new_notebook_gets_the_first_cell_under_its_title():
    """``make release`` on a notebook a maintainer just added: the install cell goes first."""
    import nbformat

    from autograder.course_build.kit_build import _settle, packages_cell

    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell("# 7.4.6"),
            nbformat.v4.new_code_cell("x = 1"),
        ]
    )
    assert _settle(nb, PACKAGES_CELL, packages_cell(), None)
    assert [grade_id(c) for c in nb.cells] == ["", PACKAGES_CELL, ""]
    assert nb.cells[1].source == packages_cell()
    assert not _settle(nb, PACKAGES_CELL, packages_cell(), None)  # written once


def test_seeded_inputs_are_eighths_whose_convolutions_are_exact():
    # What makes the stored answers the same bytes on any machine: every term and every partial
    # sum of a float64 convolution of these inputs is exact, so the order of additions is moot.
    for ex in EXERCISES.values():
        for case in ex.cases + ex.visible:
            if case.params or case.values is not None:
                continue
            X, K = case.inputs()
            for t in (X, K):
                scaled = t.double() * 8
                assert torch.equal(scaled, scaled.round()) and scaled.abs().max() <= 16


KIT_BYTES = """
import hashlib, os, sys, torch
torch.set_num_threads(int(sys.argv[1]))
torch.backends.mkldnn.enabled = sys.argv[2] == "on"
from autograder.course_build.kit_build import (
    _conv_policy, _source_notebooks, kit_data, kit_files, kit_zip,
)
from autograder.paths import SOURCE_DIR
zipped = kit_zip(kit_files(kit_data(_source_notebooks(SOURCE_DIR), _conv_policy())))
print(torch.backends.cpu.get_cpu_capability(), hashlib.sha256(zipped).hexdigest())
"""


@pytest.mark.slow
def test_the_kit_is_the_same_bytes_whatever_the_threads_onednn_or_cpu_path():
    import subprocess
    import sys

    runs = {}
    for threads, onednn, capability in [
        ("1", "on", "default"),
        ("2", "off", "default"),
        ("2", "on", "avx2"),
        ("1", "off", "avx2"),
    ]:
        env = {**os.environ, "ATEN_CPU_CAPABILITY": capability}
        out = subprocess.run(
            [sys.executable, "-c", KIT_BYTES, threads, onednn],
            capture_output=True, text=True, check=True, env=env, cwd=ROOT, timeout=300,
        ).stdout.split()  # fmt: skip
        runs[(threads, onednn, out[0])] = out[1]
    assert {cap for _, _, cap in runs} >= {
        "DEFAULT"
    }  # the generic path ran at least once
    assert len(set(runs.values())) == 1, runs


@pytest.mark.slow
def test_the_kit_cells_unpacked_copies_are_removed_when_the_kernel_stops(tmp_path):
    """A student runs the kit cell again and again; each run unpacks the kit into a folder of
    its own under the temporary directory (a fixed path there could be planted by another user
    of a shared machine), and none of them may outlive the kernel."""
    from jupyter_client.manager import start_new_kernel

    cell = cell_by_grade_id(notebooks.read(RELEASE_DIR / GRADED_NOTEBOOKS[0]), KIT_CELL)
    km, kc = start_new_kernel(
        kernel_name="python3",
        env={**os.environ, "TMPDIR": str(tmp_path)},
        cwd=str(tmp_path),
    )
    try:
        for _ in range(3):
            reply = kc.execute_interactive(cell.source, timeout=120)
            assert reply["content"]["status"] == "ok", reply["content"]
        assert len(list(tmp_path.glob("channels_kit-*/channels_kit.zip"))) == 3
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)
    assert list(tmp_path.glob("channels_kit-*")) == []
