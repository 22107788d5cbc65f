"""Max- and average-pooling from scratch (section 7.5)."""

from typing import Literal

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
    else the mean is over the real pixels of each window only.
    """
    if mode not in ("max", "avg"):
        raise ConvlabError(f"unknown pooling mode {mode!r}; choose 'max' or 'avg'")
    k_h, k_w = pair(pool_size)
    q_h, q_w = pair(padding)
    # torch's rule; it also guarantees every window holds a real pixel
    if 2 * q_h > k_h or 2 * q_w > k_w:
        raise ConvlabError(f"padding ({q_h}, {q_w}) is over half the {k_h}x{k_w} pooling window")
    fill = float("-inf") if mode == "max" else 0.0
    windows = sliding_windows(pad2d(X, padding, fill), pool_size, stride)  # (..., oh, ow, kh, kw)
    if mode == "max":
        return windows.amax((-2, -1))
    if count_include_pad:
        return windows.mean((-2, -1))
    real = sliding_windows(pad2d(X.new_ones(X.shape[-2:]), padding), pool_size, stride)
    return windows.sum((-2, -1)) / real.sum((-2, -1))
