"""Reference implementations of the three graded functions.

They are the instructor's truth: the solution notebooks must agree with them (a test checks it),
and, unlike ``d2l.corr2d``, they keep the input's dtype and device, so float64 stays float64
and a GPU tensor stays on the GPU.
"""

from __future__ import annotations

import torch


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
