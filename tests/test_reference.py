"""The reference implementations: right on the book's examples and on every hidden case."""

from __future__ import annotations

import pytest
import torch

from autograder import EXERCISES, reference
from autograder.scoring import error_bound

X = torch.tensor(
    [
        [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]],
        [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]],
    ]
)
K = torch.tensor([[[0.0, 1.0], [2.0, 3.0]], [[1.0, 2.0], [3.0, 4.0]]])

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)]


def test_worked_example_of_figure_7_4_1_gives_56_72_104_120():
    assert torch.equal(
        reference.corr2d_multi_in(X, K), torch.tensor([[56.0, 72.0], [104.0, 120.0]])
    )


def test_k_k1_k2_stack_gives_three_channels_shifted_by_window_sums():
    K3 = torch.stack((K, K + 1, K + 2))
    assert K3.shape == (3, 2, 2, 2)
    expected = torch.tensor(
        [
            [[56.0, 72.0], [104.0, 120.0]],
            [[76.0, 100.0], [148.0, 172.0]],
            [[96.0, 128.0], [192.0, 224.0]],
        ]
    )
    assert torch.equal(reference.corr2d_multi_in_out(X, K3), expected)


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_reference_agrees_with_conv2d_on_every_hidden_case(name):
    ex = EXERCISES[name]
    fn = getattr(reference, name)
    for case in ex.cases:
        Xc, Kc = case.inputs()
        Y = fn(Xc, Kc)
        diff = (Y.double() - ex.oracle(Xc, Kc)).abs()
        assert bool((diff <= error_bound(ex, Xc, Kc, Y.dtype)).all()), case.describe()


def test_1x1_matmul_equals_general_function_elementwise():
    gen = torch.Generator().manual_seed(7)
    Xr = torch.randn((3, 3, 3), generator=gen)
    Kr = torch.randn((2, 3, 1, 1), generator=gen)
    torch.testing.assert_close(
        reference.corr2d_multi_in_out_1x1(Xr, Kr), reference.corr2d_multi_in_out(Xr, Kr)
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_reference_keeps_dtype_and_device(name, dtype, device):
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    case = EXERCISES[name].cases[0]
    Xc, Kc = case.inputs(device)
    Y = getattr(reference, name)(Xc.to(dtype), Kc.to(dtype))
    assert (Y.dtype, Y.device.type) == (dtype, device)


@pytest.mark.parametrize(
    ("name", "kernel"),
    [
        ("corr2d_multi_in", K),
        ("corr2d_multi_in_out", K[None]),
        ("corr2d_multi_in_out_1x1", torch.ones(1, 2, 1, 1)),
    ],
)
def test_batched_input_raises_value_error_naming_the_expected_shape(name, kernel):
    with pytest.raises(
        ValueError, match=r"X must have shape \(c_i, h, w\); got \(1, 2, 3, 3\)"
    ):
        getattr(reference, name)(X[None], kernel)


def test_1x1_rejects_a_larger_kernel():
    with pytest.raises(
        ValueError, match=r"K must have shape \(c_o, 2, 1, 1\); got \(1, 2, 2, 2\)"
    ):
        reference.corr2d_multi_in_out_1x1(X, K[None])
