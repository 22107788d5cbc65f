"""Which input pixels an output sees, and how often each input pixel is used (7.2.6, 7.3.1).

Both are read off gradients: the derivative of an output with respect to the input is non-zero
exactly on the pixels that can affect it, provided no two paths cancel -- which all-positive
kernels and an all-positive input guarantee.
"""

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from convlab.ops.correlation import corr2d_vectorized
from convlab.ops.shapes import Size2, pair


def receptive_field(
    forward: Callable[[Tensor], Tensor], in_shape: Sequence[int], index: tuple[int, ...]
) -> Tensor:
    """Boolean mask of the input elements that output element `index` of `forward` depends on.

    `forward` must be built from non-negative kernels (see `stacked_ones`), so that every path
    from an input pixel to the output adds to the gradient and none cancels.
    """
    X = torch.ones(tuple(in_shape), requires_grad=True)
    (grad,) = torch.autograd.grad(forward(X)[index], X)
    return grad != 0


def stacked_ones(kernel_sizes: Sequence[Size2]) -> Callable[[Tensor], Tensor]:
    """(h, w) -> the stack of cross-correlations with all-ones kernels of the given sizes.

    The weights' values do not change which pixels are connected; ones make the connections
    count paths, which is what `receptive_field` needs.
    """

    def forward(X: Tensor) -> Tensor:
        for size in kernel_sizes:
            X = corr2d_vectorized(X, X.new_ones(pair(size)))
        return X

    return forward


def pixel_utilization(
    in_shape: Size2, kernel_size: Size2, padding: Size2 = 0, stride: Size2 = 1
) -> Tensor:
    """How many output windows use each input pixel: (h, w) counts, k_h k_w at most.

    The gradient of the sum of all outputs of an all-ones kernel counts, per pixel, the windows
    covering it. Without padding the corners are used once and the interior k_h k_w times, which
    is why border information fades layer after layer.
    """
    X = torch.ones(pair(in_shape), requires_grad=True)
    Y = corr2d_vectorized(X, torch.ones(pair(kernel_size)), padding, stride)
    (grad,) = torch.autograd.grad(Y.sum(), X)
    return grad
