"""The reference implementations: right on the book's examples and on every hidden case."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from autograder import EXERCISES
from autograder.grading import reference
from autograder.grading.scoring import error_bound

X = torch.tensor(
    [
        [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]],
        [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]],
    ]
)
K = torch.tensor([[[0.0, 1.0], [2.0, 3.0]], [[1.0, 2.0], [3.0, 4.0]]])

# The `gpu` mark selects these on a GPU machine (benchmarks/gpu_run.sh); elsewhere they skip.
CUDA = pytest.param(
    "cuda",
    marks=(
        pytest.mark.gpu,
        pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
    ),
)
DEVICES = ["cpu", CUDA]


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


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    "name", sorted(n for n, ex in EXERCISES.items() if ex.kind == "conv")
)
def test_reference_agrees_with_conv2d_on_every_hidden_case(name, device):
    """Within the grader's error bound on either device: a GPU sums in another order."""
    ex = EXERCISES[name]
    fn = getattr(reference, name)
    # As in the notebooks: true float32, not TensorFloat-32, in cuDNN's convolutions.
    with torch.backends.cudnn.flags(allow_tf32=False):
        for case in ex.cases:
            Xc, Kc = case.inputs(device)
            Y = fn(Xc, Kc)
            assert Y.device.type == device
            diff = (Y.to("cpu", torch.float64) - ex.oracle(Xc, Kc)).abs()
            bound = error_bound(ex, Xc, Kc, Y.dtype)
            assert bool((diff <= bound).all()), case.describe()


def test_1x1_matmul_equals_general_function_elementwise():
    gen = torch.Generator().manual_seed(7)
    Xr = torch.randn((3, 3, 3), generator=gen)
    Kr = torch.randn((2, 3, 1, 1), generator=gen)
    torch.testing.assert_close(
        reference.corr2d_multi_in_out_1x1(Xr, Kr), reference.corr2d_multi_in_out(Xr, Kr)
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    "name", sorted(n for n, ex in EXERCISES.items() if ex.kind != "count")
)
def test_reference_keeps_dtype_and_device(name, dtype, device):
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


def test_im2col_matmul_gives_the_k_k1_k2_stack_like_the_loops():
    K3 = torch.stack((K, K + 1, K + 2))
    assert torch.equal(
        reference.corr2d_multi_in_out_matmul(X, K3),
        reference.corr2d_multi_in_out(X, K3),
    )


def test_box_blur_then_difference_is_one_2x3_edge_kernel():
    box = torch.ones(1, 1, 2, 2)
    difference = torch.tensor([[[[1.0, -1.0]]]])
    expected = torch.tensor([[[[1.0, 0.0, -1.0], [1.0, 0.0, -1.0]]]])
    assert torch.equal(reference.compose_kernels(box, difference), expected)


@pytest.mark.parametrize("case", EXERCISES["compose_kernels"].cases[1:])
def test_composed_kernel_equals_two_convolutions_on_random_images(case):
    K1, K2 = (t.double() for t in case.inputs())
    image = torch.randn(
        K1.shape[1], 12, 11, generator=torch.Generator().manual_seed(7)
    ).double()
    two_steps = F.conv2d(F.conv2d(image[None], K1), K2)[0]
    one_step = F.conv2d(image[None], reference.compose_kernels(K1, K2))[0]
    assert one_step.shape == two_steps.shape
    # float64: both sides sum a few dozen products of O(1) numbers in different orders.
    torch.testing.assert_close(one_step, two_steps, rtol=1e-12, atol=1e-12)


def test_costs_of_the_worked_example_counted_by_hand():
    # c_i = 2, c_o = 3, a 3 x 3 image, 2 x 2 kernels: 3 * 2 * 2 = 12 outputs, 8 products each.
    sizes = {"c_i": 2, "c_o": 3, "h": 3, "w": 3, "k_h": 2, "k_w": 2}
    assert reference.conv2d_multiplications(**sizes) == 12 * 8
    assert reference.conv2d_additions(**sizes) == 12 * 7
    # 18 input values + 24 weights + 12 outputs, 4 bytes each in float32.
    assert reference.conv2d_memory(**sizes) == (18 + 24 + 12) * 4


@pytest.mark.parametrize(
    ("sizes", "expected"),
    [
        ((5, 5, 5, 5, 0, 1), (1, 1)),  # kernel as large as the input
        ((10, 9, 2, 2, 0, 3), (3, 3)),  # stride larger than the kernel skips pixels
        ((3, 3, 5, 5, 1, 1), (1, 1)),  # fits only once padded
        ((224, 224, 7, 7, 3, 2), (112, 112)),  # a ResNet stem
    ],
)
def test_output_size_matches_conv2d(sizes, expected):
    h, w, k_h, k_w, padding, stride = sizes
    assert reference.conv2d_output_size(*sizes) == expected
    Y = F.conv2d(
        torch.zeros(1, 1, h, w),
        torch.zeros(1, 1, k_h, k_w),
        padding=padding,
        stride=stride,
    )
    assert tuple(Y.shape[2:]) == expected


def test_a_kernel_that_does_not_fit_raises_valueerror():
    with pytest.raises(ValueError, match="does not fit"):
        reference.conv2d_output_size(3, 3, 5, 5)
