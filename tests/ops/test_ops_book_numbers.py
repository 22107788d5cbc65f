"""Every number that sections 7.2-7.5 print, reproduced exactly by the from-scratch operations."""

import pytest
import torch
from torch import nn

from convlab.ops import (
    band_image,
    comp_conv2d,
    corr2d,
    corr2d_multi_in,
    corr2d_multi_in_out,
    corr2d_multi_in_out_1x1,
    corr2d_vectorized,
    example_input,
    example_kernel,
    output_shape,
    pool2d,
)
from convlab.ops.shapes import pair

X3, K2 = example_input(), example_kernel()
X_CHANNELS, K_CHANNELS = example_input(channels=2), example_kernel(channels=2)  # (2,3,3), (2,2,2)
EDGE = torch.tensor([[1.0, -1.0]])
ARANGE16 = torch.arange(16, dtype=torch.float32).reshape((1, 1, 4, 4))

both_corr2d = pytest.mark.parametrize("correlate", [corr2d, corr2d_vectorized])


@both_corr2d
def test_corr2d_example(correlate) -> None:
    assert torch.equal(correlate(X3, K2), torch.tensor([[19.0, 25.0], [37.0, 43.0]]))


@both_corr2d
def test_edge_detection_finds_both_edges_of_the_band(correlate) -> None:
    expected = torch.zeros(6, 7)
    expected[:, 1] = 1.0  # white -> black
    expected[:, 5] = -1.0  # black -> white
    assert torch.equal(correlate(band_image(), EDGE), expected)


@both_corr2d
def test_edge_kernel_misses_horizontal_edges(correlate) -> None:
    assert torch.equal(correlate(band_image().t(), EDGE), torch.zeros(8, 5))


def test_multi_in() -> None:
    expected = torch.tensor([[56.0, 72.0], [104.0, 120.0]])
    assert torch.equal(corr2d_multi_in(X_CHANNELS, K_CHANNELS), expected)


def test_multi_in_out_stacks_three_kernels() -> None:
    K = torch.stack((K_CHANNELS, K_CHANNELS + 1, K_CHANNELS + 2), 0)
    assert K.shape == (3, 2, 2, 2)
    expected = torch.tensor(
        [
            [[56.0, 72.0], [104.0, 120.0]],
            [[76.0, 100.0], [148.0, 172.0]],
            [[96.0, 128.0], [192.0, 224.0]],
        ]
    )
    assert torch.equal(corr2d_multi_in_out(X_CHANNELS, K), expected)


def test_1x1_matmul_equals_correlation() -> None:
    generator = torch.Generator().manual_seed(0)
    X = torch.normal(0, 1, (3, 3, 3), generator=generator)
    K = torch.normal(0, 1, (2, 3, 1, 1), generator=generator)
    Y1 = corr2d_multi_in_out_1x1(X, K)
    Y2 = corr2d_multi_in_out(X, K)
    assert float(torch.abs(Y1 - Y2).sum()) < 1e-6


# (kernel_size, one-sided padding, stride) of the four nn.LazyConv2d of 7.3, and the book's shape
COMP_CONV2D_CASES = [
    (3, 1, 1, (8, 8)),
    ((5, 3), (2, 1), 1, (8, 8)),
    (3, 1, 2, (4, 4)),
    ((3, 5), (0, 1), (3, 4), (2, 2)),
]


@pytest.mark.parametrize(("kernel_size", "padding", "stride", "shape"), COMP_CONV2D_CASES)
def test_comp_conv2d_shapes(kernel_size, padding, stride, shape) -> None:
    X = torch.rand(size=(8, 8))
    conv2d = nn.Conv2d(1, 1, kernel_size=kernel_size, padding=padding, stride=stride)
    assert comp_conv2d(conv2d, X).shape == shape
    # the book's output_shape counts both sides' padding together: p = 2 * torch's padding
    total = tuple(2 * q for q in pair(padding))
    assert output_shape(8, kernel_size, total, stride) == shape
    K = torch.ones(pair(kernel_size))
    assert corr2d_vectorized(X, K, padding, stride).shape == shape
    assert corr2d(X, K, padding, stride).shape == shape


def test_pool2d_max_and_avg() -> None:
    assert torch.equal(pool2d(X3, (2, 2)), torch.tensor([[4.0, 5.0], [7.0, 8.0]]))
    assert torch.equal(pool2d(X3, (2, 2), "avg"), torch.tensor([[2.0, 3.0], [5.0, 6.0]]))


# nn.MaxPool2d(*args, **kwargs) of 7.5.2 on arange(16) as (1, 1, 4, 4), and the book's output
MAXPOOL_CASES = [
    ((3,), {}, [[[[10.0]]]]),
    ((3,), {"padding": 1, "stride": 2}, [[[[5.0, 7.0], [13.0, 15.0]]]]),
    (((2, 3),), {"stride": (2, 3), "padding": (0, 1)}, [[[[5.0, 7.0], [13.0, 15.0]]]]),
]


@pytest.mark.parametrize(("args", "kwargs", "expected"), MAXPOOL_CASES)
def test_max_pool_cases_on_arange16(args, kwargs, expected) -> None:
    expected = torch.tensor(expected)
    assert torch.equal(nn.MaxPool2d(*args, **kwargs)(ARANGE16), expected)
    # nn.MaxPool2d's stride defaults to the window, pool2d's to 1 as in the book's function
    padding, stride = kwargs.get("padding", 0), kwargs.get("stride", args[0])
    assert torch.equal(pool2d(ARANGE16, args[0], padding=padding, stride=stride), expected)


def test_max_pool_keeps_channels_apart() -> None:
    X = torch.cat((ARANGE16, ARANGE16 + 1), 1)  # (1, 2, 4, 4)
    expected = torch.tensor([[[[5.0, 7.0], [13.0, 15.0]], [[6.0, 8.0], [14.0, 16.0]]]])
    assert torch.equal(nn.MaxPool2d(3, padding=1, stride=2)(X), expected)
    assert torch.equal(pool2d(X, 3, padding=1, stride=2), expected)
