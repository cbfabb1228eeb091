"""The graded exercises as data: functions, hidden inputs, and the rubric that gives points.

Every input is drawn from a seeded generator on the CPU (or written out, for the book's worked
examples) and only then moved to a device, so a case is the same numbers on every machine.
"""

from __future__ import annotations

import dataclasses
import hashlib

import torch

from autograder.grading.answer_key import REFERENCE
from autograder.kit.judging import Case, Exercise, RubricItem

# Library routines that compute a convolution for you. An exercise that asks for the computation
# by hand loses its points for calling one (course policy: ``TrustedAutograde.conv_policy``).
# As ``policy.check_policy`` reads them: a plain name matches any name or attribute so called
# (as the student wrote it, or a component of the dotted path it resolves to); a dotted entry is
# an fnmatch pattern over the resolved path (``xcorr`` from ``from torch.nn.functional import
# conv2d as xcorr`` is ``torch.nn.functional.conv2d``); ``!`` marks an exception to the patterns.
BUILTIN_CONVOLUTIONS = frozenset(
    {
        *("conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d"),
        *("conv_transpose3d", "Conv1d", "Conv2d", "Conv3d", "LazyConv1d", "LazyConv2d"),
        *("LazyConv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"),
        *("LazyConvTranspose1d", "LazyConvTranspose2d", "LazyConvTranspose3d"),
        # Whatever else a library calls a convolution: torch.convolution, torch._convolution,
        # torch.conv_tbc, torch._C._nn.thnn_conv2d, torch.nn.grad.conv2d_weight,
        # torch.ops.aten.convolution, scipy.signal.convolve2d, numpy.convolve, ...
        "*conv*",
        "!*convert*",
        "*correlate*",  # scipy.signal.correlate2d, numpy.correlate: the exercise itself
        # The same by attribute name, of whatever object: numpy is one attribute away from
        # F and d2l (their ``np``), so ``anything.np.correlate`` counts too.
        *(".correlate", ".correlate1d", ".correlate2d", ".convolve", ".convolve1d"),
        *(".convolve2d", ".fftconvolve", ".oaconvolve"),
    }
)
# im2col by the library: F.unfold (wherever it is re-exported, d2l.F.unfold too), nn.Unfold,
# torch._C._nn.im2col. A tensor's own .unfold makes windows, and is fine, by any name.
LIBRARY_IM2COL = frozenset(
    {
        "Unfold",
        "*.unfold",
        "*im2col*",
        "!*Tensor*.unfold",
        "!torch.ops.aten.unfold",
        "!torch.ops.aten.unfold.*",
    }
)

# What the sandbox switches off at run time (``harness.OPERATOR_FAMILIES``) for an exercise
# whose policy forbids these, under the course policy "zero": the reading of the source above
# says who called what by name; the dispatcher makes sure nothing reached them by another way.
RUN_TIME_REFUSALS = (("convolution", BUILTIN_CONVOLUTIONS), ("im2col", LIBRARY_IM2COL))


def refused_operators(forbidden: frozenset[str]) -> list[str]:
    """The operator families the sandbox switches off while an exercise with ``forbidden``
    runs."""
    return [family for family, names in RUN_TIME_REFUSALS if names <= forbidden]


# The worked examples of the chapters (Fig. 7.4.1 and the K, K + 1, K + 2 stack).
X_FIG_7_4_1 = (
    ((0.0, 1.0, 2.0), (3.0, 4.0, 5.0), (6.0, 7.0, 8.0)),
    (
        (1.0, 2.0, 3.0),
        (4.0, 5.0, 6.0),
        (7.0, 8.0, 9.0),
    ),
)
K_FIG_7_4_1 = ((0.0, 1.0), (2.0, 3.0)), ((1.0, 2.0), (3.0, 4.0))
K_STACK = tuple(
    tuple(tuple(tuple(v + s for v in row) for row in ch) for ch in K_FIG_7_4_1)
    for s in (0, 1, 2)
)
X_FIG_7_4_2 = tuple(
    tuple(tuple(float((9 * c + 3 * r + w) % 5) for w in range(3)) for r in range(3))
    for c in range(3)
)
K_FIG_7_4_2 = (((1.0,),), ((2.0,),), ((-1.0,),)), (((0.0,),), ((1.0,),), ((3.0,),))
# Exercise 4's worked example: a 2 x 2 box blur, then a horizontal difference [1, -1].
K_BOX = ((((1.0, 1.0), (1.0, 1.0)),),)
K_DIFFERENCE = ((((1.0, -1.0),),),)
EXERCISES_NOTEBOOK = "05-exercises.ipynb"


def tensor_data(t: torch.Tensor) -> dict:
    """A tensor as plain JSON data: its shape, and its values flat in float64 (exact for the
    course's eighths). The sandbox's jobs and the kit's stored answers both carry tensors so;
    the harness and the kit read them back."""
    t = t.detach().to("cpu", torch.float64)
    return {"shape": list(t.shape), "values": t.reshape(-1).tolist()}


def reseeded(cases: tuple[Case, ...], salt: str) -> tuple[Case, ...]:
    """The same cases with their random inputs drawn from seeds derived from ``salt``.

    The grader uses the course's secret salt (``TrustedAutograde.seed_salt``), so that nobody can
    reproduce the graded inputs from this public file; the practice check uses a public salt. A
    counting case keeps its geometry (the edge it tests) and gets channel counts derived from
    the salt, so a table of answers to the sizes above is no answer either. The worked examples
    stay as written, and no salt ("") keeps everything above.
    """
    if not salt:
        return cases

    def derived(key: str) -> int:
        digest = hashlib.sha256(f"{salt}/{key}".encode()).digest()
        return int.from_bytes(digest[:4], "big")

    def reseed(case: Case) -> Case:
        if not case.params:
            return dataclasses.replace(case, seed=derived(str(case.seed)))
        params = dict(case.params)
        for name in ("c_i", "c_o"):
            params[name] = 1 + derived(f"{case.params}/{name}") % 64
        return dataclasses.replace(case, params=tuple(params.items()))

    return tuple(
        case
        if case.values is not None or ("example" in case.tags and case.params)
        else reseed(case)
        for case in cases
    )


# Points follow difficulty (README, "How the points were set"): a function the book prints
# (7.4.1 to 7.4.3) is a warm-up, worth half of one it does not (im2col, composing kernels);
# each count of Exercise 2 is one line once the conventions are stated, 1 point. Written
# answers carry their points in the source notebooks' nbgrader metadata.
BOOK_LISTING = 0.5  # share of a full function's points for one the book prints


def _rubric(
    name: str, shape_item: tuple[str, str], share: float = 1.0
) -> tuple[RubricItem, ...]:
    """The five items of a function's rubric, worth 3 points in all times ``share``."""
    example, hidden = f"test_{name}_example", f"test_{name}_hidden"
    return (
        RubricItem(
            example,
            "example",
            1.0 * share,
            "the worked example, and at least one other input right",
        ),
        RubricItem(hidden, "random", 0.5 * share, "random inputs of several shapes"),
        RubricItem(hidden, shape_item[0], 0.5 * share, shape_item[1]),
        RubricItem(hidden, "channels", 0.5 * share, "one channel and many channels"),
        RubricItem(hidden, "untouched", 0.5 * share, "inputs left unchanged"),
    )


def _tags(*names: str) -> frozenset[str]:
    return frozenset(names)


def _example(x_values: tuple, k_values: tuple) -> Case:
    """A worked example of the chapters, written out (its values are public)."""
    x_shape, k_shape = torch.tensor(x_values).shape, torch.tensor(k_values).shape
    return Case(
        tuple(x_shape), tuple(k_shape), 0, _tags("example"), values=(x_values, k_values)
    )


def _count_rubric(name: str) -> tuple[RubricItem, ...]:
    """The four items of a count's rubric, 1 point in all."""
    example, hidden = f"test_{name}_example", f"test_{name}_hidden"
    return (
        RubricItem(
            example,
            "example",
            0.25,
            "the worked example, and at least one other size right",
        ),
        RubricItem(hidden, "random", 0.25, "assorted sizes, no padding, stride 1"),
        RubricItem(hidden, "padding-stride", 0.25, "padding and stride"),
        RubricItem(
            hidden,
            "edge",
            0.25,
            "edge cases: kernel as large as the input, stride larger than the kernel, "
            "sizes that do not fit",
        ),
    )


COUNT_KEYS = ("c_i", "c_o", "h", "w", "k_h", "k_w", "padding", "stride")
COUNT_EXAMPLE = (
    2,
    3,
    3,
    3,
    2,
    2,
    0,
    1,
)  # the sizes of Fig. 7.4.1 with three output channels


def _sizes(sizes: tuple[int, ...], tags: str = "", extra: tuple = ()) -> Case:
    params = (*zip(COUNT_KEYS, sizes, strict=True), *extra)
    return Case((), (), 0, _tags(*tags.split()), params=params)


def _count_cases() -> tuple[Case, ...]:
    """Sizes for the counting exercises: (c_i, c_o, h, w, k_h, k_w, padding, stride)."""
    table = (
        (COUNT_EXAMPLE, "example"),
        ((3, 64, 32, 32, 3, 3, 0, 1), "random"),
        ((16, 8, 28, 20, 5, 3, 0, 1), "random"),
        ((3, 16, 32, 32, 3, 3, 1, 1), "padding-stride"),
        ((8, 4, 15, 17, 3, 5, 2, 2), "padding-stride"),
        ((1, 1, 224, 224, 7, 7, 3, 2), "padding-stride"),
        ((4, 2, 5, 5, 5, 5, 0, 1), "edge"),  # kernel as large as the input: one output
        ((2, 3, 10, 9, 2, 2, 0, 3), "edge"),  # stride larger than the kernel
        ((1, 2, 3, 3, 5, 5, 1, 1), "edge"),  # too large, but fits once padded
        ((1, 1, 3, 3, 5, 5, 0, 1), "edge invalid"),  # does not fit: ValueError
    )
    return tuple(_sizes(sizes, tags) for sizes, tags in table)


def _count_exercise(
    name: str, visible: Case, extra: tuple[tuple[str, int], ...] = ()
) -> Exercise:
    """A counting exercise; ``visible``: its visible test's case besides the example."""
    cases = _count_cases()
    if extra:  # the same sizes once more with the extra argument (e.g. float64 values)
        cases += tuple(
            dataclasses.replace(case, params=(*case.params, *extra))
            for case in cases
            if "example" not in case.tags and "edge" not in case.tags
        )
    return Exercise(
        name=name,
        answers=REFERENCE,
        section="7.4.5",
        notebook=EXERCISES_NOTEBOOK,
        kernel_dims=0,
        cases=cases,
        rubric=_count_rubric(name),
        kind="count",
        visible=(_sizes(COUNT_EXAMPLE, "example"), visible),
    )


EXERCISES: dict[str, Exercise] = {
    ex.name: ex
    for ex in (
        Exercise(
            name="corr2d_multi_in",
            answers=REFERENCE,
            section="7.4.1",
            notebook="01-multiple-input-channels.ipynb",
            kernel_dims=3,
            cases=(
                _example(X_FIG_7_4_1, K_FIG_7_4_1),
                Case((1, 5, 5), (1, 3, 3), seed=101, tags=_tags("random", "channels")),
                Case(
                    (3, 6, 7), (3, 2, 3), seed=102, tags=_tags("random", "non-square")
                ),
                Case(
                    (8, 5, 4), (8, 3, 1), seed=103, tags=_tags("non-square", "channels")
                ),
                Case((2, 4, 4), (2, 4, 4), seed=104, tags=_tags("random")),
                Case(
                    (4, 7, 5),
                    (4, 2, 2),
                    seed=105,
                    tags=_tags("random"),
                    dtype=torch.float64,
                ),
            ),
            rubric=_rubric(
                "corr2d_multi_in", ("non-square", "non-square kernels"), BOOK_LISTING
            ),
            forbidden=BUILTIN_CONVOLUTIONS,
            visible=(
                _example(X_FIG_7_4_1, K_FIG_7_4_1),
                Case((3, 5, 6), (3, 2, 3), 0),
                Case((1, 2, 3, 3), (2, 2, 2), 0, _tags("invalid")),  # a batch of one
            ),
        ),
        Exercise(
            name="corr2d_multi_in_out",
            answers=REFERENCE,
            section="7.4.2",
            notebook="02-multiple-output-channels.ipynb",
            kernel_dims=4,
            cases=(
                _example(X_FIG_7_4_1, K_STACK),
                Case(
                    (3, 5, 5), (1, 3, 2, 2), seed=201, tags=_tags("random", "channels")
                ),
                Case(
                    (1, 6, 6), (4, 1, 3, 3), seed=202, tags=_tags("random", "channels")
                ),
                Case(
                    (5, 7, 6),
                    (3, 5, 2, 3),
                    seed=203,
                    tags=_tags("random", "non-square"),
                ),
                Case(
                    (2, 6, 5),
                    (2, 2, 1, 4),
                    204,
                    _tags("non-square"),
                    dtype=torch.float64,
                ),
            ),
            rubric=_rubric(
                "corr2d_multi_in_out",
                ("non-square", "non-square kernels"),
                BOOK_LISTING,
            ),
            stand_ins=("corr2d_multi_in",),
            forbidden=BUILTIN_CONVOLUTIONS,
            visible=(
                _example(X_FIG_7_4_1, K_STACK),
                Case((2, 5, 4), (4, 2, 3, 2), 0),
                Case((1, 2, 3, 3), (3, 2, 2, 2), 0, _tags("invalid")),
            ),
        ),
        Exercise(
            name="corr2d_multi_in_out_1x1",
            answers=REFERENCE,
            section="7.4.3",
            notebook="03-1x1-convolution.ipynb",
            kernel_dims=4,
            cases=(
                _example(X_FIG_7_4_2, K_FIG_7_4_2),
                Case((3, 4, 4), (2, 3, 1, 1), seed=301, tags=_tags("random")),
                Case(
                    (1, 5, 3),
                    (4, 1, 1, 1),
                    seed=302,
                    tags=_tags("non-square", "channels"),
                ),
                Case(
                    (16, 6, 5),
                    (8, 16, 1, 1),
                    seed=303,
                    tags=_tags("random", "channels"),
                ),
                Case(
                    (5, 3, 7),
                    (1, 5, 1, 1),
                    304,
                    _tags("non-square", "channels"),
                    dtype=torch.float64,
                ),
            ),
            rubric=_rubric(
                "corr2d_multi_in_out_1x1",
                ("non-square", "non-square images"),
                BOOK_LISTING,
            ),
            # The notebook defines corr2d_multi_in_out too, so an answer may build on it.
            stand_ins=("corr2d_multi_in_out",),
            forbidden=BUILTIN_CONVOLUTIONS,
            product_tip=(
                "Tip: this section's point is one matrix product (@, torch.matmul, torch.mm "
                "or torch.einsum) with no loop over pixels. Not a rule: calling "
                "corr2d_multi_in_out is correct and keeps full marks."
            ),
            visible=(
                _example(X_FIG_7_4_2, K_FIG_7_4_2),
                Case((4, 5, 3), (6, 4, 1, 1), 0),
                Case((1, 4, 5, 3), (6, 4, 1, 1), 0, _tags("invalid")),
                Case(
                    (4, 5, 3), (6, 4, 2, 2), 0, _tags("invalid")
                ),  # not a 1 x 1 kernel
            ),
        ),
        Exercise(
            name="corr2d_multi_in_out_matmul",
            answers=REFERENCE,
            section="7.4.5",
            notebook=EXERCISES_NOTEBOOK,
            kernel_dims=4,
            cases=(
                _example(X_FIG_7_4_1, K_STACK),
                Case((3, 6, 6), (2, 3, 3, 3), seed=501, tags=_tags("random")),
                Case(
                    (1, 8, 7), (4, 1, 5, 5), seed=502, tags=_tags("random", "channels")
                ),
                Case(
                    (4, 7, 9),
                    (3, 4, 2, 4),
                    seed=503,
                    tags=_tags("random", "non-square"),
                ),
                Case((6, 5, 5), (6, 6, 1, 1), seed=504, tags=_tags("channels")),
                Case(
                    (2, 6, 5),
                    (2, 2, 3, 1),
                    505,
                    _tags("non-square"),
                    dtype=torch.float64,
                ),
            ),
            rubric=_rubric(
                "corr2d_multi_in_out_matmul", ("non-square", "non-square kernels")
            ),
            forbidden=BUILTIN_CONVOLUTIONS | LIBRARY_IM2COL,
            visible=(_example(X_FIG_7_4_1, K_STACK), Case((3, 9, 8), (2, 3, 5, 5), 0)),
        ),
        # Visible sizes with padding 1, where padding on one side only gives another number.
        _count_exercise("conv2d_multiplications", _sizes((2, 3, 3, 3, 2, 2, 1, 1))),
        _count_exercise("conv2d_additions", _sizes((3, 1, 5, 5, 3, 3, 1, 1))),
        _count_exercise(
            "conv2d_memory",
            _sizes((2, 3, 3, 3, 2, 2, 1, 1), extra=(("bytes_per_value", 8),)),
            extra=(("bytes_per_value", 8),),
        ),
        Exercise(
            name="compose_kernels",
            answers=REFERENCE,
            section="7.4.5",
            notebook=EXERCISES_NOTEBOOK,
            kernel_dims=4,
            cases=(
                _example(K_BOX, K_DIFFERENCE),
                Case(
                    (1, 1, 3, 3),
                    (1, 1, 2, 2),
                    seed=601,
                    tags=_tags("random", "channels"),
                ),
                Case(
                    (3, 2, 2, 3),
                    (4, 3, 3, 1),
                    seed=602,
                    tags=_tags("random", "non-square", "channels"),
                ),
                Case((2, 3, 1, 1), (5, 2, 3, 3), seed=603, tags=_tags("random")),
                Case(
                    (4, 4, 3, 2),
                    (2, 4, 2, 2),
                    604,
                    _tags("non-square", "channels"),
                    dtype=torch.float64,
                ),
            ),
            rubric=_rubric("compose_kernels", ("non-square", "non-square kernels")),
            kind="compose",
            arg_names=("K1", "K2"),
            visible=(
                _example(K_BOX, K_DIFFERENCE),
                Case((4, 3, 3, 3), (2, 4, 2, 3), 0),
            ),
            forbidden=frozenset(),  # conv2d may well compose two kernels: that is the point
        ),
    )
}
