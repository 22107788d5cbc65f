"""Pooling rebuilt from convolutions and ReLUs (7.5 ex 1 and ex 3)."""

import math

import torch
from torch import Tensor

from convlab.ops.correlation import corr2d_vectorized
from convlab.ops.shapes import Size2, pair


def avg_pool_as_conv(X: Tensor, pool_size: Size2, padding: Size2 = 0, stride: Size2 = 1) -> Tensor:
    """Average pooling = cross-correlation of each channel with the constant kernel 1 / (k_h k_w).

    The mean of a window is a weighted sum with equal weights, so it is a convolution, one that
    treats every channel alike and learns nothing. Its zero padding is counted in the mean:
    pool2d(..., mode='avg', count_include_pad=True).
    """
    k_h, k_w = pair(pool_size)
    return corr2d_vectorized(X, X.new_full((k_h, k_w), 1 / (k_h * k_w)), padding, stride)


def relu_max(a: Tensor, b: Tensor) -> Tensor:
    """max(a, b) = a + relu(b - a): the ReLU passes the excess b - a only where b wins."""
    return a + torch.relu(b - a)


def _one_hot(length: int, axis: int) -> Tensor:
    """Kernel [1, 0, ..., 0] of `length` taps along `axis` (-1: a row, -2: a column)."""
    K = torch.zeros(length)
    K[0] = 1.0
    return K[None] if axis == -1 else K[:, None]


def _along(axis: int, stride: int) -> tuple[int, int]:
    """A (s_h, s_w) stride that steps `stride` along `axis` and 1 along the other axis."""
    return (1, stride) if axis == -1 else (stride, 1)


def _neighbour_max(X: Tensor, shift: int, axis: int, stride: int) -> Tensor:
    """max(pixel, pixel `shift` further along `axis`), by two convolutions and one ReLU.

    The one-hot kernel [1, 0, ..., 0] copies the first pixel of each window and its flip the last,
    so their `relu_max` is the pairwise maximum; the window is shift + 1 long.
    """
    first = _one_hot(shift + 1, axis).to(X)
    return relu_max(
        corr2d_vectorized(X, first, stride=_along(axis, stride)),
        corr2d_vectorized(X, first.flip((-2, -1)), stride=_along(axis, stride)),
    )


def _running_max(X: Tensor, k: int, axis: int, stride: int) -> Tensor:
    """Max over k neighbours along `axis` by ceil(log2 k) pairwise-maximum levels.

    Level by level the covered width w grows to w + min(w, k - w): two overlapping maxima of
    width w make one of up to 2w. Only the last level strides, because the earlier ones feed
    windows that start at every pixel.
    """
    if k == 1:  # no maximum to take, only the stride
        return corr2d_vectorized(X, _one_hot(1, axis).to(X), stride=_along(axis, stride))
    width = 1
    while width < k:
        shift = min(width, k - width)
        width += shift
        X = _neighbour_max(X, shift, axis, stride if width == k else 1)
    return X


def relu_levels(pool_size: Size2) -> int:
    """Pairwise-maximum levels (each: conv, ReLU) for a k_h x k_w max-pool: 2x2 -> 2, 3x3 -> 4."""
    return sum(math.ceil(math.log2(k)) for k in pair(pool_size))


def max_pool_relu(X: Tensor, pool_size: Size2, stride: Size2 = 1) -> Tensor:
    """k_h x k_w max-pooling from convolutions and ReLUs only (7.5 ex 3).

    Maxima along the rows, then down the columns: `relu_levels(pool_size)` levels of
    max(a, b) = a + relu(b - a). Each level needs two channels -- the copy a and the difference
    b - a, which the ReLU acts on -- or three with a ReLU on every channel, since
    a = relu(a) - relu(-a). Equals F.max_pool2d(X, pool_size, stride): (..., h, w) -> (..., h', w').
    """
    (k_h, k_w), (s_h, s_w) = pair(pool_size), pair(stride)
    rows = _running_max(X, k_w, -1, s_w)  # (..., h, w')
    return _running_max(rows, k_h, -2, s_h)  # (..., h', w')


def max_pool2x2_relu(X: Tensor, stride: Size2 = 2) -> Tensor:
    """2x2 max-pooling from convolutions and ReLUs: max of 4 = max of two pairwise maxima.

    The 2x2 case of `max_pool_relu`: one level along the rows, one down the columns. Equals
    F.max_pool2d(X, 2, stride) with (..., h, w) -> (..., h', w').
    """
    return max_pool_relu(X, 2, stride)
