"""Cross-correlation with several input and output channels (section 7.4)."""

from torch import Tensor

from convlab.errors import ConvlabError
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
