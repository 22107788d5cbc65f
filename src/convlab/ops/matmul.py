"""Cross-correlation as one matrix acting on the flattened image (7.2 ex 4)."""

import torch
from torch import Tensor

from convlab.ops.padding import pad2d
from convlab.ops.shapes import Size2, pair
from convlab.ops.windows import sliding_windows


def kernel_matrix(K: Tensor, in_shape: Size2, padding: Size2 = 0, stride: Size2 = 1) -> Tensor:
    """W with vec(Y) = W vec(X) for Y = corr2d_multi_in_out(X, K): (c_o h' w', c_i h w).

    Cross-correlation is linear in X, so it is a matrix: row (o, i, j) holds the entries of K[o]
    at the pixels that window (i, j) covers and zeros elsewhere (a sparse, banded matrix with K
    repeated along its diagonals). `in_shape` is X's (h, w); `padding` is one-sided, as torch's.
    """
    c_o, c_i, k_h, k_w = K.shape
    h, w = pair(in_shape)
    n = c_i * h * w
    pixel = torch.arange(n, device=K.device).reshape(c_i, h, w)
    # the same windows as for the correlation itself, but over pixel numbers; padding pixels get
    # the number n, a spare column dropped at the end since padding contributes zero
    columns = sliding_windows(pad2d(pixel, padding, value=n), (k_h, k_w), stride)
    columns = columns.movedim(0, 2).flatten(2)  # (oh, ow, c_i kh kw), K.flatten(1)'s order
    rows = (c_o, *columns.shape)  # (c_o, oh, ow, c_i kh kw)
    W = K.new_zeros(*rows[:3], n + 1).scatter_add(
        -1, columns.expand(rows), K.flatten(1)[:, None, None, :].expand(rows)
    )
    return W[..., :n].reshape(-1, n)
