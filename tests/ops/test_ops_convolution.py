"""Strict convolution vs cross-correlation, composed kernels, transposed convolution, receptive
fields (7.1.3, 7.1 ex 1/6/7, 7.2.5, 7.2.6, 7.3.1, 7.3 ex 6, 7.4 ex 1)."""

import torch
import torch.nn.functional as F
from torch import nn

from convlab.ops import (
    compose_kernels,
    convolve2d,
    convolve_fft,
    convolve_full,
    corr2d,
    corr2d_multi_in_out,
    dilate,
    example_input,
    example_kernel,
    fractional_stride_conv,
    pixel_utilization,
    receptive_field,
    split_kernel,
    stacked_ones,
)

X3, K2 = example_input(), example_kernel()


def randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_convolution_is_correlation_with_the_flipped_kernel() -> None:
    assert torch.equal(convolve2d(X3, K2), torch.tensor([[5.0, 11.0], [23.0, 29.0]]))
    assert torch.equal(convolve2d(X3, K2), corr2d(X3, K2.flip((0, 1))))
    # a strict-convolution layer that learned K' = flipped K outputs the book's figure
    assert torch.equal(convolve2d(X3, K2.flip((0, 1))), torch.tensor([[19.0, 25.0], [37.0, 43.0]]))
    X, K = randn(6, 7), randn(3, 2, seed=1)
    torch.testing.assert_close(convolve2d(X, K), corr2d(X, K.flip((0, 1))))


def test_full_convolution_by_definition_symmetry_and_fourier() -> None:
    f, g = torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.tensor([[0.0, 1.0, 0.0], [2.0, 0.0, 1.0]])
    expected = torch.tensor([[0.0, 1.0, 2.0, 0.0], [2.0, 7.0, 5.0, 2.0], [6.0, 8.0, 3.0, 4.0]])
    assert torch.equal(convolve_full(f, g), expected)
    assert torch.equal(convolve_full(g, f), expected)  # 7.1 ex 6: f * g = g * f
    f, g = randn(4, 5), randn(3, 3, seed=1)
    torch.testing.assert_close(convolve_fft(f, g), convolve_full(f, g))  # 7.1 ex 7
    # the valid part of the full convolution is the strict convolution
    torch.testing.assert_close(convolve_full(g, f)[2:4, 2:5], convolve2d(f, g))


def test_zero_size_kernel_is_a_dense_layer_per_pixel() -> None:
    X, K = randn(3, 4, 4), randn(2, 3, 1, 1, seed=1)
    linear = nn.Linear(3, 2, bias=False).double()
    linear.weight.data = K.flatten(1)
    per_pixel = linear(X.movedim(0, -1)).movedim(-1, 0)
    torch.testing.assert_close(corr2d_multi_in_out(X, K), per_pixel)


def test_two_layers_compose_into_one_larger_kernel() -> None:
    K1, K2_ = randn(3, 2, 2, 3), randn(4, 3, 3, 2, seed=1)  # (c_m, c_i, ...), (c_o, c_m, ...)
    X = randn(2, 7, 8, seed=2)
    K = compose_kernels(K1, K2_)
    assert K.shape == (4, 2, 2 + 3 - 1, 3 + 2 - 1)
    torch.testing.assert_close(F.conv2d(F.conv2d(X, K1), K2_), F.conv2d(X, K))


def test_not_every_kernel_splits_into_two_smaller_ones() -> None:
    # (1 + x^2 y^2) has no real factors of degree 1 in x and in y each
    corners = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    assert split_kernel(corners)[2] > 0.5
    # while a kernel made as a composition is found again
    made = compose_kernels(randn(1, 1, 2, 2), randn(1, 1, 2, 2, seed=1))[0, 0]
    K1, K2_, error = split_kernel(made)
    assert error < 1e-12
    torch.testing.assert_close(convolve_full(K1, K2_), made)


def test_stride_one_half_is_the_transposed_convolution() -> None:
    assert torch.equal(dilate(torch.tensor([[1.0, 2.0]]), 3), torch.tensor([[1.0, 0, 0, 2.0]]))
    Y = fractional_stride_conv(X3, K2)
    assert Y.shape == (6, 6)  # (3 - 1) * 2 + 2
    assert torch.equal(Y, F.conv_transpose2d(X3[None, None], K2[None, None], stride=2)[0, 0])
    X, K = randn(4, 5), randn(3, 2, seed=1)
    expected = F.conv_transpose2d(X[None, None], K[None, None], stride=3)[0, 0]
    torch.testing.assert_close(fractional_stride_conv(X, K, 3), expected)


def test_receptive_fields_of_the_books_example() -> None:
    one_layer = receptive_field(stacked_ones([2]), (3, 3), (0, 0))  # the output 19
    assert one_layer.sum() == 4 and one_layer[:2, :2].all()
    two_layers = receptive_field(stacked_ones([2, 2]), (3, 3), (0, 0))  # z
    assert two_layers.sum() == 9
    # each further 3x3 layer widens the field by 2 pixels per axis
    deep = receptive_field(stacked_ones([3, 3, 3]), (9, 9), (1, 1))
    assert deep.sum() == 7 * 7


def test_pixel_utilization_fades_towards_the_border() -> None:
    expected = torch.tensor([1.0, 2, 3, 3, 2, 1])
    assert torch.equal(pixel_utilization((6, 6), 3), torch.outer(expected, expected))
    assert torch.equal(pixel_utilization((6, 6), 1), torch.ones(6, 6))
    # padding k // 2 on each side spreads the use, but corners still see fewer windows
    padded = pixel_utilization((6, 6), 3, padding=1)
    assert padded[0, 0] == 4 and padded[3, 3] == 9
