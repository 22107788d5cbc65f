"""Max- and average-pooling from scratch (section 7.5), and the min and softmax variants of its
exercises."""

from typing import Literal

import torch
from torch import Tensor

from convlab.errors import ConvlabError
from convlab.ops.padding import pad2d
from convlab.ops.shapes import Size2, pair
from convlab.ops.windows import sliding_windows

PoolMode = Literal["max", "avg"]


def pool2d(
    X: Tensor,
    pool_size: Size2,
    mode: PoolMode = "max",
    padding: Size2 = 0,
    stride: Size2 = 1,
    count_include_pad: bool = True,
) -> Tensor:
    """Y[..., i, j] = max or mean of the window at (i s_h, j s_w): (..., h, w) -> (..., h', w').

    Every leading axis (channel, batch) is pooled on its own, so channels stay channels. The
    default stride is 1, as in the book's pool2d (nn.MaxPool2d defaults to the window size).
    `padding` is one-sided and follows F.max_pool2d / F.avg_pool2d: -inf for max, so the border
    never wins; zeros for avg, counted in the mean when `count_include_pad` (torch's default),
    else the mean is over the real pixels of each window only. Padding up to k - 1 is allowed, as
    MXNet allows it (torch stops at k // 2): every window then still holds a real pixel.
    """
    if mode not in ("max", "avg"):
        raise ConvlabError(f"unknown pooling mode {mode!r}; choose 'max' or 'avg'")
    k_h, k_w = pair(pool_size)
    q_h, q_w = pair(padding)
    # a window starting at -q covers the first real pixel only if q <= k - 1
    if q_h >= k_h or q_w >= k_w:
        raise ConvlabError(
            f"padding ({q_h}, {q_w}) must be smaller than the {k_h}x{k_w} pooling window, "
            "or a window would hold padding only"
        )
    fill = float("-inf") if mode == "max" else 0.0
    windows = sliding_windows(pad2d(X, padding, fill), pool_size, stride)  # (..., oh, ow, kh, kw)
    if mode == "max":
        return windows.amax((-2, -1))
    if count_include_pad:
        return windows.mean((-2, -1))
    real = sliding_windows(pad2d(X.new_ones(X.shape[-2:]), padding), pool_size, stride)
    return windows.sum((-2, -1)) / real.sum((-2, -1))


def min_pool2d(X: Tensor, pool_size: Size2, padding: Size2 = 0, stride: Size2 = 1) -> Tensor:
    """Minimum pooling as -maxpool(-X) (7.5 ex 6): no separate layer is needed.

    min(x) = -max(-x) window by window; the -inf border of max-pooling becomes +inf here, so the
    padding never wins either.
    """
    return -pool2d(-X, pool_size, "max", padding, stride)


def softmax_pool2d(X: Tensor, pool_size: Size2, temperature: float, stride: Size2 = 1) -> Tensor:
    """Softmax pooling (7.5 ex 7): each window's values averaged with weights softmax(x / t).

    t -> 0 gives max-pooling and t -> inf average pooling; in between the output depends on the
    scale of the activations, costs an exponential per window entry where max-pooling compares,
    and spreads the gradient over the whole window -- reasons it is rarely used.
    """
    windows = sliding_windows(X, pool_size, stride).flatten(-2)  # (..., oh, ow, kh kw)
    weights = torch.softmax(windows / temperature, dim=-1)
    return (weights * windows).sum(-1)
