"""Hand-designed kernels: edges, second derivatives, blur (7.2 ex 2)."""

import math
from collections.abc import Sequence

import torch
from torch import Tensor


def derivative_kernel(order: int) -> Tensor:
    """Forward difference of order d: sum_k (-1)^(d-k) C(d, k) x[j + k] ~ the d-th derivative.

    d + 1 taps is the minimum size: the stencil must vanish on polynomials of degree < d yet not
    on x^d (where it gives d!), and d taps always fit a degree d - 1 polynomial through them.
    """
    taps = [(-1) ** (order - k) * math.comb(order, k) for k in range(order + 1)]
    return torch.tensor(taps, dtype=torch.float32)


def _along_axes(stencil: Tensor, w_x: float, w_y: float) -> Tensor:
    """w_x * stencil along x + w_y * stencil along y, in an n x n kernel (n = stencil length).

    x runs along columns and y down the rows; the stencil lies on the middle row and column, so a
    symmetric stencil gives a kernel centred on its output pixel.
    """
    n = stencil.numel()
    along_x = torch.zeros(n, n)
    along_x[(n - 1) // 2] = stencil
    return w_x * along_x + w_y * along_x.T


def edge_kernel(direction: Sequence[float]) -> Tensor:
    """2x2 kernel for the derivative along v = (v_x, v_y): v_x dX/dx + v_y dX/dy, |v| scaled to 1.

    It answers to brightness changing along v, i.e. to edges running across v, and gives zero on
    flat regions and on edges parallel to v. The book's [1, -1] is v = (-1, 0) on a single row.
    """
    v_x, v_y = (c / math.hypot(*direction) for c in direction)
    return _along_axes(derivative_kernel(1), v_x, v_y)


def laplacian_kernel() -> Tensor:
    """d2X/dx2 + d2X/dy2 as [1, -2, 1] along both axes: [[0, 1, 0], [1, -4, 1], [0, 1, 0]].

    3x3 is the smallest (a second difference needs three taps per axis). It is zero on flat and on
    linear ramps, and strongest on isolated dots and thin lines, where the curvature is highest.
    """
    return _along_axes(derivative_kernel(2), 1.0, 1.0)


def blur_kernel(size: int = 3, sigma: float = 1.0) -> Tensor:
    """Gaussian weights exp(-(a^2 + b^2) / (2 sigma^2)) around the centre, normalised to sum 1.

    A weighted local mean: flat regions pass unchanged while pixel noise and fine detail average
    out, e.g. before a derivative kernel, which would amplify the noise.
    """
    t = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-(t**2) / (2 * sigma**2))
    return torch.outer(g, g) / g.sum() ** 2
