"""The hidden checks: correct answers pass, each known mistake fails with an actionable message."""

from __future__ import annotations

import pytest
import torch
from conftest import rubric_points

from autograder import EXERCISES, check
from autograder.course_build.kit_build import current_kit, practice_cases
from autograder.grading import reference

practice = current_kit().practice  # the kit's, as the release notebooks carry it


def book_corr2d_multi_in(X, K):
    """The book's own solution, built on d2l.corr2d (float32 on the CPU whatever it gets).
    d2l is imported here, not at the top: every pytest worker imports every test module, and
    d2l's own imports (torchvision, pandas, scipy) cost each one about 2.7 s of CPU."""
    from d2l import torch as d2l

    return sum(d2l.corr2d(x, k) for x, k in zip(X, K, strict=True))


def test_reference_passes_every_hidden_case(capsys):
    for name in ("corr2d_multi_in", "corr2d_multi_in_out", "corr2d_multi_in_out_1x1"):
        check(name, getattr(reference, name))
    out = capsys.readouterr().out
    assert "Note:" not in out
    assert out.count("cases pass") == 3


def test_book_solution_with_d2l_corr2d_passes_and_gets_a_dtype_note(capsys):
    check("corr2d_multi_in", book_corr2d_multi_in)
    out = capsys.readouterr().out
    assert "all 6 cases pass" in out
    assert "returned torch.float32 for torch.float64 input" in out


def _fails_with(name, fn, *fragments):
    with pytest.raises(AssertionError) as info:
        check(name, fn)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message
    assert "tensor(" not in message, (
        "feedback must describe shapes, never print hidden values"
    )
    return message


def test_channels_not_summed_is_diagnosed():
    def per_channel(X, K):
        return torch.stack(
            [
                reference.corr2d_multi_in(x[None], k[None])
                for x, k in zip(X, K, strict=True)
            ]
        )

    _fails_with(
        "corr2d_multi_in", per_channel, "expected shape", "channels were not summed"
    )


def test_flipped_kernel_is_diagnosed_as_convolution():
    _fails_with(
        "corr2d_multi_in",
        lambda X, K: reference.corr2d_multi_in(X, K.flip(-1, -2)),
        "kernel is flipped",
    )


def test_output_channels_stacked_on_the_wrong_axis_are_diagnosed():
    def last_axis(X, K):
        return torch.stack([reference.corr2d_multi_in(X, k) for k in K], dim=-1)

    _fails_with("corr2d_multi_in_out", last_axis, "stacked along dimension 0")


def test_numpy_result_is_reported_with_the_fix():
    _fails_with(
        "corr2d_multi_in_out_1x1",
        lambda X, K: reference.corr2d_multi_in_out_1x1(X, K).numpy(),
        "expected a torch.Tensor, got ndarray",
        "torch.as_tensor",
    )


def test_modifying_the_input_in_place_is_reported():
    def destructive(X, K):
        Y = reference.corr2d_multi_in(X, K)
        X.zero_()
        return Y

    _fails_with("corr2d_multi_in", destructive, "changed its input")


def test_hard_coded_worked_example_fails_on_hidden_shapes():
    _fails_with(
        "corr2d_multi_in",
        lambda X, K: torch.tensor([[56.0, 72.0], [104.0, 120.0]]),
        "expected shape (3, 3)",
    )


def test_a_missing_channel_is_caught_by_the_tolerance():
    def drops_last_channel(X, K):
        return (
            reference.corr2d_multi_in(X[:-1], K[:-1])
            if X.shape[0] > 1
            else reference.corr2d_multi_in(X, K)
        )

    _fails_with(
        "corr2d_multi_in",
        drops_last_channel,
        "the shape is right but the values are not",
    )


# The practice check of the student's notebook: same rubric and wording, other inputs, no raise.


def test_practice_inputs_have_the_graded_shapes_but_other_numbers():
    for ex in EXERCISES.values():
        for graded, trial in zip(ex.cases, practice_cases(ex), strict=True):
            assert (trial.x_shape, trial.k_shape, trial.tags, trial.dtype) == (
                graded.x_shape,
                graded.k_shape,
                graded.tags,
                graded.dtype,
            )
            if graded.values is None and not graded.params:  # random tensor inputs
                assert not torch.equal(trial.inputs()[0], graded.inputs()[0])


def test_practice_on_the_reference_prints_full_points(capsys):
    practice("corr2d_multi_in_out_1x1", reference.corr2d_multi_in_out_1x1)
    out = capsys.readouterr().out
    assert "FAIL" not in out
    total = rubric_points("corr2d_multi_in_out_1x1")
    assert f"{total:g} of {total:g} points on practice inputs" in out


def test_practice_on_an_unwritten_function_says_so_without_raising(capsys):
    def stub(X, K):
        raise NotImplementedError()

    practice("corr2d_multi_in", stub)
    out = capsys.readouterr().out
    assert "not written yet" in out
    assert f"0 of {rubric_points('corr2d_multi_in'):g} points" in out


def test_practice_gives_the_graders_diagnosis_of_a_flipped_kernel(capsys):
    def flipped(X, K):
        return reference.corr2d_multi_in_out(X, K.flip(-1, -2))

    practice("corr2d_multi_in_out", flipped)
    out = capsys.readouterr().out
    assert "FAIL random inputs of several shapes" in out
    assert "kernel is flipped" in out
    assert "tensor(" not in out


def test_practice_reports_the_builtin_convolution_policy(capsys):
    def with_conv2d(X, K):
        return torch.nn.functional.conv2d(X[None], K[None])[0, 0]

    practice("corr2d_multi_in", with_conv2d)
    out = capsys.readouterr().out
    assert "calls one of PyTorch's convolutions" in out
    assert f"0 of {rubric_points('corr2d_multi_in'):g} points" in out


# The exercises chapter: the same checks, and their diagnoses, for the new kinds of answer.


def test_im2col_with_patches_flattened_column_first_is_diagnosed():
    def column_first(X, K):
        c_o, c_i, k_h, k_w = K.shape
        h_out, w_out = X.shape[1] - k_h + 1, X.shape[2] - k_w + 1
        slices = [
            X[:, a : a + h_out, b : b + w_out] for b in range(k_w) for a in range(k_h)
        ]
        P = torch.stack(slices, dim=1).reshape(c_i * k_h * k_w, h_out * w_out)
        return (K.reshape(c_o, -1) @ P).reshape(c_o, h_out, w_out)

    _fails_with(
        "corr2d_multi_in_out_matmul", column_first, "flattened in different orders"
    )


def test_one_addition_per_product_is_diagnosed():
    _fails_with(
        "conv2d_additions",
        reference.conv2d_multiplications,
        "one addition per product",
    )


def test_padding_on_one_side_only_is_diagnosed():
    def one_side(c_i, c_o, h, w, k_h, k_w, padding=0, stride=1):
        h_out = (h + padding - k_h) // stride + 1
        w_out = (w + padding - k_w) // stride + 1
        return c_o * h_out * w_out * c_i * k_h * k_w

    _fails_with("conv2d_multiplications", one_side, "padding was added on one side")


def test_a_float_count_is_told_to_use_floor_division():
    def true_division(c_i, c_o, h, w, k_h, k_w, padding=0, stride=1):
        return (
            reference.conv2d_multiplications(c_i, c_o, h, w, k_h, k_w, padding, stride)
            / 1
        )

    _fails_with(
        "conv2d_multiplications", true_division, "(a float): return int(...)", "//"
    )


def test_sizes_that_do_not_fit_must_raise_valueerror():
    def no_check(c_i, c_o, h, w, k_h, k_w, padding=0, stride=1, bytes_per_value=4):
        h_out = (h + 2 * padding - k_h) // stride + 1
        w_out = (w + 2 * padding - k_w) // stride + 1
        values = c_i * h * w + c_o * c_i * k_h * k_w + c_o * h_out * w_out
        return values * bytes_per_value

    _fails_with("conv2d_memory", no_check, "must raise ValueError")


def test_kernels_cross_correlated_instead_of_convolved_are_diagnosed():
    def no_flip(K1, K2):
        b_h, b_w = K2.shape[2:]
        padded = torch.nn.functional.pad(
            K1.transpose(0, 1), (b_w - 1, b_w - 1, b_h - 1, b_h - 1)
        )
        return torch.nn.functional.conv2d(padded, K2).transpose(0, 1)

    _fails_with("compose_kernels", no_flip, "cross-correlated with each other")


def test_a_combined_kernel_of_the_wrong_size_is_told_k1_plus_k2_minus_1():
    def valid_only(K1, K2):
        return torch.nn.functional.conv2d(
            K1.transpose(0, 1), K2.flip(-1, -2)
        ).transpose(0, 1)

    _fails_with("compose_kernels", valid_only, "k1 + k2 - 1")
