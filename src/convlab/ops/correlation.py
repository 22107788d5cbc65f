"""Two-dimensional cross-correlation of one channel with one kernel (sections 7.2 and 7.3)."""

from collections.abc import Callable

import torch
from torch import Tensor, nn

from convlab.ops.costs import strip_plan
from convlab.ops.padding import pad2d
from convlab.ops.shapes import Size2, output_shape, pair
from convlab.ops.windows import sliding_windows


def corr2d(X: Tensor, K: Tensor, padding: Size2 = 0, stride: Size2 = 1) -> Tensor:
    """Y[i, j] = sum_{a, b} X[i s_h + a, j s_w + b] K[a, b], one output pixel per loop iteration.

    The book's nested loop, kept for teaching: it reads like the formula but runs out_h * out_w
    small Python steps (use `corr2d_vectorized` for real work). X is (h, w), zero-padded with
    `padding` rows/columns on each side (torch's convention) before the window slides.
    """
    X = pad2d(X, padding)
    s_h, s_w = pair(stride)
    k_h, k_w = K.shape
    Y = X.new_zeros(output_shape(X.shape, K.shape, 0, stride))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i * s_h : i * s_h + k_h, j * s_w : j * s_w + k_w] * K).sum()
    return Y


def corr2d_vectorized(X: Tensor, K: Tensor, padding: Size2 = 0, stride: Size2 = 1) -> Tensor:
    """The same sum as `corr2d`, over all windows at once: (..., h, w) -> (..., out_h, out_w).

    Leading axes are independent images, so a (c, h, w) stack is filtered channel by channel with
    the one (k_h, k_w) kernel. Built from strided views and a product, it is differentiable.
    """
    windows = sliding_windows(pad2d(X, padding), K.shape, stride)  # (..., oh, ow, kh, kw)
    return (windows * K).sum((-2, -1))


def corr2d_in_strips(X: Tensor, K: Tensor, delta: int) -> Tensor:
    """The same (h', w') output as `corr2d`, computed `delta` output columns at a time (7.4 ex 6).

    Each strip reads only the k_w + delta - 1 input columns its windows cover, as a kernel that
    keeps the strip in fast memory would; `strip_plan` says which, and `strip_reads_per_output`
    what that saves.
    """
    plan = strip_plan(X.shape[1], K.shape[1], delta)
    return torch.cat([corr2d_vectorized(X[:, columns], K) for columns, _ in plan], dim=1)


class Conv2D(nn.Module):
    """y = corr2d(x, weight) + bias, the book's layer of 7.2.2 with both terms learnable.

    The weight starts uniform in [0, 1) as in the book; `generator` makes that draw repeatable.
    `bias=False` drops the bias, as the book's kernel-learning demo does.
    """

    def __init__(
        self, kernel_size: Size2, bias: bool = True, generator: torch.Generator | None = None
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.rand(pair(kernel_size), generator=generator))
        if bias:
            self.bias = nn.Parameter(torch.zeros(1))
        else:
            self.register_parameter("bias", None)

    def forward(self, x: Tensor) -> Tensor:
        y = corr2d_vectorized(x, self.weight)
        return y if self.bias is None else y + self.bias


def comp_conv2d(conv2d: Callable[[Tensor], Tensor], X: Tensor) -> Tensor:
    """Run a batch-and-channel layer (nn.Conv2d) on one (h, w) image and return its (h', w') map.

    The book's helper of 7.3: torch layers want (batch, channel, h, w), so X gets two leading
    axes of size 1 and the output loses them again.
    """
    Y = conv2d(X.reshape((1, 1, *X.shape)))
    return Y.reshape(Y.shape[2:])
