"""Strict convolution next to cross-correlation (7.1.3, 7.2.5) and what follows from it.

The layers of the chapter cross-correlate; the convolution of mathematics flips one operand. The
functions here compute convolutions from their definition -- the sum over f(a, b) g(i - a, j - b)
-- and never by flipping a kernel, so that "convolution = cross-correlation with a flipped
kernel" is something the tests check rather than something the code assumes.
"""

import torch
from torch import Tensor

from convlab.ops.shapes import Size2, output_shape, pair


def convolve_full(f: Tensor, g: Tensor) -> Tensor:
    """(f * g)(i, j) = sum_{a, b} f(a, b) g(i - a, j - b) wherever some term is non-zero.

    Every entry f(a, b) adds a copy of g shifted by (a, b), so f (m_h, m_w) and g (n_h, n_w) give
    (m_h + n_h - 1, m_w + n_w - 1): the "full" convolution of finite signals, zero outside them.
    One Python step per entry of f: pass the smaller operand first.
    """
    (m_h, m_w), (n_h, n_w) = f.shape, g.shape
    out = g.new_zeros(m_h + n_h - 1, m_w + n_w - 1)
    for a in range(m_h):
        for b in range(m_w):
            out[a : a + n_h, b : b + n_w] += f[a, b] * g
    return out


def convolve_fft(f: Tensor, g: Tensor) -> Tensor:
    """The full convolution by the convolution theorem: F^-1[F[f] . F[g]] (7.1 ex 7).

    The discrete Fourier transform turns *circular* convolution into a product; zero-padding both
    operands to the full output size (m + n - 1 per axis) makes the circle long enough that no
    term wraps around, so the circular result is the ordinary one.
    """
    size = (f.shape[0] + g.shape[0] - 1, f.shape[1] + g.shape[1] - 1)
    return torch.fft.irfft2(torch.fft.rfft2(f, size) * torch.fft.rfft2(g, size), size)


def convolve2d(X: Tensor, K: Tensor) -> Tensor:
    """Strict convolution where K fits inside X: Y[i, j] = sum_{a, b} K[a, b] X[i - a, j - b].

    Output pixel (i, j) sits at the kernel's far corner, i.e. reads X[i + k_h - 1 - a, ...], so
    the output has the cross-correlation's (n_h - k_h + 1, n_w - k_w + 1) positions. As in the
    definition, K's entry (a, b) meets the input pixel *opposite* to it in the window.
    """
    k_h, k_w = K.shape
    out_h, out_w = output_shape(X.shape, K.shape, 0, 1)
    Y = X.new_zeros(out_h, out_w)
    for a in range(k_h):
        for b in range(k_w):
            top, left = k_h - 1 - a, k_w - 1 - b
            Y += K[a, b] * X[top : top + out_h, left : left + out_w]
    return Y


def compose_kernels(K1: Tensor, K2: Tensor) -> Tensor:
    """The one kernel that two stacked cross-correlations amount to (7.4 ex 1).

    corr(corr(X, K1), K2)[i, j] = sum X[i + a + c, j + b + d] K1[a, b] K2[c, d]: grouping by
    u = a + c, v = b + d gives one cross-correlation whose kernel is the full convolution of K1
    and K2. With channels, K1 (c_m, c_i, k1, k1) and K2 (c_o, c_m, k2, k2) compose to
    (c_o, c_i, k1 + k2 - 1, k1 + k2 - 1), summed over the c_m channels in between.
    """
    c_m, c_i, k1_h, k1_w = K1.shape
    c_o, _, k2_h, k2_w = K2.shape
    K = K1.new_zeros(c_o, c_i, k1_h + k2_h - 1, k1_w + k2_w - 1)
    for o in range(c_o):
        for i in range(c_i):
            K[o, i] = sum(convolve_full(K1[m, i], K2[o, m]) for m in range(c_m))
    return K


def dilate(X: Tensor, factor: int) -> Tensor:
    """Insert factor - 1 zeros between neighbouring pixels, as a stride of 1/factor needs.

    (..., h, w) -> (..., (h - 1) factor + 1, (w - 1) factor + 1); pixel (i, j) lands on
    (i factor, j factor).
    """
    h, w = X.shape[-2:]
    out = X.new_zeros(*X.shape[:-2], (h - 1) * factor + 1, (w - 1) * factor + 1)
    out[..., ::factor, ::factor] = X
    return out


def fractional_stride_conv(X: Tensor, K: Tensor, factor: int = 2) -> Tensor:
    """A stride of 1/factor (7.3 ex 6): the window moves 1/factor of a pixel per output pixel.

    Read literally, the window visits `factor` positions per input pixel: the input is upsampled
    by inserting zeros between its pixels, and the full convolution with K then stamps one copy
    of K, scaled by the pixel, at (i factor, j factor) for every input pixel. That is the
    transposed convolution, F.conv_transpose2d with stride `factor`:
    (h, w) -> ((h - 1) factor + k_h, (w - 1) factor + k_w), a learnable upsampling used where a
    network must grow its maps back (segmentation, generators).
    """
    return convolve_full(K, dilate(X, factor))  # f * g = g * f; the loop runs over K's taps


def _composition_matrix(K: Tensor, size: tuple[int, int]) -> Tensor:
    """M with vec(convolve_full(E, K)) = M vec(E) for any size-shaped E: (numel out, numel E).

    Composition is bilinear, so this matrix is also the exact derivative of the composed kernel
    with respect to either factor when K is the other one (convolution commutes).
    """
    basis = torch.eye(size[0] * size[1], dtype=K.dtype).reshape(-1, *size)
    return torch.stack([convolve_full(E, K).flatten() for E in basis], dim=1)


def _fit_split(target: Tensor, start: Tensor, iterations: int) -> tuple[Tensor, Tensor, float]:
    """Levenberg-Marquardt on |convolve_full(K1, K2) - target|^2 from `start` (2, k_h, k_w).

    Each step solves the damped linearised problem [J; sqrt(damping) I] step = [r; 0] by least
    squares (full rank whatever the scale ambiguity K1 c, K2 / c); the damping shrinks after a
    step that lowers the error and grows after one that does not.
    """
    size = tuple(start.shape[1:])
    K1, K2 = start
    residual = (convolve_full(K1, K2) - target).flatten()
    damping = 1e-2
    for _ in range(iterations):
        J = torch.cat([_composition_matrix(K2, size), _composition_matrix(K1, size)], dim=1)
        eye = torch.eye(J.shape[1], dtype=J.dtype)
        A = torch.cat([J, damping**0.5 * eye])  # (out + params, params)
        b = torch.cat([residual, residual.new_zeros(J.shape[1])])
        step = torch.linalg.lstsq(A, b[:, None]).solution[:, 0].reshape(2, *size)
        trial = (convolve_full(K1 - step[0], K2 - step[1]) - target).flatten()
        if trial.square().sum() < residual.square().sum():
            K1, K2, residual = K1 - step[0], K2 - step[1], trial
            damping = max(damping / 3, 1e-12)
        else:
            damping *= 3
    return K1, K2, residual.square().sum().item()


def split_kernel(
    K: Tensor, size: Size2 = 2, starts: int = 4, seed: int = 0, iterations: int = 30
) -> tuple[Tensor, Tensor, float]:
    """The two size-shaped kernels whose composition comes closest to K, and the squared error.

    The converse of 7.4 ex 1 asks whether every kernel splits into two smaller ones. Counting says
    no -- two 2x2 kernels hold 8 numbers, a 3x3 kernel 9 -- and this search shows it on a given
    kernel: least squares over (K1, K2) from `starts` random points (float64) reaches ~0 when a
    split exists and stays away from 0 when none does. K is (k_h, k_w).
    """
    generator = torch.Generator().manual_seed(seed)
    shape = (2, *pair(size))  # K1 and K2 stacked
    inits = [torch.randn(shape, generator=generator, dtype=torch.float64) for _ in range(starts)]
    fits = [_fit_split(K.double(), init, iterations) for init in inits]
    return min(fits, key=lambda fit: fit[2])
