"""The adversarial corpus: submissions as students (and cheaters) write them, and their grades.

Each entry names the answers typed into the release (bodies go below the given shape check, in
place of the stub's ``raise NotImplementedError()``; other functions keep the instructor's
solution) and the expected (score, status) of the test cells that differ from full marks.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from itertools import cycle, islice
from pathlib import Path

import nbformat
from conftest import (
    GRADED,
    NOTEBOOK_OF,
    cell_by_grade_id,
    rubric_points,
    solution_source,
    stub_answered,
    write_submission,
    written_answer_ids,
)

from autograder import EXERCISES, notebooks
from autograder.paths import SOURCE_DIR

NOTEBOOK = "01-multiple-input-channels.ipynb"  # its source holds the hidden tests
MULTI_IN, MULTI_OUT, ONE_BY_ONE = (
    "corr2d_multi_in",
    "corr2d_multi_in_out",
    "corr2d_multi_in_out_1x1",
)
MATMUL, MULTS, ADDS, MEMORY, COMPOSE = (
    "corr2d_multi_in_out_matmul",
    "conv2d_multiplications",
    "conv2d_additions",
    "conv2d_memory",
    "compose_kernels",
)


@dataclass(frozen=True)
class Entry:
    answers: dict[str, str]  # grade_id -> body typed in place of the stub
    expected: dict[str, tuple[float, str]] = field(
        default_factory=dict
    )  # test cell -> (score, status)
    extra_cells: tuple[str, ...] = ()  # code cells the student added before the answer
    # grade_id -> the whole answer cell, for mistakes a body cannot make (a renamed function)
    whole_cells: dict[str, str] = field(default_factory=dict)


def lost(function: str, example: tuple[float, str], hidden: tuple[float, str]) -> dict:
    return {f"test_{function}_example": example, f"test_{function}_hidden": hidden}


ZERO = (0.0, "failed")


def forge(payload: bytes | str) -> str:
    """An answer that writes ``payload`` (bytes, or a Python expression that builds them in the
    child, so that the notebook stays small) on every pipe it holds, its result pipe among
    them, and leaves before the harness can write the real reply."""
    return (
        "\n    import os\n"
        f"    payload = {payload if isinstance(payload, str) else repr(payload)}\n"
        "    for fd in map(int, os.listdir('/proc/self/fd')):\n"
        "        if fd > 2:\n"
        "            try:\n"
        "                os.write(fd, payload)\n"
        "            except OSError:\n"
        "                pass\n"
        "    os._exit(0)\n"
    )


CORPUS: dict[str, Entry] = {
    # Honest styles: full marks.
    "honest_loops": Entry({}),
    "honest_einsum_unfold": Entry(
        {
            MULTI_IN: """
    _, k_h, k_w = K.shape
    windows = X.unfold(1, k_h, 1).unfold(2, k_w, 1)  # (c_i, h_out, w_out, k_h, k_w)
    return torch.einsum("chwij,cij->hw", windows, K)"""
        }
    ),
    "honest_1x1_via_general": Entry(
        {ONE_BY_ONE: "\n    return corr2d_multi_in_out(X, K)"}
    ),
    "honest_book_d2l": Entry(
        {MULTI_IN: "\n    return sum(d2l.corr2d(x, k) for x, k in zip(X, K))"}
    ),
    # Real styles, as public code writes these functions (issue 27): every one keeps full
    # marks on both grading paths. CS231n's conv_forward_naive names the number of filters F,
    # which shadows the notebook's ``import torch.nn.functional as F`` inside the function.
    "honest_real_cs231n_naive": Entry(
        {
            MULTI_IN: """
    C, H, W = X.shape
    _, HH, WW = K.shape
    H_out, W_out = H - HH + 1, W - WW + 1
    out = torch.zeros((H_out, W_out), dtype=X.dtype)
    for i in range(H_out):
        for j in range(W_out):
            out[i, j] = torch.sum(X[:, i : i + HH, j : j + WW] * K)
    return out""",
            MULTI_OUT: """
    F, C, HH, WW = K.shape
    _, H, W = X.shape
    H_out, W_out = H - HH + 1, W - WW + 1
    out = X.new_zeros((F, H_out, W_out))
    for f in range(F):
        for i in range(H_out):
            for j in range(W_out):
                out[f, i, j] = torch.sum(X[:, i : i + HH, j : j + WW] * K[f])
    return out""",
            # A numpy round trip: np.zeros is float64, so float32 input comes back as
            # float64, judged at float32's precision with a note.
            ONE_BY_ONE: """
    import numpy as np

    C, H, W = X.shape
    F = K.shape[0]
    x = X.detach().cpu().numpy().reshape(C, H * W)
    w = K.detach().cpu().numpy().reshape(F, C)
    out = np.zeros((F, H * W))
    for f in range(F):
        out[f] = w[f] @ x
    return torch.from_numpy(out).reshape(F, H, W)""",
            MULTS: """
    H_out = 1 + (h + 2 * padding - k_h) // stride
    W_out = 1 + (w + 2 * padding - k_w) // stride
    if H_out <= 0 or W_out <= 0:
        raise ValueError("the kernel does not fit the padded input")
    F, C, HH, WW = c_o, c_i, k_h, k_w
    return F * H_out * W_out * C * HH * WW""",
        }
    ),
    # im2col with as_strided in a helper named after what it does, counts by a student's
    # script (shapes unpacked from tuples, a loop over layers' sizes), and a kernel-merging
    # answer that names its filter count F and calls conv2d, which that exercise allows.
    "honest_real_im2col_scripts": Entry(
        {
            ADDS: """
    (H_out, W_out) = conv2d_output_size(h, w, k_h, k_w, padding, stride)
    per_output = c_i * k_h * k_w
    total = 0
    for F in range(c_o):
        total += H_out * W_out * (per_output - 1)
    return total""",
            MEMORY: """
    shapes = {
        "input": (c_i, h, w),
        "kernel": (c_o, c_i, k_h, k_w),
        "output": (c_o, *conv2d_output_size(h, w, k_h, k_w, padding, stride)),
    }
    count = 0
    for name, shape in shapes.items():
        size = 1
        for F in shape:
            size *= F
        count += size
    return count * bytes_per_value""",
            COMPOSE: """
    import torch.nn.functional as nnf

    F, C_m, HH, WW = K2.shape
    padded = nnf.pad(K1.transpose(0, 1), (WW - 1, WW - 1, HH - 1, HH - 1))
    return nnf.conv2d(padded, K2.flip(-1, -2)).transpose(0, 1)""",
        },
        whole_cells={
            MATMUL: """def sliding_windows(X, k_h, k_w):
    \"\"\"Every k_h x k_w window of X (c_i, h, w) as a view: (c_i, h_out, w_out, k_h, k_w).\"\"\"
    C, H, W = X.shape
    s_c, s_h, s_w = X.stride()
    return X.as_strided(
        (C, H - k_h + 1, W - k_w + 1, k_h, k_w), (s_c, s_h, s_w, s_h, s_w)
    )


def corr2d_multi_in_out_matmul(X, K):
    F, C, HH, WW = K.shape
    windows = sliding_windows(X.contiguous(), HH, WW)
    _, H_out, W_out = windows.shape[:3]
    cols = windows.permute(0, 3, 4, 1, 2).reshape(C * HH * WW, H_out * W_out)
    return (K.reshape(F, -1) @ cols).reshape(F, H_out, W_out)
""",
        },
    ),
    # Common mistakes.
    "mistake_not_summed": Entry(
        {
            MULTI_IN: "\n    return torch.stack([d2l.corr2d(x, k) for x, k in zip(X, K)])"
        },
        lost(MULTI_IN, ZERO, ZERO),
    ),
    "mistake_flipped_kernel": Entry(
        {
            MULTI_IN: "\n    return sum(d2l.corr2d(x, k.flip(0, 1)) for x, k in zip(X, K))"
        },
        lost(MULTI_IN, ZERO, ZERO),
    ),
    "mistake_wrong_axis": Entry(
        {
            MULTI_OUT: "\n    return torch.stack([corr2d_multi_in(X, k) for k in K], dim=-1)"
        },
        lost(MULTI_OUT, ZERO, ZERO),
    ),
    "mistake_transposed_1x1": Entry(
        {
            ONE_BY_ONE: """
    c_i, h, w = X.shape
    return (K.reshape(c_i, -1).T @ X.reshape(c_i, h * w)).reshape(-1, h, w)"""
        },
        # Right only where c_i or c_o is 1: it keeps the non-square images (one channel in or
        # out) and "inputs left unchanged".
        lost(
            ONE_BY_ONE,
            ZERO,
            (rubric_points(ONE_BY_ONE, "non-square", "untouched"), "failed"),
        ),
    ),
    "mistake_squeeze_1x1": Entry(
        {
            ONE_BY_ONE: """
    c_i, h, w = X.shape
    return (K.squeeze() @ X.reshape(c_i, h * w)).reshape(-1, h, w)"""
        },
        # squeeze() also drops an axis of size 1 of c_i or c_o: those cases fail.
        lost(
            ONE_BY_ONE,
            (rubric_points(ONE_BY_ONE, "example"), "passed"),
            (rubric_points(ONE_BY_ONE, "random", "untouched"), "failed"),
        ),
    ),
    "mistake_hard_coded": Entry(
        {MULTI_IN: "\n    return torch.tensor([[56.0, 72.0], [104.0, 120.0]])"},
        lost(MULTI_IN, (0.0, "hard-coded"), ZERO),
    ),
    "mistake_modifies_input": Entry(
        {
            MULTI_IN: """
    X -= 0.0
    Y = sum(d2l.corr2d(x, k) for x, k in zip(X, K))
    X.zero_()
    return Y"""
        },
        lost(
            MULTI_IN,
            (rubric_points(MULTI_IN, "example"), "passed"),
            (rubric_points(MULTI_IN, "random", "non-square", "channels"), "failed"),
        ),
    ),
    # The cell does not compile, so the function is never defined: a wrong answer, not a crash.
    "mistake_syntax_error": Entry(
        {MULTI_IN: "\n    return sum(d2l.corr2d(x, k) for x, k in zip(X, K)"},
        lost(MULTI_IN, (0.0, "syntax-error"), (0.0, "syntax-error")),
    ),
    # 4 of 27 implementations collected from public repositories misspell a graded name.
    "mistake_misspelled_name": Entry(
        {},
        lost(MULTI_IN, (0.0, "missing-function"), (0.0, "missing-function")),
        whole_cells={
            MULTI_IN: solution_source(MULTI_IN).replace(
                "def corr2d_multi_in(", "def corr2d_muli_in("
            )
        },
    ),
    # 7.4.2's corr2d_multi_in is the course's (X, K) version, whatever the student's 7.4.1 did.
    "mistake_stand_in_arguments": Entry(
        {
            MULTI_OUT: "\n    return torch.stack([corr2d_multi_in(X, k, 1, 0) for k in K])"
        },
        lost(MULTI_OUT, ZERO, ZERO),
    ),
    "mistake_numpy_result": Entry(
        {MULTI_IN: "\n    return sum(d2l.corr2d(x, k) for x, k in zip(X, K)).numpy()"},
        lost(MULTI_IN, ZERO, ZERO),
    ),
    "policy_builtin_conv": Entry(
        {MULTI_IN: "\n    return F.conv2d(X[None], K[None])[0, 0]"},
        lost(MULTI_IN, (0.0, "builtin-convolution"), (0.0, "builtin-convolution")),
    ),
    # The exercises chapter (7.4.5).
    "honest_matmul_tensor_windows": Entry(
        {
            MATMUL: """
    c_o, c_i, k_h, k_w = K.shape
    windows = X.unfold(1, k_h, 1).unfold(2, k_w, 1)  # (c_i, h_out, w_out, k_h, k_w)
    h_out, w_out = windows.shape[1:3]
    P = windows.permute(0, 3, 4, 1, 2).reshape(c_i * k_h * k_w, h_out * w_out)
    return (K.reshape(c_o, -1) @ P).reshape(c_o, h_out, w_out)"""
        }
    ),
    "policy_library_im2col": Entry(
        {
            MATMUL: """
    c_o, c_i, k_h, k_w = K.shape
    P = F.unfold(X[None], (k_h, k_w))[0]
    return (K.reshape(c_o, -1) @ P).reshape(c_o, X.shape[1] - k_h + 1, -1)"""
        },
        lost(MATMUL, (0.0, "builtin-convolution"), (0.0, "builtin-convolution")),
    ),
    # The policy evaded with no name that says "conv": each gave full marks and a clean
    # reading once; PyTorch's dispatcher now refuses the operator, whatever reached it.
    "policy_evasion_through_the_harness": Entry(
        # __main__ was the grading harness (its stand-ins called conv2d); it is now the
        # student's own namespace, as in a notebook's kernel.
        {
            MULTI_IN: "\n    import __main__\n"
            "    return __main__.STAND_INS['corr2d_multi_in'](X, K)"
        },
        lost(MULTI_IN, ZERO, ZERO),
    ),
    "policy_evasion_dead_store": Entry(
        # A statement that binds no name stores conv2d in a default argument.
        {MULTI_IN: "\n    return keep(None)[0](X[None], K[None])[0, 0]"},
        lost(MULTI_IN, (0.0, "builtin-convolution"), (0.0, "builtin-convolution")),
        extra_cells=(
            "def keep(f, box=[]):\n    box.append(f)\n    return box\nkeep(F.conv2d)",
        ),
    ),
    "policy_evasion_model_layer": Entry(
        # The first layer of d2l's LeNet is a LazyConv2d, named nowhere in the answer.
        {
            MULTI_IN: """
    layer = d2l.LeNet().net[0]
    layer.padding = (0, 0)
    layer.weight = nn.Parameter(K[None])
    layer.bias = None
    return layer(X[None]).detach()[0, 0]"""
        },
        lost(MULTI_IN, (0.0, "builtin-convolution"), (0.0, "builtin-convolution")),
    ),
    "policy_evasion_im2col_dead_store": Entry(
        {},
        lost(MATMUL, (0.0, "builtin-convolution"), (0.0, "builtin-convolution")),
        whole_cells={
            MATMUL: """def keep(f, box=[]):
    box.append(f)
    return box


keep(F.unfold)


def corr2d_multi_in_out_matmul(X, K):
    windows = keep(None)[0](X.unsqueeze(0), K.shape[2:]).squeeze(0)
    rows, cols = (n - k + 1 for n, k in zip(X.shape[1:], K.shape[2:]))
    return torch.mm(K.flatten(1), windows).view(len(K), rows, cols)
"""
        },
    ),
    "mistake_matmul_patch_order": Entry(
        {
            MATMUL: """
    c_o, c_i, k_h, k_w = K.shape
    h_out, w_out = X.shape[1] - k_h + 1, X.shape[2] - k_w + 1
    # Column-major offsets: (channel, kernel column, kernel row), unlike K.reshape.
    slices = [X[:, a : a + h_out, b : b + w_out] for b in range(k_w) for a in range(k_h)]
    P = torch.stack(slices, dim=1).reshape(c_i * k_h * k_w, h_out * w_out)
    return (K.reshape(c_o, -1) @ P).reshape(c_o, h_out, w_out)"""
        },
        # Right only where k_h or k_w is 1, so it keeps "inputs left unchanged".
        lost(MATMUL, ZERO, (rubric_points(MATMUL, "untouched"), "failed")),
    ),
    "mistake_additions_one_per_product": Entry(
        {
            ADDS: """
    h_out, w_out = conv2d_output_size(h, w, k_h, k_w, padding, stride)
    return c_o * h_out * w_out * c_i * k_h * k_w"""
        },
        lost(ADDS, ZERO, ZERO),
    ),
    "mistake_count_as_float": Entry(
        {
            MULTS: """
    h_out = (h + 2 * padding - k_h) / stride + 1
    w_out = (w + 2 * padding - k_w) / stride + 1
    return c_o * h_out * w_out * c_i * k_h * k_w"""
        },
        lost(MULTS, ZERO, ZERO),
    ),
    # A NumPy integer: the right number, of the wrong type (the sandbox reports its value).
    "mistake_count_numpy_int": Entry(
        {
            MULTS: """
    import numpy as np

    h_out, w_out = conv2d_output_size(h, w, k_h, k_w, padding, stride)
    return np.int64(c_o * h_out * w_out) * np.int64(c_i * k_h * k_w)"""
        },
        lost(MULTS, ZERO, ZERO),
    ),
    "mistake_count_hard_coded": Entry(
        {
            MULTS: "\n    conv2d_output_size(h, w, k_h, k_w, padding, stride)\n    return 96"
        },
        lost(MULTS, (0.0, "hard-coded"), ZERO),
    ),
    # Left as released: the stub's NotImplementedError, "not written yet" in every check.
    "mistake_not_written": Entry(
        {COMPOSE: "\n    # YOUR CODE HERE\n    raise NotImplementedError()"},
        lost(COMPOSE, ZERO, ZERO),
    ),
    "mistake_compose_cross_correlated": Entry(
        {
            COMPOSE: """
    b_h, b_w = K2.shape[2:]
    padded = F.pad(K1.transpose(0, 1), (b_w - 1, b_w - 1, b_h - 1, b_h - 1))
    return F.conv2d(padded, K2).transpose(0, 1)"""
        },
        lost(COMPOSE, ZERO, ZERO),
    ),
    # Cheats.
    "cheat_patched_allclose": Entry(
        {
            MULTI_IN: "\n    _, k_h, k_w = K.shape"
            "\n    return torch.zeros(X.shape[1] - k_h + 1, X.shape[2] - k_w + 1)"
        },
        lost(MULTI_IN, ZERO, ZERO),
        extra_cells=(
            "import numpy, torch\nnumpy.allclose = torch.allclose = lambda *a, **k: True\n"
            "torch.testing.assert_close = lambda *a, **k: None",
        ),
    ),
    "cheat_tensor_subclass": Entry(
        {
            MULTI_IN: """
    class Agreeable(torch.Tensor):
        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):
            return True
    return torch.zeros(2, 2).as_subclass(Agreeable)"""
        },
        lost(MULTI_IN, ZERO, ZERO),
    ),
    "cheat_reads_hidden_tests": Entry(
        {MULTI_IN: "\n    return SOURCE"},
        lost(MULTI_IN, ZERO, ZERO),
        extra_cells=(f"SOURCE = open({str(SOURCE_DIR / NOTEBOOK)!r}).read()",),
    ),
    "cheat_kills_the_grader": Entry(
        {
            MULTI_IN: "\n    import os, signal\n    os.kill(os.getppid(), signal.SIGKILL)"
        },
        # The syscall filter refuses a signal to any other process: PermissionError, a wrong answer.
        lost(MULTI_IN, ZERO, ZERO),
    ),
    # Hostile to the machine.
    "hostile_endless_loop_ignoring_sigint": Entry(
        {
            MULTI_IN: """
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        pass"""
        },
        lost(MULTI_IN, (0.0, "timeout"), (0.0, "timeout")),
    ),
    "hostile_os_exit": Entry(
        {MULTI_IN: "\n    import os\n    os._exit(0)"},
        lost(MULTI_IN, (0.0, "crashed"), (0.0, "crashed")),
    ),
    "hostile_sys_exit": Entry(
        {MULTI_IN: "\n    import sys\n    sys.exit(1)"}, lost(MULTI_IN, ZERO, ZERO)
    ),
    "hostile_segfault": Entry(
        {MULTI_IN: "\n    import ctypes\n    return ctypes.string_at(0)"},
        lost(MULTI_IN, (0.0, "crashed"), (0.0, "crashed")),
    ),
    "hostile_memory_bomb": Entry(
        {MULTI_IN: "\n    return bytearray(10**11)"}, lost(MULTI_IN, ZERO, ZERO)
    ),
    "hostile_fork_bomb": Entry(
        {MULTI_IN: "\n    import os\n    while True:\n        os.fork()"},
        lost(MULTI_IN, ZERO, ZERO),
    ),
    "hostile_huge_print": Entry(
        {
            MULTI_IN: "\n    print('x' * 50_000_000)"
            "\n    return sum(d2l.corr2d(x, k) for x, k in zip(X, K))"
        }
    ),
}


def solved() -> dict[str, str]:
    """The instructor's answer cells for every graded function, and a written answer for each
    question (which waits for the instructor, whatever it says)."""
    written = {
        grade_id: "An answer, in the student's words."
        for grade_id in written_answer_ids()
    }
    return {name: solution_source(name) for name in GRADED} | written


def typed(entry: Entry) -> dict[str, str]:
    """The answer cells of an entry, as typed into the release; the instructor's elsewhere."""
    return (
        solved()
        | {name: stub_answered(name, body) for name, body in entry.answers.items()}
        | entry.whole_cells
    )


def write_generated(course: Path, n: int) -> None:
    """``n`` submissions for benchmarks: the honest styles and common mistakes, in turn."""
    styles = [
        entry
        for name, entry in CORPUS.items()
        if name.startswith(("honest", "mistake"))
    ]
    for i, entry in enumerate(islice(cycle(styles), n)):
        write_submission(course, f"student{i:04d}", typed(entry))


def write_entry(course: Path, student: str, name: str = "") -> Path:
    """Write corpus entry ``student`` as a submission (of student ``name``, if given), its
    added cells before its answer; the submission's folder."""
    entry = CORPUS[student]
    dest = write_submission(course, name or student, typed(entry))
    if entry.extra_cells:
        path = dest / NOTEBOOK_OF["corr2d_multi_in"]
        nb = notebooks.read(path)
        at = nb.cells.index(cell_by_grade_id(nb, "corr2d_multi_in"))
        for i, source in enumerate(entry.extra_cells):
            nb.cells.insert(
                at + i, nbformat.v4.new_code_cell(source, id=f"student-{i}")
            )
        notebooks.write(nb, path)
    return dest


def write_corpus(course: Path, broken: dict[str, tuple[bytes, str]]) -> None:
    """Write every corpus entry, the broken files and two damaged notebooks as submissions."""
    for student in CORPUS:
        write_entry(course, student)
    solved_answers = solved()
    for student, (content, _) in broken.items():
        dest = write_submission(course, student, solved_answers)
        (dest / NOTEBOOK_OF["corr2d_multi_in"]).write_bytes(content)
    deleted = write_submission(course, "broken_deleted_cell", solved_answers)
    nb = notebooks.read(deleted / NOTEBOOK_OF["corr2d_multi_in"])
    nb.cells = [c for c in nb.cells if c.get("id") != "corr2d-multi-in"]
    notebooks.write(nb, deleted / NOTEBOOK_OF["corr2d_multi_in"])
    renamed = write_submission(course, "broken_renamed", solved_answers)
    (renamed / NOTEBOOK_OF["corr2d_multi_in"]).rename(renamed / "my-copy.ipynb")


# Near-copies of real corpus answers, planted to test the similarity report.
# Each near-copy: (whose answer, grade_id, the copy's body typed in place of the stub).
NEAR_COPIES = {
    "copy_renamed": (
        "honest_matmul_tensor_windows",
        MATMUL,
        """
    n_out, n_in, kh, kw = K.shape
    patches = X.unfold(1, kh, 1).unfold(2, kw, 1)  # (c_i, h_out, w_out, k_h, k_w)
    rows, cols = patches.shape[1:3]
    columns = patches.permute(0, 3, 4, 1, 2).reshape(n_in * kh * kw, rows * cols)
    return (K.reshape(n_out, -1) @ columns).reshape(n_out, rows, cols)""",
    ),
    "copy_reordered": (  # the two lines normalise alike; see also the test of reordering
        "mistake_count_as_float",
        MULTS,
        """
    w_out = (w + 2 * padding - k_w) / stride + 1
    h_out = (h + 2 * padding - k_h) / stride + 1
    return c_o * h_out * w_out * c_i * k_h * k_w""",
    ),
    "copy_reformatted": (
        "mistake_transposed_1x1",
        ONE_BY_ONE,
        """
    # get the sizes first

    c_i, h, w = X.shape   # channels, height, width

    # multiply: (c_o, c_i) times (c_i, h*w)
    return (
        K.reshape(c_i, -1).T
        @ X.reshape(c_i, h * w)
    ).reshape(-1, h, w)  # back to an image""",
    ),
    "copy_literals": (
        "honest_einsum_unfold",
        MULTI_IN,
        """
    _, k_h, k_w = K.shape
    windows = X.unfold(1, k_h, 2).unfold(2, k_w, 3)
    return torch.einsum("cxyab,cab->xy", windows, K)""",
    ),
}
NEAR_COPIES_PAIRS = {
    tuple(sorted((copy, original))) for copy, (original, *_) in NEAR_COPIES.items()
}


NEAR_COPY_PAIRS = {
    tuple(sorted((copy, original))) for copy, (original, *_) in NEAR_COPIES.items()
}


def near_copy_answers(original: str, grade_id: str, body: str) -> dict[str, str]:
    """A near-copy's answer cells: the original student's, one of them replaced by ``body``."""
    return typed(CORPUS[original]) | {grade_id: stub_answered(grade_id, body)}


BROKEN_FILES = {  # student -> (contents of notebook 1, expected status of its cells)
    "broken_not_json": (b"def corr2d_multi_in(X, K): pass", "not-a-notebook"),
    "broken_empty": (b"", "not-a-notebook"),
    "broken_nbformat_3": (
        b'{"nbformat": 3, "nbformat_minor": 0, "worksheets": []}',
        "wrong-format",
    ),
}

# `make grade`: the corpus and the near-copies as sample submissions.
if __name__ == "__main__":
    write_corpus(Path(sys.argv[1]), BROKEN_FILES)
    for copy, planted in NEAR_COPIES.items():
        write_submission(Path(sys.argv[1]), copy, near_copy_answers(*planted))


# The grader's costliest reading (issue 23): sixteen modules under aliases, an ``or``-union of
# them all (so each name stands for sixteen paths), then long attribute chains through it, in
# cells the student adds to every notebook with a policy, under ``if False:`` so that nothing
# runs in the sandbox. Under every cap: each cell under 100,000 characters, the notebook's code
# under policy.MAX_SOURCE_CHARS, chains under policy.MAX_DEPTH deep. Read in the grader's own
# process it cost about 13 s of CPU and 100 MB per notebook (README, Benchmarks).
PATHOLOGICAL_MODULES = (
    "torch", "torch.nn", "torch.nn.functional", "torch.functional", "torch.nn.grad",
    "torch.nn.modules", "torch.linalg", "torch.fft", "torch.special", "torch.random",
    "torch.autograd", "torch.nn.init", "torch.nn.utils", "torch.optim", "torch.utils",
    "torch.utils.data",
)  # fmt: skip


def pathological_cells(
    chars: int = 160_000, attribute: int = 300, depth: int = 90
) -> list[str]:
    """Added cells of ``chars`` characters in all (a chain more at most), each under the
    per-cell cap."""
    head = "if False:\n"
    head += "".join(
        f"    import {module} as m{i}\n"
        for i, module in enumerate(PATHOLOGICAL_MODULES)
    )
    head += "    a = " + " or ".join(f"m{i}" for i in range(16)) + "\n"
    chain = "    v{} = a" + ("." + "q" * attribute) * depth + "\n"
    cells, cell, n = [], head, 0
    while sum(map(len, cells)) + len(cell) < chars:
        if len(cell) + len(chain) > 95_000:
            cells.append(cell)
            cell = head
        cell += chain.format(n)
        n += 1
    return [*cells, cell]


def add_cells(path: Path, grade_id: str, sources: list[str]) -> None:
    """Insert code cells the student added before the answer cell ``grade_id``."""
    nb = notebooks.read(path)
    at = nb.cells.index(cell_by_grade_id(nb, grade_id))
    for i, source in enumerate(sources):
        nb.cells.insert(at + i, nbformat.v4.new_code_cell(source, id=f"added-{i}"))
    notebooks.write(nb, path)


def write_pathological(course: Path, student: str) -> Path:
    """The instructor's answers, and the pathological cells in every notebook with a policy."""
    dest = write_submission(course, student, solved())
    for name, ex in EXERCISES.items():
        if ex.forbidden:
            add_cells(dest / NOTEBOOK_OF[name], name, pathological_cells())
    return dest


# Answers whose cells lost their identity (issue 27): the same notebooks as an editor that drops
# cell metadata, a merge, a reordering or a paste into a new notebook leaves them.
def stripped(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Every cell without its nbgrader metadata (and the flags nbgrader sets with it)."""
    for cell in nb.cells:
        for key in ("nbgrader", "deletable", "editable"):
            cell.metadata.pop(key, None)
    return nb


def merged(nb: nbformat.NotebookNode, graded: set[str]) -> nbformat.NotebookNode:
    """Each answer cell of ``graded`` merged with the code cells after it up to its visible
    test (the demo call and the test itself, as Jupyter's Merge Cells joins them once the
    markdown between is moved below; never with another answer), stripped."""
    cells, into = [], None
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if into is not None and cell.cell_type == "code" and grade_id not in graded:
            into.source += "\n\n" + cell.source
            if grade_id == f"test_{into.metadata.nbgrader['grade_id']}_example":
                into = None
            continue
        if grade_id in graded:
            into = cell
        elif cell.cell_type == "code":
            into = None
        cells.append(cell)
    nb.cells = cells
    return stripped(nb)


def reordered(nb: nbformat.NotebookNode, graded: set[str]) -> nbformat.NotebookNode:
    """The answer cells of ``graded`` moved to the end, after their tests, stripped."""
    answers = [
        c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") in graded
    ]
    nb.cells = [c for c in nb.cells if c not in answers] + answers
    return stripped(nb)


def pasted(nb: nbformat.NotebookNode, graded: set[str]) -> nbformat.NotebookNode:
    """A new notebook holding the student's imports and the answer cells of ``graded``."""
    answers = [
        c.source
        for c in nb.cells
        if c.metadata.get("nbgrader", {}).get("grade_id") in graded
    ]
    fresh = nbformat.v4.new_notebook()
    fresh.cells = [
        nbformat.v4.new_code_cell(source)
        for source in ["import torch\nimport torch.nn.functional as F", *answers]
    ]
    return fresh


LOST_IDENTITY = {
    "stripped": lambda nb, graded: stripped(nb),
    "merged": merged,
    "reordered": reordered,
    "pasted": pasted,
}


def write_lost_identity(course: Path, student: str, twin: str, how: str) -> None:
    """Corpus entry ``twin`` as submission ``student``, every notebook's cells changed
    ``how`` (a key of ``LOST_IDENTITY``)."""
    dest = write_entry(course, twin, student)
    graded = set(GRADED)
    for path in sorted(dest.glob("*.ipynb")):
        nb = notebooks.read(path)
        notebooks.write(LOST_IDENTITY[how](nb, graded), path)
