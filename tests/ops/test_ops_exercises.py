"""The chapter's exercises in code: designed kernels, mirror padding, the layer, pooling variants,
channel arithmetic, input checks."""

import math

import pytest
import torch
import torch.nn.functional as F

import convlab.ops.pooling_as_conv
from convlab.errors import ConvlabError
from convlab.ops import (
    Conv2D,
    band_image,
    blur_kernel,
    channel_shuffle,
    corr2d,
    corr2d_grouped_1x1,
    corr2d_multi_in_out,
    corr2d_multi_in_out_1x1,
    corr2d_multi_in_out_loop,
    corr2d_vectorized,
    derivative_kernel,
    edge_kernel,
    laplacian_kernel,
    max_pool_relu,
    min_pool2d,
    mirror_pad2d,
    output_shape,
    pool2d,
    relu_levels,
    relu_max,
    sliding_windows,
    softmax_pool2d,
)

# pixel coordinates: x along the columns, y down the rows, of a 7x9 grid
Y_GRID, X_GRID = torch.meshgrid(torch.arange(7.0), torch.arange(9.0), indexing="ij")


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_derivative_kernel_has_d_plus_1_taps_and_differentiates_x_to_the_d(order: int) -> None:
    K = derivative_kernel(order)
    assert K.shape == (order + 1,)
    # the d-th difference of x^d is d! everywhere, of x^(d-1) zero everywhere
    assert torch.equal(
        corr2d_vectorized(X_GRID**order, K[None]),
        torch.full((7, 9 - order), 1.0 * math.factorial(order)),
    )
    assert torch.equal(corr2d_vectorized(X_GRID ** (order - 1), K[None]), torch.zeros(7, 9 - order))


@pytest.mark.parametrize("direction", [(1.0, 0.0), (0.0, 1.0), (3.0, 4.0), (-1.0, 1.0)])
def test_edge_kernel_is_the_derivative_along_its_direction(direction) -> None:
    alpha, beta = 0.5, -2.0
    ramp = alpha * X_GRID + beta * Y_GRID
    v_x, v_y = (c / math.hypot(*direction) for c in direction)
    response = corr2d_vectorized(ramp, edge_kernel(direction))
    torch.testing.assert_close(response, torch.full_like(response, v_x * alpha + v_y * beta))


def test_edge_kernel_ignores_edges_along_its_direction() -> None:
    horizontal_band = band_image().t()  # edges run along x
    assert torch.equal(corr2d_vectorized(horizontal_band, edge_kernel((1, 0))), torch.zeros(7, 5))
    assert corr2d_vectorized(horizontal_band, edge_kernel((0, 1))).abs().max() == 1.0


def test_books_edge_kernel_is_minus_the_x_derivative() -> None:
    assert torch.equal(edge_kernel((-1, 0))[0], torch.tensor([1.0, -1.0]))


def test_laplacian() -> None:
    assert torch.equal(
        laplacian_kernel(), torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
    )
    # second derivatives: 2 + 2 on x^2 + y^2, none on a ramp
    assert torch.equal(
        corr2d_vectorized(X_GRID**2 + Y_GRID**2, laplacian_kernel()), torch.full((5, 7), 4.0)
    )
    assert torch.equal(corr2d_vectorized(X_GRID + Y_GRID, laplacian_kernel()), torch.zeros(5, 7))
    # an isolated dot gives the strongest response, right on it
    dot = torch.zeros(5, 5)
    dot[2, 2] = 1.0
    response = corr2d_vectorized(dot, laplacian_kernel(), padding=1)
    assert response.abs().argmax() == 2 * 5 + 2 and response[2, 2] == -4.0


def test_blur_kernel_averages() -> None:
    K = blur_kernel(5, sigma=1.5)
    torch.testing.assert_close(K.sum(), torch.tensor(1.0))
    assert torch.equal(K, K.t()) and torch.equal(K, K.flip(0))
    assert K.argmax() == 12  # heaviest in the middle
    torch.testing.assert_close(
        corr2d_vectorized(torch.full((8, 8), 3.0), K), torch.full((4, 4), 3.0)
    )
    noise = torch.randn(64, 64, generator=torch.Generator().manual_seed(0))
    assert corr2d_vectorized(noise, K).std() < noise.std() / 2


def test_mirror_padding_reflects_without_repeating_the_border() -> None:
    row = torch.tensor([[0.0, 1.0, 2.0]])
    assert torch.equal(
        mirror_pad2d(row, (0, 2)), torch.tensor([[2.0, 1.0, 0.0, 1.0, 2.0, 1.0, 0.0]])
    )
    with pytest.raises(ConvlabError, match="mirror padding"):
        mirror_pad2d(row, (1, 0))


def test_relu_max() -> None:
    a, b = torch.tensor([1.0, -2.0, 3.0]), torch.tensor([2.0, -5.0, 3.0])
    assert torch.equal(relu_max(a, b), torch.tensor([2.0, -2.0, 3.0]))


def test_conv2d_layer_is_corr2d_plus_bias() -> None:
    layer = Conv2D((1, 2), generator=torch.Generator().manual_seed(0))
    assert [name for name, _ in layer.named_parameters()] == ["weight", "bias"]
    assert layer.weight.shape == (1, 2) and layer.weight.min() >= 0 and layer.weight.max() < 1
    with torch.no_grad():
        layer.bias.fill_(0.5)
    X = band_image()
    torch.testing.assert_close(layer(X), corr2d(X, layer.weight.detach()) + 0.5)
    assert [name for name, _ in Conv2D(3, bias=False).named_parameters()] == ["weight"]


def test_mistakes_are_explained() -> None:
    with pytest.raises(ConvlabError, match="does not fit"):
        output_shape(3, 5, 0, 1)
    with pytest.raises(ConvlabError, match="does not fit"):
        corr2d_vectorized(torch.ones(2, 2), torch.ones(3, 3))
    with pytest.raises(ConvlabError, match="mode"):
        pool2d(torch.ones(4, 4), 2, mode="median")  # type: ignore[arg-type]
    with pytest.raises(ConvlabError, match="smaller than the 2x2 pooling window"):
        pool2d(torch.ones(4, 4), 2, padding=2)
    with pytest.raises(ConvlabError, match="1x1"):
        corr2d_multi_in_out_1x1(torch.ones(3, 4, 4), torch.ones(2, 3, 3, 3))


def test_conv2d_layer_backpropagates_like_torch() -> None:
    """7.2 ex 3: no error in PyTorch; the gradient through the layer is torch's own."""
    layer = Conv2D((1, 2), bias=False, generator=torch.Generator().manual_seed(0))
    X, target = band_image(), corr2d(band_image(), torch.tensor([[1.0, -1.0]]))
    ((layer(X) - target) ** 2).sum().backward()
    K = layer.weight.detach().clone().requires_grad_()
    ((F.conv2d(X[None, None], K[None, None])[0, 0] - target) ** 2).sum().backward()
    torch.testing.assert_close(layer.weight.grad, K.grad)


ARANGE = torch.arange(16.0).reshape(4, 4)


def test_min_pooling_is_negated_max_pooling_of_the_negation() -> None:
    assert torch.equal(min_pool2d(ARANGE, 2, stride=2), torch.tensor([[0.0, 2.0], [8.0, 10.0]]))
    X = torch.randn(2, 3, 7, 6, generator=torch.Generator().manual_seed(0))
    assert torch.equal(min_pool2d(X, (2, 3)), sliding_windows(X, (2, 3)).amin((-2, -1)))
    expected = -F.max_pool2d(-X, 3, stride=2, padding=1)  # the border never wins
    assert torch.equal(min_pool2d(X, 3, padding=1, stride=2), expected)


def test_softmax_pooling_runs_from_average_to_max() -> None:
    X = torch.arange(9.0).reshape(3, 3)
    torch.testing.assert_close(softmax_pool2d(X, 2, 0.01), pool2d(X, 2))
    torch.testing.assert_close(softmax_pool2d(X, 2, 1e4), pool2d(X, 2, "avg"), atol=1e-3, rtol=0)
    middle = softmax_pool2d(X, 2, 1.0)
    assert (pool2d(X, 2, "avg") < middle).all() and (middle < pool2d(X, 2)).all()
    torch.testing.assert_close(middle[0, 0], torch.tensor(3.5888), atol=1e-4, rtol=0)
    # every entry of the window gets gradient, where max-pooling passes it to one
    window = X[:2, :2].clone().requires_grad_()
    softmax_pool2d(window, 2, 1.0).sum().backward()
    assert (window.grad != 0).all()


def test_max_pooling_is_not_a_convolution() -> None:
    """7.5 ex 2: a convolution is linear, max-pooling is not."""
    a, b = torch.tensor([[1.0, 0.0], [0.0, 0.0]]), torch.tensor([[0.0, 0.0], [0.0, 1.0]])
    assert pool2d(a + b, 2) == 1.0 and pool2d(a, 2) + pool2d(b, 2) == 2.0
    assert pool2d(-a, 2) == 0.0 != -pool2d(a, 2)  # nor is it odd, as linear maps are


@pytest.mark.parametrize(("pool_size", "levels"), [(2, 2), (3, 4), ((2, 3), 3), (4, 4), (5, 6)])
def test_max_pooling_from_relus_needs_log2_levels_per_axis(pool_size, levels, monkeypatch) -> None:
    calls = []
    relu_max_ = convlab.ops.pooling_as_conv.relu_max

    def counting(a, b):
        calls.append(1)
        return relu_max_(a, b)

    monkeypatch.setattr(convlab.ops.pooling_as_conv, "relu_max", counting)
    X = torch.randperm(2 * 9 * 8, generator=torch.Generator().manual_seed(0)).reshape(2, 9, 8)
    X = X.double()
    for stride in (1, 2):
        assert torch.equal(max_pool_relu(X, pool_size, stride), F.max_pool2d(X, pool_size, stride))
    assert len(calls) == 2 * levels == 2 * relu_levels(pool_size)


def test_max_and_average_pooling_treat_an_edge_differently() -> None:
    """7.5 ex 5: max keeps a one-pixel edge at full strength, the average dilutes it."""
    edges = corr2d(band_image(), torch.tensor([[1.0, -1.0]]))
    assert torch.equal(pool2d(edges, 2)[0], torch.tensor([1.0, 1.0, 0.0, 0.0, 0.0, 0.0]))
    assert torch.equal(pool2d(edges, 2, "avg")[0], torch.tensor([0.5, 0.5, 0.0, 0.0, -0.5, -0.5]))


def book_example_1x1(c_i: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The book's random 1x1 example with c_i input channels, drawn from seed 0."""
    generator = torch.Generator().manual_seed(0)
    X = torch.normal(0, 1, (c_i, 3, 3), generator=generator)
    return X, torch.normal(0, 1, (2, c_i, 1, 1), generator=generator)


@pytest.mark.parametrize("c_i", [3, 16, 64])
def test_1x1_as_matmul_and_the_books_loop_agree_up_to_rounding(c_i: int) -> None:
    """7.4 ex 4: equal in exact arithmetic; in float32 the summation order shows in the last bit."""
    X, K = book_example_1x1(c_i)
    Y1, Y2 = corr2d_multi_in_out_1x1(X, K), corr2d_multi_in_out_loop(X, K)
    # a sum of c_i products is off by at most about c_i roundings of its largest terms
    bound = c_i * torch.finfo(torch.float32).eps * (K.flatten(1).abs() @ X.flatten(1).abs())
    assert ((Y1 - Y2).abs().flatten(1) <= bound).all()
    X, K = X.double(), K.double()
    torch.testing.assert_close(
        corr2d_multi_in_out_1x1(X, K), corr2d_multi_in_out_loop(X, K), rtol=0, atol=1e-12
    )
    # with whole numbers every partial sum is exact, in any order
    X, K = X.round(), K.round()
    assert torch.equal(corr2d_multi_in_out_1x1(X, K), corr2d_multi_in_out_loop(X, K))


def test_the_books_1x1_assertion_holds() -> None:
    X, K = book_example_1x1(3)
    Y1, Y2 = corr2d_multi_in_out_1x1(X, K), corr2d_multi_in_out_loop(X, K)
    assert float(torch.abs(Y1 - Y2).sum()) < 1e-6


def connections(layer, channels: int) -> torch.Tensor:
    """(c_o, c_i) booleans: which input channels each output channel of `layer` depends on."""
    jacobian = torch.autograd.functional.jacobian(layer, torch.ones(channels, 1, 1).double())
    return jacobian.reshape(channels, channels) != 0


def test_block_diagonal_channels_and_the_shuffle_that_mixes_them() -> None:
    """7.4 ex 7: b blocks save b times the work but never mix groups; a shuffle restores mixing."""
    generator = torch.Generator().manual_seed(0)
    blocks = torch.randn(3, 2, 2, generator=generator, dtype=torch.float64)  # b = 3, c = 6
    X = torch.randn(6, 4, 5, generator=generator, dtype=torch.float64)
    dense = torch.block_diag(*blocks)[:, :, None, None]  # (6, 6, 1, 1)
    torch.testing.assert_close(corr2d_grouped_1x1(X, blocks), corr2d_multi_in_out(X, dense))
    torch.testing.assert_close(
        corr2d_grouped_1x1(X, blocks), F.conv2d(X, blocks.reshape(6, 2, 1, 1), groups=3)
    )

    ones = torch.ones(3, 2, 2, dtype=torch.float64)

    def grouped(X: torch.Tensor) -> torch.Tensor:
        return corr2d_grouped_1x1(X, ones)

    def shuffled(X: torch.Tensor) -> torch.Tensor:
        return grouped(channel_shuffle(grouped(X), 3))

    diagonal = torch.block_diag(*ones) != 0
    assert torch.equal(connections(grouped, 6), diagonal)
    assert torch.equal(connections(lambda X: grouped(grouped(X)), 6), diagonal)  # never mixes
    assert connections(shuffled, 6).sum() == 6 * 4  # 2 channels from each of 2 groups
    assert connections(lambda X: grouped(channel_shuffle(shuffled(X), 3)), 6).all()
