"""Pooling rebuilt from convolutions and ReLUs (7.5 ex 1 and ex 3)."""

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


def _neighbour_max(X: Tensor, first: Tensor, stride: tuple[int, int]) -> Tensor:
    """max(pixel, next pixel along one axis); one-hot kernels [1, 0] and [0, 1] pick out the two."""
    second = first.flip((-2, -1))
    return relu_max(
        corr2d_vectorized(X, first, stride=stride), corr2d_vectorized(X, second, stride=stride)
    )


def max_pool2x2_relu(X: Tensor, stride: Size2 = 2) -> Tensor:
    """2x2 max-pooling from convolutions and ReLUs only: max of 4 = max of two pairwise maxima.

    A one-hot kernel copies one pixel of each window, so max over a horizontal pair is two
    convolutions and a ReLU (`relu_max`); the same step down the rows finishes the 2x2 window.
    Equals F.max_pool2d(X, 2, stride) with (..., h, w) -> (..., h', w').
    """
    s_h, s_w = pair(stride)
    pairs = _neighbour_max(X, X.new_tensor([[1.0, 0.0]]), (1, s_w))  # (..., h, w')
    return _neighbour_max(pairs, X.new_tensor([[1.0], [0.0]]), (s_h, 1))  # (..., h', w')
