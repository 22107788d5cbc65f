"""Cross-correlation with several input and output channels (section 7.4)."""

import torch
from torch import Tensor

from convlab.errors import ConvlabError
from convlab.ops.correlation import corr2d
from convlab.ops.shapes import Size2
from convlab.ops.windows import im2col


def corr2d_multi_in_out(X: Tensor, K: Tensor, padding: Size2 = 0, stride: Size2 = 1) -> Tensor:
    """Y[o] = sum_c corr2d(X[c], K[o, c]), with X (..., c_i, h, w) and K (c_o, c_i, k_h, k_w).

    Each output channel has its own c_i-slice kernel and sums over all input channels; the result
    is (..., c_o, h', w'). Written as
    one matrix product over the windows (im2col), which is how it stays close to F.conv2d's speed;
    `padding` is one-sided, as torch's.
    """
    columns = im2col(X, K.shape[-2:], padding, stride)  # (..., c_i kh kw, oh, ow)
    Y = K.flatten(1) @ columns.flatten(-2)  # (c_o, c_i kh kw) @ (..., c_i kh kw, oh ow)
    return Y.unflatten(-1, columns.shape[-2:])  # (..., c_o, oh, ow)


def corr2d_multi_in(X: Tensor, K: Tensor, padding: Size2 = 0, stride: Size2 = 1) -> Tensor:
    """Y = sum_c corr2d(X[c], K[c]): (..., c_i, h, w), (c_i, k_h, k_w) -> (..., h', w').

    One output channel: the case c_o = 1 of `corr2d_multi_in_out`, so it reuses that.
    """
    return corr2d_multi_in_out(X, K.unsqueeze(0), padding, stride).squeeze(-3)


def corr2d_multi_in_out_1x1(X: Tensor, K: Tensor) -> Tensor:
    """Y[o, i, j] = sum_c K[o, c] X[c, i, j]: a 1x1 kernel mixes channels pixel by pixel.

    Every pixel is then an independent c_i-vector, so the layer is the (c_o, c_i) matrix times the
    pixels laid out as columns (c_i, h w) -- a fully connected layer shared across positions.
    """
    c_o, c_i, k_h, k_w = K.shape
    if (k_h, k_w) != (1, 1):
        raise ConvlabError(f"corr2d_multi_in_out_1x1 needs a 1x1 kernel, got {k_h}x{k_w}")
    Y = K.reshape(c_o, c_i) @ X.flatten(-2)  # (c_o, c_i) @ (..., c_i, h w) -> (..., c_o, h w)
    return Y.unflatten(-1, X.shape[-2:])


def corr2d_grouped_1x1(X: Tensor, blocks: Tensor) -> Tensor:
    """A 1x1 convolution whose (c_o, c_i) matrix is block-diagonal (7.4 ex 7): torch's groups.

    `blocks` (b, c_o / b, c_i / b) holds the diagonal blocks; channel group g of the output mixes
    only channel group g of the input, so the layer needs c_o c_i / b multiply-adds per pixel
    instead of c_o c_i -- b times faster -- but information never crosses groups.
    X (..., c_i, h, w) -> (..., c_o, h, w).
    """
    b, _, c_per_group = blocks.shape
    groups = X.unflatten(-3, (b, c_per_group)).flatten(-2)  # (..., b, c_i / b, h w)
    Y = blocks @ groups  # (b, c_o/b, c_i/b) @ (..., b, c_i/b, h w) -> (..., b, c_o/b, h w)
    return Y.flatten(-3, -2).unflatten(-1, X.shape[-2:])  # (..., c_o, h, w)


def channel_shuffle(X: Tensor, groups: int) -> Tensor:
    """Interleave b = `groups` channel groups: channel g (c / b) + j moves to j b + g.

    The fix for block-diagonal layers (ShuffleNet): after a shuffle, the next grouped layer's
    group j reads one channel from every group of the previous one, so two grouped layers with a
    shuffle between them connect every input channel to every output channel. (..., c, h, w)
    keeps its shape.
    """
    c = X.shape[-3]
    return X.unflatten(-3, (groups, c // groups)).transpose(-4, -3).flatten(-4, -3)


def corr2d_multi_in_out_loop(X: Tensor, K: Tensor) -> Tensor:
    """The book's corr2d_multi_in_out: channel by channel, the c_i maps summed in order.

    Same values as the matrix-product version in exact arithmetic; in floating point the two add
    the products in different orders, which is why the book compares them with a tolerance
    (7.4 ex 4). X (c_i, h, w), K (c_o, c_i, k_h, k_w) -> (c_o, h', w').
    """
    return torch.stack([sum(corr2d(x, k) for x, k in zip(X, K_o, strict=True)) for K_o in K])
