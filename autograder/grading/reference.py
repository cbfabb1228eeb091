"""Reference implementations of the graded functions (sections 7.4.1-7.4.3 and the exercises).

They are the instructor's truth: the solution notebooks must agree with them (a test checks it),
and, unlike ``d2l.corr2d``, they keep the input's dtype and device, so float64 stays float64
and a GPU tensor stays on the GPU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _expect_dims(name: str, tensor: torch.Tensor, dims: int, layout: str) -> None:
    if not isinstance(tensor, torch.Tensor) or tensor.dim() != dims:
        got = (
            tuple(tensor.shape)
            if isinstance(tensor, torch.Tensor)
            else type(tensor).__name__
        )
        raise ValueError(f"{name} must have shape {layout}; got {got}")


def corr2d_multi_in(X: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Cross-correlate X (c_i, h, w) with K (c_i, k_h, k_w), summed over channels (sec. 7.4.1)."""
    _expect_dims("X", X, 3, "(c_i, h, w)")
    _expect_dims("K", K, 3, "(c_i, k_h, k_w)")
    if X.shape[0] != K.shape[0]:
        raise ValueError(f"X has {X.shape[0]} channels but K has {K.shape[0]}")
    _, h, w = X.shape
    _, k_h, k_w = K.shape
    out_h, out_w = h - k_h + 1, w - k_w + 1
    Y = X.new_zeros((out_h, out_w))
    # One shifted copy of X per kernel offset: k_h * k_w tensor operations instead of a
    # Python loop over output pixels, and every intermediate keeps X's dtype and device.
    for a in range(k_h):
        for b in range(k_w):
            window = X[:, a : a + out_h, b : b + out_w]
            Y += (window * K[:, a, b, None, None]).sum(dim=0)
    return Y


def corr2d_multi_in_out(X: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """One ``corr2d_multi_in`` per output channel of K (c_o, c_i, k_h, k_w) (sec. 7.4.2)."""
    _expect_dims("X", X, 3, "(c_i, h, w)")
    _expect_dims("K", K, 4, "(c_o, c_i, k_h, k_w)")
    return torch.stack([corr2d_multi_in(X, k) for k in K], dim=0)


def corr2d_multi_in_out_1x1(X: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """A 1x1 convolution as one matrix product: (c_o, c_i) @ (c_i, h*w) (sec. 7.4.3)."""
    _expect_dims("X", X, 3, "(c_i, h, w)")
    _expect_dims("K", K, 4, "(c_o, c_i, 1, 1)")
    if K.shape[2:] != (1, 1) or K.shape[1] != X.shape[0]:
        raise ValueError(
            f"K must have shape (c_o, {X.shape[0]}, 1, 1); got {tuple(K.shape)}"
        )
    c_i, h, w = X.shape
    c_o = K.shape[0]
    return (K.reshape(c_o, c_i) @ X.reshape(c_i, h * w)).reshape(c_o, h, w)


def corr2d_multi_in_out_matmul(X: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Any k_h x k_w convolution as one matrix product (im2col, exercise 7.4.5.1).

    Column (i, j) of the patch matrix holds the c_i * k_h * k_w inputs under the window at
    output pixel (i, j), in the same (channel, row, column) order as a row of K flattened.
    """
    _expect_dims("X", X, 3, "(c_i, h, w)")
    _expect_dims("K", K, 4, "(c_o, c_i, k_h, k_w)")
    if K.shape[1] != X.shape[0]:
        raise ValueError(f"X has {X.shape[0]} channels but K has {K.shape[1]}")
    c_i, h, w = X.shape
    c_o, _, k_h, k_w = K.shape
    out_h, out_w = h - k_h + 1, w - k_w + 1
    # k_h * k_w shifted views, stacked to (c_i, k_h, k_w, out_h, out_w): no Python loop
    # over pixels, and each view keeps X's dtype and device.
    patches = torch.stack(
        [X[:, a : a + out_h, b : b + out_w] for a in range(k_h) for b in range(k_w)],
        dim=1,
    ).reshape(c_i * k_h * k_w, out_h * out_w)
    return (K.reshape(c_o, c_i * k_h * k_w) @ patches).reshape(c_o, out_h, out_w)


def compose_kernels(K1: torch.Tensor, K2: torch.Tensor) -> torch.Tensor:
    """The one kernel K with corr(corr(X, K1), K2) == corr(X, K) (exercise 7.4.5.4).

    K1 is (c_mid, c_i, a_h, a_w), K2 is (c_o, c_mid, b_h, b_w); K is
    (c_o, c_i, a_h + b_h - 1, a_w + b_w - 1) with K[o, i] = sum over m of the full *convolution*
    of K2[o, m] and K1[m, i]. Written as a cross-correlation of the zero-padded K1 with the
    flipped K2, which keeps the dtype and device of the inputs.
    """
    _expect_dims("K1", K1, 4, "(c_mid, c_i, a_h, a_w)")
    _expect_dims("K2", K2, 4, "(c_o, c_mid, b_h, b_w)")
    if K2.shape[1] != K1.shape[0]:
        raise ValueError(
            f"K2 expects {K2.shape[1]} input channels but K1 has {K1.shape[0]} outputs"
        )
    b_h, b_w = K2.shape[2:]
    padded = F.pad(K1.transpose(0, 1), (b_w - 1, b_w - 1, b_h - 1, b_h - 1))
    return F.conv2d(padded, K2.flip(-1, -2)).transpose(0, 1)


def conv2d_output_size(
    h: int, w: int, k_h: int, k_w: int, padding: int = 0, stride: int = 1
) -> tuple[int, int]:
    """Output height and width with ``padding`` rows/columns on every side (section 7.3)."""
    if min(h, w, k_h, k_w, stride) < 1 or padding < 0:
        raise ValueError("sizes and stride must be positive and padding non-negative")
    if k_h > h + 2 * padding or k_w > w + 2 * padding:
        raise ValueError(
            f"a {k_h}x{k_w} kernel does not fit a {h}x{w} input with padding {padding}"
        )
    return (h + 2 * padding - k_h) // stride + 1, (w + 2 * padding - k_w) // stride + 1


def conv2d_multiplications(
    c_i: int,
    c_o: int,
    h: int,
    w: int,
    k_h: int,
    k_w: int,
    padding: int = 0,
    stride: int = 1,
) -> int:
    """Products in one forward pass: c_i * k_h * k_w for each of the c_o * h_out * w_out outputs.

    Products with padded zeros count: a plain implementation computes them.
    """
    h_out, w_out = conv2d_output_size(h, w, k_h, k_w, padding, stride)
    return c_o * h_out * w_out * c_i * k_h * k_w


def conv2d_additions(
    c_i: int,
    c_o: int,
    h: int,
    w: int,
    k_h: int,
    k_w: int,
    padding: int = 0,
    stride: int = 1,
) -> int:
    """Additions in one forward pass without bias: summing n products takes n - 1 additions."""
    h_out, w_out = conv2d_output_size(h, w, k_h, k_w, padding, stride)
    return c_o * h_out * w_out * (c_i * k_h * k_w - 1)


def conv2d_memory(
    c_i: int,
    c_o: int,
    h: int,
    w: int,
    k_h: int,
    k_w: int,
    padding: int = 0,
    stride: int = 1,
    bytes_per_value: int = 4,
) -> int:
    """Bytes held by one forward pass: input, kernel and output (the padding is not stored)."""
    h_out, w_out = conv2d_output_size(h, w, k_h, k_w, padding, stride)
    values = c_i * h * w + c_o * c_i * k_h * k_w + c_o * h_out * w_out
    return values * bytes_per_value
