"""Learning [1, -1] back: the book's loop reproduced exactly, the stable recipe on both images, and
divergence that is never silent."""

import statistics

import pytest
import torch
from torch import nn

from convlab.errors import ConvlabError
from convlab.ops import (
    BOOK_RECIPE,
    STABLE_RECIPE,
    DivergenceError,
    band_image,
    corr2d_vectorized,
    framed_image,
    learn_kernel,
)

EDGE = torch.tensor([[1.0, -1.0]])
IMAGES = {"6x8 band": band_image, "8x10 frame": framed_image}
SEEDS = range(10)


def books_loop(X: torch.Tensor, Y: torch.Tensor, seed: int) -> tuple[list[float], torch.Tensor]:
    """Section 7.2.4's code as printed, after torch.manual_seed(seed): (losses, kernel)."""
    torch.manual_seed(seed)
    conv2d = nn.LazyConv2d(1, kernel_size=(1, 2), bias=False)
    X, Y = X.reshape((1, 1, *X.shape)), Y.reshape((1, 1, *Y.shape))
    lr = 3e-2
    losses = []
    for _ in range(10):
        Y_hat = conv2d(X)
        l = (Y_hat - Y) ** 2  # noqa: E741 -- the book's name
        conv2d.zero_grad()
        l.sum().backward()
        conv2d.weight.data[:] -= lr * conv2d.weight.grad
        losses.append(l.sum().item())
    return losses, conv2d.weight.data.reshape((1, 2))


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The 6x8 images are tiny: torch's thread pool costs more than it saves on them (a step ran
    tens of times slower with two threads on a busy two-core machine), so these many short runs
    use one thread, restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def book_fits():
    X = band_image()
    Y = corr2d_vectorized(X, EDGE)
    return [learn_kernel(X, Y, (1, 2), seed=seed, **BOOK_RECIPE) for seed in SEEDS]


def test_books_recipe_is_the_books_loop(book_fits) -> None:
    X = band_image()
    Y = corr2d_vectorized(X, EDGE)
    for seed, fit in zip(SEEDS, book_fits, strict=True):
        losses, kernel = books_loop(X, Y, seed)
        torch.testing.assert_close(torch.tensor(fit.losses), torch.tensor(losses))
        torch.testing.assert_close(fit.kernel, kernel)


def test_books_recipe_reaches_the_edge_kernel_over_ten_seeds(book_fits) -> None:
    assert statistics.median(fit.losses[-1] for fit in book_fits) < 0.05
    for fit in book_fits:
        assert len(fit.losses) == 10
        torch.testing.assert_close(fit.kernel, EDGE, atol=0.1, rtol=0)


def test_the_tours_seed_prints_the_books_epochs(book_fits) -> None:
    fit = book_fits[0]
    printed = [f"{loss:.3f}" for loss in fit.losses[1::2]]  # epochs 2, 4, ..., 10
    assert printed == ["8.330", "1.722", "0.422", "0.125", "0.043"]
    torch.testing.assert_close(fit.kernel, torch.tensor([[1.0063, -0.9662]]), atol=1e-4, rtol=0)


def test_the_books_layer_leaves_the_global_generator_alone() -> None:
    X = band_image()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    learn_kernel(X, corr2d_vectorized(X, EDGE), (1, 2), seed=7, **BOOK_RECIPE)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("image", IMAGES.values(), ids=IMAGES.keys())
def test_stable_recipe_converges_in_ten_steps(image, seed: int) -> None:
    X = image()
    fit = learn_kernel(X, corr2d_vectorized(X, EDGE), (1, 2), seed=seed, **STABLE_RECIPE)
    assert len(fit.losses) == 10
    torch.testing.assert_close(fit.kernel, EDGE, atol=0.05, rtol=0)
    assert fit.losses[-1] < fit.losses[0] / 100


def test_defaults_are_the_stable_recipe() -> None:
    X = band_image()
    Y = corr2d_vectorized(X, EDGE)
    default, stable = learn_kernel(X, Y, (1, 2)), learn_kernel(X, Y, (1, 2), **STABLE_RECIPE)
    assert default.losses == stable.losses and torch.equal(default.kernel, stable.kernel)


@pytest.mark.parametrize("seed", SEEDS)
def test_books_recipe_is_caught_diverging_on_the_8x10_image(seed: int) -> None:
    X = framed_image()
    with pytest.raises(DivergenceError, match="diverged.*lower lr"):
        learn_kernel(X, corr2d_vectorized(X, EDGE), (1, 2), seed=seed, **BOOK_RECIPE)


def test_books_settings_on_the_scratch_layer_still_run_on_the_books_image() -> None:
    X = band_image()
    fit = learn_kernel(X, corr2d_vectorized(X, EDGE), (1, 2), reduction="sum", lr=3e-2, momentum=0)
    # plain gradient descent at a stable lr lowers this quadratic loss at every step
    assert all(b < a for a, b in zip(fit.losses, fit.losses[1:], strict=False))
    # but from U[0, 1) the kernel's sum starts far from 0 and shrinks only 0.8x per step
    assert fit.losses[-1] > 0.1


def test_non_finite_loss_is_an_error() -> None:
    X = band_image()
    target = corr2d_vectorized(X, EDGE)
    target[0, 0] = float("nan")
    with pytest.raises(DivergenceError, match="loss nan at step 1"):
        learn_kernel(X, target, (1, 2))


def test_unknown_layer_is_explained() -> None:
    X = band_image()
    with pytest.raises(ConvlabError, match="unknown layer"):
        learn_kernel(X, corr2d_vectorized(X, EDGE), (1, 2), layer="keras")  # type: ignore[arg-type]
