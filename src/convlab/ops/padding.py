"""Padding the last two axes: with a constant (what convolution and pooling assume) or a mirror."""

import torch
from torch import Tensor

from convlab.errors import ConvlabError
from convlab.ops.shapes import Size2, pair


def pad2d(X: Tensor, padding: Size2, value: float = 0.0) -> Tensor:
    """Surround the last two axes with `value`, `padding` = (q_h, q_w) rows/columns on *each* side.

    One-sided, as torch's `padding` (the book's total p_h is 2 q_h). Zeros are what a convolution
    sees beyond the border; -inf lets max-pooling ignore the border, as F.max_pool2d does.
    """
    q_h, q_w = pair(padding)
    if q_h == q_w == 0:
        return X
    h, w = X.shape[-2:]
    out = X.new_full((*X.shape[:-2], h + 2 * q_h, w + 2 * q_w), value)
    # writing X into a slice keeps autograd's path back to X
    out[..., q_h : q_h + h, q_w : q_w + w] = X
    return out


def _mirror_index(n: int, q: int, device: torch.device) -> Tensor:
    """Source index of each position -q .. n+q-1 of an axis of length n, reflected at both ends."""
    i = torch.arange(-q, n + q, device=device).abs()  # -1 -> 1: reflect about index 0
    return (n - 1) - (n - 1 - i).abs()  # n -> n - 2: reflect about index n - 1


def mirror_pad2d(X: Tensor, padding: Size2) -> Tensor:
    """Mirror padding (7.3 ex 3): X[-i] = X[i] and X[n-1+i] = X[n-1-i], one-sided `padding`.

    The border pixel is the mirror's axis and is not repeated (torch's mode='reflect'), so an edge
    or a smooth gradient continues past the border instead of meeting an artificial black frame.
    """
    q_h, q_w = pair(padding)
    h, w = X.shape[-2:]
    if q_h >= h or q_w >= w:
        raise ConvlabError(f"mirror padding ({q_h}, {q_w}) must be smaller than the {h}x{w} input")
    rows = _mirror_index(h, q_h, X.device)
    cols = _mirror_index(w, q_w, X.device)
    return X.index_select(-2, rows).index_select(-1, cols)
