"""Every number that sections 7.2-7.5 print, reproduced exactly by the from-scratch operations."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from convlab.models.lenet import LeNet
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
    framed_image,
    kernel_matrix,
    output_shape,
    pool2d,
    stacked_output_shape,
)
from convlab.ops.shapes import pair
from convlab.summary import layer_shapes

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


# ---- the numbers of the figures and the text, and the seeds' own printouts ----


def test_ten_5x5_layers_take_240_to_200() -> None:
    assert stacked_output_shape(240, 5, 0, 1, layers=10) == (200, 200)
    X = torch.zeros(1, 1, 240, 240)
    for _ in range(10):
        X = F.conv2d(X, torch.ones(1, 1, 5, 5))
    assert X.shape[-2:] == (200, 200)
    assert pytest.approx(0.3056, abs=1e-4) == 1 - 200**2 / 240**2  # "slicing off 30%"


@both_corr2d
def test_padding_figure(correlate) -> None:
    expected = torch.tensor([[0.0, 3, 8, 4], [9, 19, 25, 10], [21, 37, 43, 16], [6, 7, 8, 0]])
    assert torch.equal(correlate(X3, K2, padding=1), expected)
    assert output_shape(3, 2, 2, 1) == (4, 4)  # (n - k + p + 1), p = 2 in total


@both_corr2d
def test_stride_figure(correlate) -> None:
    expected = torch.tensor([[0.0, 8.0], [6.0, 8.0]])  # 8 = 1 x 2 + 2 x 3, 6 = 6 x 1
    assert torch.equal(correlate(X3, K2, padding=1, stride=(3, 2)), expected)


def test_padding_k_minus_1_leaves_ceil_n_over_s() -> None:
    for n in range(1, 13):
        for k in range(1, 6):
            for s in range(1, 5):
                assert output_shape(n, k, k - 1, s) == ((n + s - 1) // s,) * 2
                if n % s == 0:
                    assert output_shape(n, k, k - 1, s) == (n // s,) * 2


@both_corr2d
def test_diagonal_image_exercise(correlate) -> None:
    X = torch.eye(5)
    expected = torch.zeros(5, 4)
    expected[range(4), range(4)] = 1.0
    expected[range(1, 5), range(4)] = -1.0
    assert torch.equal(correlate(X, EDGE), expected)  # 5x4, -1 below each +1
    assert torch.equal(correlate(X.t(), EDGE), expected)  # X is symmetric
    assert torch.equal(correlate(X, EDGE.t()), expected.t())  # 4x5: K.t() differences rows


def test_edges_of_the_8x10_framed_image() -> None:
    expected = torch.zeros(8, 9)
    expected[1:7, 2] = 1.0
    expected[1:7, 6] = -1.0
    assert torch.equal(corr2d(framed_image(), EDGE), expected)


def test_1x1_layer_has_co_times_ci_weights() -> None:
    layer = nn.Conv2d(3, 2, 1)
    assert (layer.weight.numel(), layer.bias.numel()) == (3 * 2, 2)


def test_max_pool_survives_a_one_pixel_shift_of_the_edge() -> None:
    band = band_image()
    shifted = band[:, 1:]  # Z[i, j] = X[i, j + 1]
    pooled, pooled_shifted = pool2d(corr2d(band, EDGE), 2), pool2d(corr2d(shifted, EDGE), 2)
    assert torch.equal(pooled[0], torch.tensor([1.0, 1.0, 0.0, 0.0, 0.0, 0.0]))
    assert torch.equal(pooled_shifted[0], torch.tensor([1.0, 0.0, 0.0, 0.0, 0.0]))
    assert (pooled[:, 0] == 1).all() and (pooled_shifted[:, 0] == 1).all()


def test_the_notes_pooling_experiments() -> None:
    X = ARANGE16[0, 0]
    assert torch.equal(pool2d(X, 2), torch.tensor([[5.0, 6, 7], [9, 10, 11], [13, 14, 15]]))
    assert torch.equal(pool2d(X, 2, "avg"), X[:3, :3] + 2.5)
    assert torch.equal(pool2d(X, 2, "avg", stride=2), torch.tensor([[2.5, 4.5], [10.5, 12.5]]))
    assert torch.equal(nn.AvgPool2d(2)(ARANGE16)[0, 0], pool2d(X, 2, "avg", stride=2))
    assert torch.equal(pool2d(X, 2, stride=2), nn.MaxPool2d(2)(ARANGE16)[0, 0])
    assert torch.equal(pool2d(X, 3), torch.tensor([[10.0, 11.0], [14.0, 15.0]]))
    padded = torch.tensor([[0.0, 1, 2, 3, 3], [4, 5, 6, 7, 7], [8, 9, 10, 11, 11]])
    expected = torch.cat((padded, torch.tensor([[12.0, 13, 14, 15, 15]] * 2)))
    assert torch.equal(pool2d(X, 2, padding=1), expected)
    assert torch.equal(nn.MaxPool2d(2, padding=1, stride=1)(ARANGE16)[0, 0], expected)


def test_mxnet_pooling_with_padding_beyond_half_the_window() -> None:
    expected = torch.tensor([[[[0.0, 3.0], [8.0, 11.0], [12.0, 15.0]]]])
    assert torch.equal(pool2d(ARANGE16, (2, 3), padding=(1, 2), stride=(2, 3)), expected)


def test_concatenating_twice_gives_four_channels_pooled_apart() -> None:
    X = torch.cat((ARANGE16, ARANGE16 + 1), 1)
    X = torch.cat((X, X + 1), 1)  # the cell run a second time: channels X, X+1, X+1, X+2
    first = torch.tensor([[5.0, 7.0], [13.0, 15.0]])
    expected = torch.stack([first, first + 1, first + 1, first + 2])[None]
    assert torch.equal(pool2d(X, 3, padding=1, stride=2), expected)


def test_lenet_counts_of_section_7_6() -> None:
    book, modern = LeNet(), LeNet(activation="relu", pool="max")
    assert sum(p.numel() for p in book.parameters()) == 61_706
    shapes = [[shape for _, shape in layer_shapes(net, (1, 1, 28, 28))] for net in (book, modern)]
    assert shapes[0] == shapes[1] and shapes[0][-1] == (1, 10)
    conv1, pooled = shapes[0][0], shapes[0][2]
    assert math.prod(pooled) * 4 == math.prod(conv1)  # a 2x2 pool with stride 2 keeps a quarter
    assert output_shape(14, 5, 0, 1) == (10, 10)  # conv2 loses 4 pixels
    assert pytest.approx(0.306, abs=1e-3) == 32**2 / 28**2 - 1  # the scans are 30% larger


def test_the_correlation_as_a_matrix_on_the_books_example() -> None:
    W = kernel_matrix(K2[None, None], (3, 3))
    assert W.shape == (4, 9)
    assert torch.equal(W[0], torch.tensor([0.0, 1, 0, 2, 3, 0, 0, 0, 0]))
    assert torch.equal(W @ X3.flatten(), torch.tensor([19.0, 25.0, 37.0, 43.0]))


# the notes' 8x8 experiments: (kernel, one-sided padding, stride) and the output shape
NOTES_SHAPES = [(3, 1, 1, 8), (3, 0, 2, 3), (3, 1, 2, 4), (5, 2, 1, 8), ((3, 5), (0, 1), (3, 4), 2)]


@pytest.mark.parametrize(("kernel_size", "padding", "stride", "side"), NOTES_SHAPES)
def test_the_notes_padding_and_stride_shapes(kernel_size, padding, stride, side) -> None:
    conv2d = nn.Conv2d(1, 1, kernel_size, padding=padding, stride=stride)
    assert comp_conv2d(conv2d, torch.zeros(8, 8)).shape == (side, side)
    total = tuple(2 * q for q in pair(padding))
    assert output_shape(8, kernel_size, total, stride) == (side, side)


def test_stride_2_halves_the_rate_of_audio() -> None:
    # one second at 16 kHz through a 3-tap filter with 1 sample of padding per side
    assert output_shape((1, 16000), (1, 3), (0, 2), (1, 2)) == (1, 8000)
