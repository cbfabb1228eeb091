"""The course policy, read from the student's source by the trusted side: an attacker's view.

Each evasion below is something a student could type to call torch's convolution (or the
library's im2col) without the grader seeing it; each must be ``forbidden`` when reading can settle
it, and ``needs-review`` (an instructor looks) when it cannot. Honest code, the book's included,
must stay ``clean``; the last tests grade through the sandbox, end to end.
"""

from __future__ import annotations

import functools
from pathlib import Path

import nbformat
import pytest
import torch
import torch.nn.functional as F
from conftest import (
    NOTEBOOK_OF,
    cell_by_grade_id,
    full_marks,
    rubric_points,
    stub_answered,
    write_submission,
)
from corpus import CORPUS, solved, typed

from autograder import notebooks
from autograder.batch import grade_batch
from autograder.grading.exercises import EXERCISES
from autograder.grading.grader import setup_cells
from autograder.grading.scoring import Returned, score_exercise
from autograder.grading.submission import release_notebook
from autograder.kit.policy import (
    CLEAN,
    CLEAN_VERDICT,
    FORBIDDEN,
    MAX_SOURCE_CHARS,
    NEEDS_REVIEW,
    PolicyVerdict,
    check_policy,
    student_sources,
)
from autograder.outputs import report
from autograder.paths import RELEASE_DIR
from autograder.sandbox.runner import Limits

MULTI_IN, MULTI_OUT, MATMUL, COMPOSE = (
    "corr2d_multi_in",
    "corr2d_multi_in_out",
    "corr2d_multi_in_out_matmul",
    "compose_kernels",
)


@functools.cache
def release_setup(notebook: str) -> tuple[str, ...]:
    """The release's trusted cells that run first, as the grader passes them."""
    return tuple(setup_cells(release_notebook(notebook)))


def verdict(*cells: str, function: str = MULTI_IN) -> PolicyVerdict:
    ex = EXERCISES[function]
    return check_policy(
        cells, ex.forbidden, function=function, preamble=release_setup(ex.notebook)
    )


def answer(body: str, function: str = MULTI_IN) -> str:
    """The graded function, with ``body`` as the line that computes its result."""
    return f"def {function}(X, K):\n    return {body}\n"


def matmul(body: str) -> str:
    return answer(body, MATMUL)


# Evasions that reading settles: (cells, function, the resolved routine in the verdict).
FORBIDDEN_CASES = {
    "module alias in an added cell": (
        ["import torch.nn.functional as G", answer("G.conv2d(X[None], K[None])[0, 0]")],
        MULTI_IN,
        "torch.nn.functional.conv2d",
    ),
    "from-import under another name": (
        [
            "from torch.nn.functional import conv2d as xcorr",
            answer("xcorr(X[None], K[None])[0, 0]"),
        ],
        MULTI_IN,
        "torch.nn.functional.conv2d",
    ),
    "function alias in an added cell": (
        ["c = F.conv2d", answer("c(X[None], K[None])[0, 0]")],
        MULTI_IN,
        "torch.nn.functional.conv2d",
    ),
    "torch.convolution": (
        [
            answer(
                "torch.convolution(X[None], K[None], None, [1, 1], [0, 0], [1, 1], "
                "False, [0, 0], 1)[0, 0]"
            )
        ],
        MULTI_IN,
        "torch.convolution",
    ),
    "torch._convolution": (
        [answer("torch._convolution(X[None], K[None])[0, 0]")],
        MULTI_IN,
        "torch._convolution",
    ),
    "torch._C._nn": (
        [answer("torch._C._nn.thnn_conv2d(X[None], K[None], K.shape[1:])[0, 0]")],
        MULTI_IN,
        "torch._C._nn.thnn_conv2d",
    ),
    "torch.ops.aten": (
        [answer("torch.ops.aten.convolution.default(X[None], K[None])[0, 0]")],
        MULTI_IN,
        "torch.ops.aten.convolution",
    ),
    "torch.nn.grad": (
        [
            "import torch.nn.grad as g",
            answer("g.conv2d_weight(X[:, None], K.shape, K[None])[0, 0]"),
        ],
        MULTI_IN,
        "torch.nn.grad.conv2d_weight",
    ),
    "nn.Conv2d": (
        [answer("nn.Conv2d(X.shape[0], 1, K.shape[1:], bias=False)(X)")],
        MULTI_IN,
        "torch.nn.Conv2d",
    ),
    "getattr with a literal name": (
        [answer('getattr(F, "conv2d")(X[None], K[None])[0, 0]')],
        MULTI_IN,
        "torch.nn.functional.conv2d",
    ),
    "import_module with a literal name": (
        [
            "import importlib",
            answer('importlib.import_module("torch.nn.functional").conv2d(X, K)'),
        ],
        MULTI_IN,
        "torch.nn.functional.conv2d",
    ),
    "a helper in an added cell": (
        [
            "def helper(X, K):\n    return F.conv2d(X[None], K[None])[0, 0]",
            answer("helper(X, K)"),
        ],
        MULTI_IN,
        "torch.nn.functional.conv2d",
    ),
    "a helper stored in a list at a distance": (
        ["helpers = []", "helpers.append(F.conv2d)", answer("helpers[0](X, K)")],
        MULTI_IN,
        "torch.nn.functional.conv2d",
    ),
    "a global bound inside a function": (
        [
            "def setup():\n    global h\n    h = F.conv2d",
            "setup()",
            answer("h(X[None], K[None])[0, 0]"),
        ],
        MULTI_IN,
        "torch.nn.functional.conv2d",
    ),
    "torch's matmul patched in a scratch cell": (
        [
            "torch.Tensor.__matmul__ = lambda a, b: F.conv2d(a[None], b[None])[0, 0]",
            answer("X @ K"),
        ],
        MULTI_IN,
        "torch.nn.functional.conv2d",
    ),
    "setattr with a literal name in a scratch cell": (
        [
            'setattr(torch, "einsum", lambda *a: F.conv2d(*a[1:]))',
            answer("torch.einsum(X, K)"),
        ],
        MULTI_IN,
        "torch.nn.functional.conv2d",
    ),
    "a patch installed by a function called elsewhere": (
        [
            "def patch():\n    impl = lambda a, b: F.conv2d(a, b)\n    torch.einsum = impl",
            "patch()",
            answer('torch.einsum("chw,chw->", X, K)'),
        ],
        MULTI_IN,
        "torch.nn.functional.conv2d",
    ),
    "a decorator that swaps the function": (
        ["@lambda f: lambda X, K: F.conv2d(X[None], K[None])[0, 0]\n" + answer("None")],
        MULTI_IN,
        "torch.nn.functional.conv2d",
    ),
    "scipy's cross-correlation": (
        [
            "from scipy.signal import correlate2d",
            answer("torch.as_tensor(correlate2d(X[0].numpy(), K[0].numpy(), 'valid'))"),
        ],
        MULTI_IN,
        "scipy.signal.correlate2d",
    ),
    "conv2d used by the one-channel helper of notebook 2": (
        [
            "def corr2d(x, k):\n    return F.conv2d(x[None, None], k[None, None])[0, 0]",
            answer("torch.stack([corr2d(X, k[0]) for k in K])", MULTI_OUT),
        ],
        MULTI_OUT,
        "torch.nn.functional.conv2d",
    ),
    # The matmul exercise: the library's im2col too, but a tensor's own .unfold is fine.
    "aliased F.unfold in an added cell": (
        [
            "from torch.nn.functional import unfold as windows",
            matmul("K.reshape(K.shape[0], -1) @ windows(X[None], K.shape[2:])[0]"),
        ],
        MATMUL,
        "torch.nn.functional.unfold",
    ),
    "F.unfold aliased in another answer cell": (
        [
            matmul("K.reshape(K.shape[0], -1) @ u(X[None], K.shape[2:])[0]"),
            answer("F.conv2d(K1, K2)", COMPOSE) + "\nu = F.unfold\n",
        ],
        MATMUL,
        "torch.nn.functional.unfold",
    ),
    "an alias of an alias": (
        ["G = F", "H = G", matmul("H.unfold(X[None], K.shape[2:])[0]")],
        MATMUL,
        "torch.nn.functional.unfold",
    ),
    "nn.Unfold": (
        [matmul("nn.Unfold(K.shape[2:])(X[None])[0]")],
        MATMUL,
        "torch.nn.Unfold",
    ),
    "F.unfold re-exported by d2l": (
        [matmul("d2l.F.unfold(X[None], K.shape[2:])[0]")],
        MATMUL,
        "d2l.torch.F.unfold",
    ),
    "F.unfold re-exported by torch.nn.modules": (
        [matmul("torch.nn.modules.fold.F.unfold(X[None], K.shape[2:])[0]")],
        MATMUL,
        "torch.nn.modules.fold.F.unfold",
    ),
    "a re-export cycle, to any length": (
        [matmul("F" + ".torch.nn.functional" * 8 + ".unfold(X[None], K.shape[2:])[0]")],
        MATMUL,
        "torch.nn.functional.torch.nn.functional",
    ),
    "torch._C._nn.im2col": (
        [matmul("torch._C._nn.im2col(X[None], K.shape[2:], (1, 1), (0, 0), (1, 1))")],
        MATMUL,
        "torch._C._nn.im2col",
    ),
}


@pytest.mark.parametrize("case", sorted(FORBIDDEN_CASES))
def test_an_evasion_that_reading_settles_is_forbidden(case):
    cells, function, routine = FORBIDDEN_CASES[case]
    found = verdict(*cells, function=function)
    assert found.kind == FORBIDDEN
    assert found.found.startswith(routine)


# Evasions that reading cannot settle: (cells, function, the construct named in the verdict).
REVIEW_CASES = {
    "getattr with a computed name": (
        [answer('getattr(F, "con" + "v2d")(X[None], K[None])[0, 0]')],
        MULTI_IN,
        "getattr",
    ),
    "setattr with a computed name": (
        ['setattr(torch, "ein" + "sum", F.pad)', answer("torch.einsum(X, K)")],
        MULTI_IN,
        "setattr",
    ),
    "importlib.import_module": (
        [
            "import importlib",
            answer('importlib.import_module("torch.nn." + "functional").pad(X, K)'),
        ],
        MULTI_IN,
        "importlib",
    ),
    "__import__": (
        [answer('__import__("torch.nn.functional", fromlist=["x"]).pad(X, [1])')],
        MULTI_IN,
        "__import__",
    ),
    "exec": (
        ['exec("h = F.con" + "v2d")', answer("h(X[None], K[None])[0, 0]")],
        MULTI_IN,
        "exec",
    ),
    "eval": (
        [answer('eval("F.con" + "v2d")(X[None], K[None])[0, 0]')],
        MULTI_IN,
        "eval",
    ),
    "compile": (
        [answer('compile("1", "<x>", "eval")')],
        MULTI_IN,
        "compile",
    ),
    "ctypes": (
        ["import ctypes", answer("X")],
        MULTI_IN,
        "ctypes",
    ),
    "a module's __dict__": (
        [answer('F.__dict__["conv2d"](X[None], K[None])[0, 0]')],
        MULTI_IN,
        "__dict__",
    ),
    "vars of a module": (
        [answer('vars(F)["con" + "v2d"](X[None], K[None])[0, 0]')],
        MULTI_IN,
        "vars",
    ),
    "sys.modules": (
        ["import sys", answer('sys.modules["torch.nn.functional"].pad(X, [1])')],
        MULTI_IN,
        "sys.modules",
    ),
    "globals()": (
        [answer('globals()["F"].pad(X, [1])')],
        MULTI_IN,
        "globals",
    ),
    "operator.attrgetter": (
        [
            "from operator import attrgetter",
            answer('attrgetter("con" + "v2d")(F)(X[None], K[None])[0, 0]'),
        ],
        MULTI_IN,
        "operator.attrgetter",
    ),
    "pickle": (
        ["import pickle", answer("pickle.loads(BLOB)(X[None], K[None])[0, 0]")],
        MULTI_IN,
        "pickle",
    ),
    "a torch function mode": (
        [
            "class Mode(torch.overrides.TorchFunctionMode):\n"
            "    def __torch_function__(self, func, types, args=(), kwargs=None):\n"
            "        return func(*args, **(kwargs or {}))",
            "Mode().__enter__()",
            answer("X"),
        ],
        MULTI_IN,
        "torch.overrides",
    ),
    "the module passed around as a value": (
        [matmul("[F][0].unfold(X[None], K.shape[2:])[0]")],
        MATMUL,
        "the module torch.nn.functional",
    ),
    "the module as a class attribute": (
        ["class C:\n    f = F", matmul("C.f.unfold(X[None], K.shape[2:])[0]")],
        MATMUL,
        "the module torch.nn.functional",
    ),
    "torch's private internals": (
        [answer("torch._refs.nn.functional.pad(X, [1])")],
        MULTI_IN,
        "torch._refs",
    ),
}


@pytest.mark.parametrize("case", sorted(REVIEW_CASES))
def test_an_evasion_that_reading_cannot_settle_needs_review(case):
    cells, function, construct = REVIEW_CASES[case]
    found = verdict(*cells, function=function)
    assert found.kind == NEEDS_REVIEW
    assert found.found.startswith(construct)


def test_dynamic_code_anywhere_in_the_notebook_needs_review():
    """exec in a cell the function never names can still change what it calls."""
    found = verdict("exec(CODE)", answer("torch.einsum('chw,chw->', X, K)"))
    assert found == PolicyVerdict(NEEDS_REVIEW, "exec (runs code written in a string)")


def test_a_forbidden_call_outweighs_a_dynamic_construct():
    assert verdict("import ctypes", answer("F.conv2d(X, K)")).kind == FORBIDDEN


# Source that would crash or stall a naive reader: never an exception, a verdict.


def test_a_5000_term_expression_needs_review_instead_of_crashing():
    found = verdict(answer(" + ".join(["X"] * 5000)))
    assert found.kind == NEEDS_REVIEW
    assert "RecursionError" in found.found


def test_50000_nested_parentheses_do_not_compile_so_they_are_no_policy_matter():
    """Python refuses them (SyntaxError): the cell cannot run, and the sandbox says so."""
    deep = answer("(" * 50_000 + "X" + ")" * 50_000)
    assert verdict(deep) == CLEAN_VERDICT
    assert verdict(deep, answer("F.conv2d(X, K)")).kind == FORBIDDEN


def test_deep_nesting_that_parses_needs_review():
    assert verdict(answer("-" * 2_000 + "X")).kind == NEEDS_REVIEW  # a deep tree
    assert verdict(answer("-" * 100_000 + "X")).kind == NEEDS_REVIEW  # MemoryError


def test_aliases_too_tangled_to_follow_need_review():
    backwards = [f"a{i + 1} = a{i}" for i in reversed(range(100))]
    found = verdict("a0 = F", *backwards, matmul("a100.unfold(X[None], (2, 2))"))
    assert found == PolicyVerdict(
        NEEDS_REVIEW, "aliases of aliases too tangled to follow"
    )
    imports = [f"import m{i}\nG = m{i}" for i in range(20)]
    found = verdict(*imports, "G = F", matmul("G.unfold(X[None], (2, 2))"))
    assert found.kind == NEEDS_REVIEW and "too many modules" in found.found


def test_more_code_than_the_grader_reads_needs_review():
    found = verdict("x = 1\n" * (MAX_SOURCE_CHARS // 6 + 1), answer("X"))
    assert found.kind == NEEDS_REVIEW
    assert "characters of code" in found.found


def test_a_cell_that_does_not_compile_is_skipped_not_an_error():
    assert verdict("%timeit F.conv2d(X, K)", answer("X.sum()")) == CLEAN_VERDICT
    assert verdict("x = 1\0", answer("X.sum()")) == CLEAN_VERDICT


def test_the_verdict_names_a_bounded_construct():
    found = verdict(f"import pickle_{'a' * 500}", answer("X"))
    assert found.kind == NEEDS_REVIEW and len(found.found) <= 80


# Honest code stays clean.

BOOK = {
    MULTI_IN: [
        "sum(d2l.corr2d(x, k) for x, k in zip(X, K))",
        "torch.einsum('chwij,cij->hw', X.unfold(1, K.shape[1], 1)"
        ".unfold(2, K.shape[2], 1), K)",
        "sum(map(d2l.corr2d, X, K))",
    ],
    MULTI_OUT: ["torch.stack([corr2d_multi_in(X, k) for k in K], 0)"],
    MATMUL: [
        "(K.reshape(K.shape[0], -1) @ X.unfold(1, 2, 1).unfold(2, 2, 1)"
        ".permute(0, 3, 4, 1, 2).reshape(-1, 4)).reshape(-1, 2, 2)",
        "torch.Tensor.unfold(X, 1, 2, 1).sum()",
        "torch.einsum('oc,chw->ohw', K[:, :, 0, 0], F.pad(X, (0, 0)))",
    ],
}


@pytest.mark.parametrize(
    ("function", "body"),
    [(function, body) for function, bodies in BOOK.items() for body in bodies],
)
def test_the_books_own_code_is_clean(function, body):
    assert verdict(answer(body, function), function=function) == CLEAN_VERDICT


# A name bound in the function's own scope that shadows the notebook's ``F`` (the release's
# ``import torch.nn.functional as F``) is that local value, whatever binds it (Python's scoping):
# each body uses its local ``F`` as a value, which the module itself may not be.
SHADOWING_F = {
    "assignment": "F = K.shape[0]\n    out = [F]",
    "tuple unpacking (CS231n)": "F, C, HH, WW = K.shape\n    out = [F, C, HH, WW]",
    "nested unpacking": "(F, C), rest = K.shape[:2], K.shape[2:]\n    out = [F, rest]",
    "annotated": "F: int = K.shape[0]\n    out = [F]",
    "for loop": "out = []\n    for F in range(K.shape[0]):\n        out.append(F)",
    "with": "import contextlib\n    with contextlib.nullcontext(K) as F:\n        out = [F]",
    "except": "out = []\n    try:\n        K.shape[9]\n    except IndexError as F:\n"
    "        out.append(F)",
    "walrus": "out = [(F := K.shape[0])]\n    out.append(F)",
    "comprehension": "out = [F for F in K.shape]",
    "dict comprehension": "out = {F: F for F in K.shape}",
    "nonlocal in a helper": "F = 0\n    def count():\n        nonlocal F\n        F = K.shape[0]\n"
    "    count()\n    out = [F]",
}
SHADOWED_PARAMETERS = {
    "parameter": "def {name}(X, K, F=None):\n    return [F], X",
    "lambda parameter": "{name} = lambda X, K, F=None: ([F], X)",
    "keyword-only parameter": "def {name}(X, K, *, F=None):\n    return [F], X",
    "star parameter": "def {name}(X, K, *F):\n    return [F], X",
}


@pytest.mark.parametrize("binding", sorted(SHADOWING_F))
def test_a_local_that_shadows_an_import_alias_is_that_local_value(binding):
    body = SHADOWING_F[binding]
    for function in (MULTI_IN, MATMUL):
        cell = f"def {function}(X, K):\n    {body}\n    return out\n"
        assert verdict(cell, function=function) == CLEAN_VERDICT, function


@pytest.mark.parametrize("binding", sorted(SHADOWED_PARAMETERS))
def test_a_parameter_that_shadows_an_import_alias_is_that_parameter(binding):
    cell = SHADOWED_PARAMETERS[binding].format(name=MATMUL)
    assert verdict(cell, function=MATMUL) == CLEAN_VERDICT


# The same scoping, as an evader would use it: the module reached through a local, a closure,
# a ``global`` or ``nonlocal`` declaration, or a comprehension is still the module. ``unfold``
# is no forbidden name by itself (a tensor's own is fine), so only the resolved path tells.
UNFOLD = "G.unfold(X[None], K.shape[2:])"
SCOPED_EVASIONS = {
    "local alias": f"G = F\n    return {UNFOLD}",
    "local import": f"import torch.nn.functional as G\n    return {UNFOLD}",
    "closure": f"G = F\n    def inner():\n        return {UNFOLD}\n    return inner()",
    "nonlocal": "G = None\n    def bind():\n        nonlocal G\n        G = F\n"
    f"    bind()\n    return {UNFOLD}",
    "walrus in a comprehension": f"[(G := F) for _ in 'x']\n    return {UNFOLD}",
    "shadow, then the module again": f"F = 3\n    G = torch.nn.functional\n    return {UNFOLD}",
}
SCOPED_PARAMETER_EVASIONS = {
    "a parameter's default": f"def {MATMUL}(X, K, G=F):\n    return {UNFOLD}\n",
    "a keyword-only default": f"def {MATMUL}(X, K, *, G=F):\n    return {UNFOLD}\n",
    "a lambda's default": f"{MATMUL} = lambda X, K, G=F: {UNFOLD}\n",
    "a default shadowing F": f"def {MATMUL}(X, K, F=F):\n    return {UNFOLD.replace('G', 'F')}\n",
}


@pytest.mark.parametrize(
    "evasion", sorted(SCOPED_EVASIONS) + sorted(SCOPED_PARAMETER_EVASIONS)
)
def test_the_module_through_a_scope_is_still_the_module(evasion):
    cell = SCOPED_PARAMETER_EVASIONS.get(evasion) or (
        f"def {MATMUL}(X, K):\n    {SCOPED_EVASIONS[evasion]}\n"
    )
    assert verdict(cell, function=MATMUL) == PolicyVerdict(
        FORBIDDEN, "torch.nn.functional.unfold"
    )


def test_a_global_declaration_binds_the_notebook_s_name():
    binder = "def bind():\n    global G\n    G = F\n"
    cell = f"def {MATMUL}(X, K):\n    bind()\n    return {UNFOLD}\n"
    assert verdict(binder, cell, function=MATMUL) == PolicyVerdict(
        FORBIDDEN, "torch.nn.functional.unfold"
    )
    # Declared global, F is the module: handing it on is passing the module around.
    reader = f"def {MATMUL}(X, K):\n    global F\n    out = [F]\n    return X\n"
    assert verdict(reader, function=MATMUL).kind == NEEDS_REVIEW


@pytest.mark.parametrize(
    "cell",
    [
        f"def {MATMUL}(X, K):\n    return [F.unfold(X[None], 2) for F in [F]][0]",
        f"def {MATMUL}(X, K):\n    for G in [F]:\n        return G.unfold(X[None], 2)",
        f"def {MATMUL}(X, K):\n    with F as G:\n        return G.unfold(X[None], 2)",
    ],
)
def test_the_module_bound_to_a_local_other_than_by_assignment_needs_review(cell):
    """A loop or a ``with`` hands the module over as a value."""
    assert verdict(cell, function=MATMUL) == PolicyVerdict(
        NEEDS_REVIEW, "the module torch.nn.functional passed around as a value"
    )


def test_a_hand_written_im2col_helper_is_clean():
    helper = (
        "def im2col(X, k_h, k_w):\n"
        "    windows = X.unfold(1, k_h, 1).unfold(2, k_w, 1)\n"
        "    return windows.permute(0, 3, 4, 1, 2).reshape(-1, windows.shape[1] * "
        "windows.shape[2])"
    )
    body = "K.reshape(K.shape[0], -1) @ im2col(X, *K.shape[2:])"
    assert verdict(helper, matmul(body), function=MATMUL) == CLEAN_VERDICT


def test_conv2d_where_the_exercise_allows_it_is_clean():
    compose = answer("F.conv2d(F.pad(K1, (1, 1, 1, 1)), K2.flip(-1, -2))", COMPOSE)
    assert verdict(compose, function=COMPOSE) == CLEAN_VERDICT
    counting = "def conv2d_memory(**sizes):\n    return eval('1')"
    assert verdict(counting, function="conv2d_memory") == CLEAN_VERDICT


def test_scratch_cells_comparing_with_the_library_do_not_count_against_an_answer():
    """What the graded function cannot reach does not run when it is graded."""
    scratch = (
        "X, K = torch.randn(2, 5, 5), torch.randn(3, 2, 2, 2)\n"
        "print(torch.allclose(corr2d_multi_in_out_matmul(X, K), F.conv2d(X[None], K)[0]))\n"
        "P = F.unfold(X[None], (2, 2))\n"
        "compose_kernels(K, K)"
    )
    cells = (
        matmul("K.reshape(K.shape[0], -1) @ X.unfold(1, 2, 1).reshape(4, -1)"),
        answer("F.conv2d(K1, K2)", COMPOSE),
        scratch,
    )
    assert verdict(*cells, function=MATMUL) == CLEAN_VERDICT


def _graded_view(tmp_path: Path, answers: dict[str, str]) -> dict[str, PolicyVerdict]:
    """The verdict for every graded function of a submission, as the grader reads it."""
    dest = write_submission(tmp_path, "student", answers)
    verdicts = {}
    for name, ex in EXERCISES.items():
        nb = notebooks.read(dest / ex.notebook)
        sources = student_sources(nb, notebooks.read(RELEASE_DIR / ex.notebook))
        verdicts[name] = check_policy(
            sources,
            ex.forbidden,
            function=name,
            preamble=release_setup(ex.notebook),
        )
    return verdicts


def test_the_instructors_solutions_are_clean(tmp_path):
    assert set(_graded_view(tmp_path, solved()).values()) == {CLEAN_VERDICT}


@pytest.mark.parametrize(
    "student", sorted(s for s in CORPUS if s.startswith(("honest_", "mistake_")))
)
def test_honest_corpus_entries_are_clean(tmp_path, student):
    assert set(_graded_view(tmp_path, typed(CORPUS[student])).values()) == {
        CLEAN_VERDICT
    }


def test_the_corpus_policy_entries_are_forbidden(tmp_path):
    conv = _graded_view(tmp_path / "a", typed(CORPUS["policy_builtin_conv"]))
    assert conv[MULTI_IN] == PolicyVerdict(FORBIDDEN, "torch.nn.functional.conv2d")
    im2col = _graded_view(tmp_path / "b", typed(CORPUS["policy_library_im2col"]))
    assert im2col[MATMUL] == PolicyVerdict(FORBIDDEN, "torch.nn.functional.unfold")


def test_locked_cells_are_the_instructors_and_added_cells_the_students():
    release = notebooks.read(RELEASE_DIR / NOTEBOOK_OF[MULTI_OUT])
    nb = notebooks.read(RELEASE_DIR / NOTEBOOK_OF[MULTI_OUT])
    # The stand-in cell calls F.conv2d: the instructor's, so never the student's.
    assert not any("F.conv2d" in source for source in student_sources(nb, release))
    cell_by_grade_id(
        nb, "setup_imports"
    ).source += "\nu = 1"  # not run: the release's is
    nb.cells.append(nbformat.v4.new_code_cell("v = 2", id="student-0"))
    sources = student_sources(nb, release)
    assert sources[-1] == "v = 2" and not any("u = 1" in s for s in sources)
    assert cell_by_grade_id(nb, MULTI_OUT).source in sources


def test_hostile_cell_types_that_nbformat_allows_never_raise():
    release = notebooks.read(RELEASE_DIR / NOTEBOOK_OF[MATMUL])
    nb = notebooks.read(RELEASE_DIR / NOTEBOOK_OF[MATMUL])
    for cell, (grade_id, source) in zip(
        [c for c in nb.cells if c.cell_type == "code"],
        [(["a", "list"], 42), ({"a": "dict"}, ["not", " joined"]), ("x", None)],
        strict=False,
    ):
        cell.metadata["nbgrader"] = {"grade_id": grade_id, "solution": "yes"}
        cell.source = source
        cell["id"] = ["unhashable"]
    nb.cells.append(nbformat.v4.new_code_cell("import ctypes", id="student-0"))
    sources = student_sources(nb, release)
    assert sources[-1] == "import ctypes"
    assert verdict(*sources, function=MATMUL).kind == NEEDS_REVIEW


# Every routine of torch that computes a convolution or an im2col is caught, under any path.


def _torch_routines(*fragments: str) -> list[str]:
    spaces = {
        "torch": torch,
        "torch.nn": torch.nn,
        "torch.nn.functional": F,
        "torch.nn.grad": torch.nn.grad,
        "torch._C._nn": torch._C._nn,
        "torch._C._VariableFunctions": torch._C._VariableFunctions,
    }
    return sorted(
        f"{path}.{name}"
        for path, module in spaces.items()
        for name in dir(module)
        if any(f in name.lower() for f in fragments) and "convert" not in name.lower()
    )


@pytest.mark.parametrize("routine", _torch_routines("conv"))
def test_every_torch_convolution_is_forbidden(routine):
    assert verdict(answer(f"{routine}(X, K)")).kind == FORBIDDEN


@pytest.mark.parametrize("routine", _torch_routines("unfold", "im2col"))
def test_every_library_im2col_is_forbidden_in_the_matmul_exercise(routine):
    if routine.endswith("unfold_copy"):  # Tensor.unfold as a function: windows, fine
        found = verdict(matmul(f"{routine}(X, 1, 2, 1)"), function=MATMUL)
        assert found.kind == (NEEDS_REVIEW if "._" in routine else CLEAN)
    else:
        assert verdict(matmul(f"{routine}(X, K)"), function=MATMUL).kind == FORBIDDEN


# Scoring: the verdict, and nothing the sandbox says, decides the policy's points.


def _right(name: str) -> list[Returned]:
    ex = EXERCISES[name]
    return [
        Returned.of_value(ex.oracle(*case.inputs()).to(case.dtype)) for case in ex.cases
    ]


def test_forbidden_scores_zero_with_the_routine_named():
    routine = PolicyVerdict(FORBIDDEN, "torch.nn.functional.unfold")
    items, _ = score_exercise(EXERCISES[MATMUL], _right(MATMUL), policy_verdict=routine)
    assert {(i.score, i.status) for i in items} == {(0.0, "builtin-convolution")}
    assert "torch.nn.functional.unfold" in items[0].message
    assert "or F.unfold" in items[0].message


def test_needs_review_scores_a_provisional_zero_and_asks_an_instructor():
    construct = PolicyVerdict(
        NEEDS_REVIEW, "getattr (looks up an attribute by a computed name)"
    )
    items, _ = score_exercise(
        EXERCISES[MULTI_IN], _right(MULTI_IN), policy_verdict=construct
    )
    assert {(i.score, i.status) for i in items} == {(0.0, "needs-review")}
    assert "getattr" in items[0].message
    assert "an instructor will review" in items[0].message


def test_under_the_report_policy_both_keep_their_points_with_a_note():
    for kind in (FORBIDDEN, NEEDS_REVIEW):
        items, notes = score_exercise(
            EXERCISES[MULTI_IN],
            _right(MULTI_IN),
            policy_verdict=PolicyVerdict(kind, "something"),
            conv_policy="report",
        )
        assert {i.status for i in items} == {"passed"}
        assert sum(i.score for i in items) == rubric_points(MULTI_IN)
        assert any("keeps the points" in note for note in notes)


def test_a_wrong_answer_keeps_its_own_diagnosis():
    wrong = [Returned(error="NotImplementedError: ")] * len(EXERCISES[MULTI_IN].cases)
    items, _ = score_exercise(
        EXERCISES[MULTI_IN], wrong, policy_verdict=PolicyVerdict(NEEDS_REVIEW, "exec")
    )
    # Never needs-review: "inputs left unchanged" is not-checked, as nothing was right yet.
    assert {i.status for i in items} == {"failed", "not-checked"}


def test_an_exercise_without_a_policy_ignores_the_verdict():
    items, _ = score_exercise(
        EXERCISES[COMPOSE],
        _right(COMPOSE),
        policy_verdict=PolicyVerdict(FORBIDDEN, "torch.nn.functional.conv2d"),
    )
    assert sum(i.score for i in items) == rubric_points(COMPOSE)


# End to end: the sandboxed grader, an evader and two bystanders.

LIMITS = Limits(wall_seconds=3.0, cpu_seconds=3)


def _add_cells(path: Path, before: str, *sources: str) -> None:
    """Code cells typed in Jupyter just before the answer cell ``before``."""
    nb = notebooks.read(path)
    at = nb.cells.index(cell_by_grade_id(nb, before))
    for i, source in enumerate(sources):
        nb.cells.insert(at + i, nbformat.v4.new_code_cell(source, id=f"added-{i}"))
    notebooks.write(nb, path)


@pytest.fixture(scope="module")
def graded(tmp_path_factory, warm_sandbox) -> dict[str, dict]:
    course = tmp_path_factory.mktemp("course")
    evader = write_submission(
        course,
        "evader",
        solved()
        | {
            MULTI_IN: stub_answered(
                MULTI_IN, "    return xcorr(X[None], K[None])[0, 0]"
            ),
            MATMUL: stub_answered(
                MATMUL,
                "    c_o, c_i, k_h, k_w = K.shape\n"
                '    P = getattr(F, "un" + "fold")(X[None], (k_h, k_w))[0]\n'
                "    h_out, w_out = X.shape[1] - k_h + 1, X.shape[2] - k_w + 1\n"
                "    return (K.reshape(c_o, -1) @ P).reshape(c_o, h_out, w_out)",
            ),
        },
    )
    _add_cells(
        evader / NOTEBOOK_OF[MULTI_IN],
        MULTI_IN,
        "from torch.nn.functional import conv2d as xcorr",
    )
    write_submission(course, "bystander", solved())
    comparer = write_submission(course, "comparer", solved())
    _add_cells(  # a scratch cell that checks the answers against the library
        comparer / NOTEBOOK_OF[COMPOSE],
        COMPOSE,
        "X, K = torch.randn(2, 6, 6), torch.randn(3, 2, 2, 2)\n"
        "assert torch.allclose(corr2d_multi_in_out_matmul(X, K), "
        "F.conv2d(X[None], K)[0], atol=1e-5)\n"
        "P = F.unfold(X[None], (2, 2))",
    )
    results = grade_batch(
        course / "submitted", course / "out", sandbox=warm_sandbox(LIMITS)
    )
    return {r["student"]: r for r in results}


def _cells(result: dict) -> dict[str, tuple[float, str]]:
    return {row["item"]: (row["score"], row["status"]) for row in report.rows(result)}


@pytest.mark.slow
@pytest.mark.sandbox
@pytest.mark.parametrize("student", ["bystander", "comparer"])
def test_bystanders_keep_exactly_full_marks(graded, student):
    assert _cells(graded[student]) == full_marks()


@pytest.mark.slow
@pytest.mark.sandbox
def test_the_evader_loses_exactly_the_evading_functions(graded):
    # The alias is read from the source; F.unfold by a computed name, which reading alone
    # would send to review, is refused at run time by PyTorch's dispatcher.
    zero_conv = (0.0, "builtin-convolution")
    expected = full_marks() | {
        f"test_{MULTI_IN}_example": zero_conv,
        f"test_{MULTI_IN}_hidden": zero_conv,
        f"test_{MATMUL}_example": zero_conv,
        f"test_{MATMUL}_hidden": zero_conv,
    }
    assert _cells(graded["evader"]) == expected
    messages = {row["item"]: row["message"] for row in report.rows(graded["evader"])}
    assert "torch.nn.functional.conv2d" in messages[f"test_{MULTI_IN}_example"]
    assert "im2col (F.unfold) are switched off" in messages[f"test_{MATMUL}_hidden"]
    assert 'getattr(F, "un" + "fold")' in messages[f"test_{MATMUL}_hidden"]


def lenient_verdict(*cells: str, function: str = MULTI_IN) -> PolicyVerdict:
    """The verdict as the grader reads it where the sandbox refuses the convolutions."""
    ex = EXERCISES[function]
    return check_policy(
        cells,
        ex.forbidden,
        function=function,
        preamble=release_setup(ex.notebook),
        refused_at_run_time=True,
    )


KEEP = "def keep(f, box=[]):\n    box.append(f)\n    return box\n"


@pytest.mark.parametrize(
    "store",
    [
        "keep(F.conv2d)",  # a statement that binds no name
        "kept = keep(F.conv2d)",  # binds a name nothing reads
        "if False:\n    pass\nelse:\n    keep(fn=torch.conv2d)",
        "keep(getattr(F, 'conv2d'))",
        "keep(*[F.unfold][:0], F.conv2d)",
    ],
)
def test_a_routine_handed_to_a_call_counts_wherever_the_statement_is(store):
    # The reading follows names; a routine stored through a call's argument (here in a
    # default list) is read back with no name that leads to it. It counts, live or not.
    assert verdict(KEEP + store, answer("keep(None)[0](X[None], K[None])[0, 0]")) == (
        PolicyVerdict(FORBIDDEN, verdict(KEEP + store, answer("X")).found)
    )
    assert verdict(KEEP + store, answer("X")).kind == FORBIDDEN


def test_a_scratch_cell_that_calls_the_library_to_compare_still_does_not_count():
    scratch = (
        "X, K = torch.ones(2, 3, 3), torch.ones(2, 2, 2)\n"
        "print(torch.allclose(corr2d_multi_in(X, K), F.conv2d(X[None], K[None])[0, 0]))"
    )
    assert verdict(scratch, answer("X.sum(0)")) == CLEAN_VERDICT


DTYPE_LOOKUP = answer(
    "torch.zeros(2, 2, dtype=getattr(torch, str(X.dtype).split('.')[-1]))"
)


def test_an_attribute_of_torch_by_a_computed_name_needs_no_review_where_conv_is_refused():
    # The honest lookup: in the student's notebook (nothing refused) a person must
    # look; in the grader's sandbox no attribute of torch can compute a convolution.
    assert verdict(DTYPE_LOOKUP).kind == NEEDS_REVIEW
    assert lenient_verdict(DTYPE_LOOKUP) == CLEAN_VERDICT


@pytest.mark.parametrize(
    "cells",
    [
        # F and d2l hold numpy (their np): numpy's correlate is refused by no dispatcher.
        (answer("getattr(F, 'n' + 'p')"),),
        (answer("getattr(d2l, name)(X, K)"),),
        # torch rebound, or getattr: no longer what the reader knows.
        ("torch = d2l", DTYPE_LOOKUP),
        ("def getattr(o, n):\n    return o", DTYPE_LOOKUP),
        # Two computed hops from torch reach anything.
        (answer("getattr(getattr(torch, 'nn'), name)"),),
    ],
)
def test_other_computed_lookups_still_need_review_where_conv_is_refused(cells):
    assert lenient_verdict(*cells).kind == NEEDS_REVIEW


def test_numpy_s_correlate_one_computed_hop_from_torch_is_forbidden_by_its_name():
    reach = answer("getattr(torch, 'n' + 'n').functional.np.correlate(X[0], K[0])")
    assert lenient_verdict(reach) == PolicyVerdict(
        FORBIDDEN, "an attribute named correlate"
    )


def test_computed_lookups_stay_under_review_for_im2col_which_torch_keeps_in_python():
    # torch._decomp holds a Python im2col that no operator refusal stops: the grader passes
    # refused_at_run_time only where the convolutions alone are forbidden.
    from autograder.grading.grader import exercise_job  # noqa: F401 (documents the caller)

    lookup = matmul("getattr(torch, name)(X, K)")
    assert verdict(lookup, function=MATMUL).kind == NEEDS_REVIEW
