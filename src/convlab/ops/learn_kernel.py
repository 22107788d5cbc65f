"""Learning the edge kernel [1, -1] back from its output by gradient descent (section 7.2.4)."""

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from convlab.errors import ConvlabError
from convlab.ops.correlation import Conv2D
from convlab.ops.shapes import Size2


class DivergenceError(ConvlabError):
    """The training loss became non-finite or grew far above its start: lower the learning rate."""


@dataclass(frozen=True)
class KernelFit:
    """The learned kernel and the loss at every step, each measured before that step's update."""

    kernel: Tensor
    losses: tuple[float, ...]


def learn_kernel(
    X: Tensor,
    Y: Tensor,
    kernel_size: Size2,
    *,
    steps: int = 10,
    lr: float = 0.9,
    momentum: float = 0.45,
    reduction: Literal["mean", "sum"] = "mean",
    seed: int = 0,
    max_growth: float = 10.0,
) -> KernelFit:
    """Fit a bias-free `Conv2D` so that corr2d(X, kernel) ~ Y by minimising (Y_hat - Y)^2.

    The book sums the squared errors with lr 3e-2 and no momentum (pass reduction='sum',
    lr=3e-2, momentum=0 to reproduce it). The loss is quadratic in the kernel; along (1, 1) its
    curvature grows with every white pixel, along (1, -1) -- where [1, -1] lies -- only with the
    edge pixels. On the 6x8 image the largest curvature times the lr is 1.8 < 2 and the book
    converges; the 8x10 image adds a white frame, the product becomes 5.4 and the loss grows
    ~20x per step. The mean instead of the sum makes the lr independent of the pixel count, but the
    8x10 ratio of the two curvatures (15) would still need 20-30 plain steps, so heavy-ball momentum
    is used: with lr 0.9 and momentum 0.45 both images reach [1, -1] within 0.03 in 10 steps.

    Divergence is raised, not warned about: a diverged kernel is garbage, and a warning scrolls
    away in the output that the book's recipe filled with ever larger losses. DivergenceError
    comes as soon as the loss is non-finite or exceeds `max_growth` times its first value, which a
    converging run does not do on this quadratic.
    """
    layer = Conv2D(kernel_size, bias=False, generator=torch.Generator().manual_seed(seed))
    optimizer = torch.optim.SGD(layer.parameters(), lr=lr, momentum=momentum)
    losses: list[float] = []
    for step in range(1, steps + 1):
        squared = (layer(X) - Y) ** 2
        loss = squared.mean() if reduction == "mean" else squared.sum()
        losses.append(loss.item())
        if not math.isfinite(losses[-1]) or losses[-1] > max_growth * losses[0]:
            raise DivergenceError(
                f"learning the kernel diverged: loss {losses[-1]:.4g} at step {step} after "
                f"{losses[0]:.4g} at step 1 (lr={lr}, reduction={reduction!r}); lower lr"
            )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return KernelFit(kernel=layer.weight.detach().clone(), losses=tuple(losses))
