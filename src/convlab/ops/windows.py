"""Sliding windows as strided views: the one piece that correlation and pooling share."""

from torch import Tensor

from convlab.ops.padding import pad2d
from convlab.ops.shapes import Size2, output_shape, pair


def sliding_windows(X: Tensor, window: Size2, stride: Size2 = 1) -> Tensor:
    """Every k_h x k_w window of the last two axes: (..., h, w) -> (..., out_h, out_w, k_h, k_w).

    Window (i, j) starts at pixel (i s_h, j s_w). Tensor.unfold only re-strides memory, so the
    windows share X's storage and autograd sends each window's gradient to the pixels it covers.
    """
    k_h, k_w = pair(window)
    s_h, s_w = pair(stride)
    output_shape(X.shape[-2:], (k_h, k_w), 0, (s_h, s_w))  # a clear error if the window overhangs
    return X.unfold(-2, k_h, s_h).unfold(-2, k_w, s_w)


def im2col(X: Tensor, window: Size2, padding: Size2 = 0, stride: Size2 = 1) -> Tensor:
    """Windows as columns: (..., c, h, w) -> (..., c k_h k_w, out_h, out_w), zero-padded per side.

    With the pixels of each window stacked in one column, cross-correlation with any kernel is a
    single matrix product: K.reshape(c_o, c k_h k_w) @ columns (7.4 ex 5).
    """
    windows = sliding_windows(pad2d(X, padding), window, stride)  # (..., c, oh, ow, kh, kw)
    windows = windows.movedim((-2, -1), (-4, -3))  # (..., c, kh, kw, oh, ow)
    return windows.flatten(-5, -3)  # (..., c kh kw, oh, ow), a copy: the windows overlap
