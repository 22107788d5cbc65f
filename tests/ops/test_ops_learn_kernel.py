"""Learning [1, -1] back converges on both images in 10 steps, and divergence is never silent."""

import pytest
import torch

from convlab.ops import DivergenceError, band_image, corr2d_vectorized, framed_image, learn_kernel

EDGE = torch.tensor([[1.0, -1.0]])
IMAGES = {"6x8 band": band_image, "8x10 frame": framed_image}


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("image", IMAGES.values(), ids=IMAGES.keys())
def test_converges_to_the_edge_kernel_in_ten_steps(image, seed: int) -> None:
    X = image()
    fit = learn_kernel(X, corr2d_vectorized(X, EDGE), (1, 2), seed=seed)
    assert len(fit.losses) == 10
    torch.testing.assert_close(fit.kernel, EDGE, atol=0.05, rtol=0)
    assert fit.losses[-1] < fit.losses[0] / 100


def test_books_recipe_is_caught_diverging_on_the_8x10_image() -> None:
    X = framed_image()
    with pytest.raises(DivergenceError, match="diverged.*lower lr"):
        learn_kernel(X, corr2d_vectorized(X, EDGE), (1, 2), reduction="sum", lr=3e-2, momentum=0)


def test_books_recipe_still_runs_on_the_books_image() -> None:
    X = band_image()
    fit = learn_kernel(X, corr2d_vectorized(X, EDGE), (1, 2), reduction="sum", lr=3e-2, momentum=0)
    # plain gradient descent at a stable lr lowers this quadratic loss at every step
    assert all(b < a for a, b in zip(fit.losses, fit.losses[1:], strict=False))


def test_non_finite_loss_is_an_error() -> None:
    X = band_image()
    target = corr2d_vectorized(X, EDGE)
    target[0, 0] = float("nan")
    with pytest.raises(DivergenceError, match="loss nan at step 1"):
        learn_kernel(X, target, (1, 2))
