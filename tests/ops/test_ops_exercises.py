"""The chapter's exercises in code: designed kernels, mirror padding, the layer, input checks."""

import math

import pytest
import torch

from convlab.errors import ConvlabError
from convlab.ops import (
    Conv2D,
    band_image,
    blur_kernel,
    corr2d,
    corr2d_multi_in_out_1x1,
    corr2d_vectorized,
    derivative_kernel,
    edge_kernel,
    laplacian_kernel,
    mirror_pad2d,
    output_shape,
    pool2d,
    relu_max,
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
    with pytest.raises(ConvlabError, match="half"):
        pool2d(torch.ones(4, 4), 2, padding=2)
    with pytest.raises(ConvlabError, match="1x1"):
        corr2d_multi_in_out_1x1(torch.ones(3, 4, 4), torch.ones(2, 3, 3, 3))
