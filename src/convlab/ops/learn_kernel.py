"""Learning the edge kernel [1, -1] back from its output by gradient descent (section 7.2.4)."""

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Literal, TypedDict

import torch
from torch import Tensor, nn

from convlab.errors import ConvlabError
from convlab.ops.correlation import Conv2D, comp_conv2d
from convlab.ops.shapes import Size2, pair

Layer = Literal["scratch", "torch"]
Reduction = Literal["mean", "sum"]


class DivergenceError(ConvlabError):
    """The training loss became non-finite or grew far above its start: lower the learning rate."""


@dataclass(frozen=True)
class KernelFit:
    """The learned kernel and the loss at every step, each measured before that step's update."""

    kernel: Tensor
    losses: tuple[float, ...]


class Recipe(TypedDict):
    """The settings of `learn_kernel` that make up a training recipe."""

    layer: Layer
    reduction: Reduction
    lr: float
    momentum: float


# the book's 7.2.4 loop: nn.LazyConv2d(1, kernel_size=(1, 2), bias=False) at PyTorch's default
# init, the squared errors summed, plain gradient steps of 3e-2
BOOK_RECIPE: Recipe = {"layer": "torch", "reduction": "sum", "lr": 3e-2, "momentum": 0.0}
# from-scratch Conv2D, per-pixel loss and momentum: converges on the 8x10 image too
STABLE_RECIPE: Recipe = {"layer": "scratch", "reduction": "mean", "lr": 0.9, "momentum": 0.45}


def _kernel_layer(
    kernel_size: Size2, layer: Layer, seed: int
) -> tuple[Callable[[Tensor], Tensor], nn.Parameter]:
    """A bias-free single-channel layer mapping (h, w) to (h', w'), and its weight.

    'torch' is the book's layer: torch's own Conv2d, initialised by torch itself as right after
    torch.manual_seed(seed) -- the same draws the book's nn.LazyConv2d makes at its first call.
    The global generator is forked, so the caller's stream is left where it was. 'scratch' is
    the from-scratch Conv2D with its U[0, 1) start.
    """
    if layer == "torch":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            conv = nn.Conv2d(1, 1, kernel_size, bias=False)  # weight (1, 1, k_h, k_w)
        return partial(comp_conv2d, conv), conv.weight
    if layer == "scratch":
        scratch = Conv2D(kernel_size, bias=False, generator=torch.Generator().manual_seed(seed))
        return scratch, scratch.weight  # weight (k_h, k_w)
    raise ConvlabError(f"unknown layer {layer!r}; choose 'torch' or 'scratch'")


@torch.no_grad()
def _heavy_ball_step(
    weight: Tensor, grad: Tensor, velocity: Tensor, lr: float, momentum: float
) -> None:
    """v <- momentum v + grad; w <- w - lr v: torch.optim.SGD's update, in place.

    Written out as the book writes its update (weight.data -= lr * grad, momentum 0), which also
    spares the tour torch.optim's first-use import of several seconds.
    """
    velocity.mul_(momentum).add_(grad)
    weight.sub_(lr * velocity)


def learn_kernel(
    X: Tensor,
    Y: Tensor,
    kernel_size: Size2,
    *,
    steps: int = 10,
    lr: float = STABLE_RECIPE["lr"],
    momentum: float = STABLE_RECIPE["momentum"],
    reduction: Reduction = STABLE_RECIPE["reduction"],
    layer: Layer = STABLE_RECIPE["layer"],
    seed: int = 0,
    max_growth: float = 10.0,
) -> KernelFit:
    """Fit a bias-free layer so that corr2d(X, kernel) ~ Y by minimising (Y_hat - Y)^2.

    The defaults are STABLE_RECIPE; `**BOOK_RECIPE` runs the book's loop (torch's Conv2d at its
    default init U(-1/sqrt(k_h k_w), 1/sqrt(k_h k_w)), summed loss, lr 3e-2, no momentum).

    Why the two recipes behave as they do: the loss is quadratic in the kernel; along (1, 1) its
    curvature grows with every white pixel, along (1, -1) -- where [1, -1] lies -- only with the
    edge pixels. On the 6x8 image lr times the curvature is 1.8 along (1, 1) and 0.36 along
    (1, -1): both directions shrink, by 0.8 and 0.64 per step. The slow one, (1, 1), measures the
    kernel's sum, which must reach 0; torch's init is centred on 0 there, so the book's 10 steps
    suffice, while Conv2D's U[0, 1) starts with a sum of 1 on average and keeps 0.8^10 ~ 11% of
    it. The 8x10 image adds a white frame, the product becomes 5.4 and the loss grows ~20x per
    step. The mean instead of the sum makes the lr independent of the pixel count, but the 8x10
    ratio of the two curvatures (15) would still need 20-30 plain steps, so heavy-ball momentum is
    used: with lr 0.9 and momentum 0.45 both images reach [1, -1] within 0.03 in 10 steps.

    Divergence is raised, not warned about: a diverged kernel is garbage, and a warning scrolls
    away in the output that the book's recipe filled with ever larger losses. DivergenceError
    comes as soon as the loss is non-finite or exceeds `max_growth` times its first value, which a
    converging run does not do on this quadratic.
    """
    forward, weight = _kernel_layer(kernel_size, layer, seed)
    velocity = torch.zeros_like(weight)
    losses: list[float] = []
    for step in range(1, steps + 1):
        squared = (forward(X) - Y) ** 2
        loss = squared.mean() if reduction == "mean" else squared.sum()
        losses.append(loss.item())
        if not math.isfinite(losses[-1]) or losses[-1] > max_growth * losses[0]:
            raise DivergenceError(
                f"learning the kernel diverged: loss {losses[-1]:.4g} at step {step} after "
                f"{losses[0]:.4g} at step 1 (lr={lr}, reduction={reduction!r}); lower lr"
            )
        (grad,) = torch.autograd.grad(loss, weight)
        _heavy_ball_step(weight, grad, velocity, lr, momentum)
    kernel = weight.detach().reshape(pair(kernel_size)).clone()  # (k_h, k_w) for either layer
    return KernelFit(kernel=kernel, losses=tuple(losses))
