"""LeNet-5 (LeCun et al., 1998) as the book builds it in section 7.6, with the two switches that
separate the 1998 network from a modern one (the activation and the pooling), and any number of
conv and dense layers (the book's exercise 7.6.2)."""

from collections.abc import Sequence

import torch
from torch import nn

from convlab.models.layers import (
    ModelConfigError,
    activation_layer,
    feature_size,
    pool_layer,
    smallest_input,
    with_defaults,
    xavier_init_,
)


def per_conv(value: int | Sequence[int], num_convs: int, key: str) -> list[int]:
    """One value for every conv: a single int repeated, or a list with one entry per conv."""
    values = [value] * num_convs if isinstance(value, int) else list(value)
    if len(values) != num_convs:
        raise ModelConfigError(
            f"model.{key}={values} does not match model.channels' {num_convs} convs: give one "
            f"int for all of them, or a list of {num_convs}"
        )
    return values


def lenet_features(
    in_channels: int,
    channels: Sequence[int],
    kernel_size: int | Sequence[int],
    padding: int | Sequence[int] | None,
    activation: str,
    pool: str,
) -> list[nn.Module]:
    """A conv, the activation and a 2x2 pool per entry of channels.

    padding null is LeNet-5's: k//2 on the first conv, which keeps the size for an odd kernel (the
    book's 2, for its 28x28 inputs where the 1998 network took 32x32 ones), 0 on the others.
    """
    kernels = per_conv(kernel_size, len(channels), "kernel_size")
    if padding is None:
        padding = [k // 2 if i == 0 else 0 for i, k in enumerate(kernels)]
    paddings = per_conv(padding, len(channels), "padding")
    layers: list[nn.Module] = []
    c = in_channels
    for out_channels, k, p in zip(channels, kernels, paddings, strict=True):
        layers += [nn.Conv2d(c, out_channels, k, padding=p), activation_layer(activation)]
        layers.append(pool_layer(pool, 2))
        c = out_channels
    return layers


class LeNet(nn.Module):
    """Conv/pool stages, one per entry of ``channels``, and an MLP head with one hidden layer per
    entry of ``hidden``; the book's LeNet-5 by default.

    ``image_size`` sizes the first dense layer; the book's LazyLinear would defer that to the first
    batch, which hides the parameter count and makes checkpoints depend on a forward pass.
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        image_size: int | list[int] = 28,
        channels: Sequence[int] = (6, 16),
        hidden: Sequence[int] = (120, 84),
        kernel_size: int | Sequence[int] = 5,
        padding: int | Sequence[int] | None = None,
        activation: str = "sigmoid",
        pool: str = "avg",
        xavier_init: bool = True,
    ):
        super().__init__()
        features = lenet_features(in_channels, channels, kernel_size, padding, activation, pool)
        h, w = feature_size(features, image_size)  # 28 -> 28 -> 14 -> 10 -> 5 for LeNet-5
        dense: list[nn.Module] = []
        fan_in = (channels[-1] if channels else in_channels) * h * w
        for width in hidden:
            dense += [nn.Linear(fan_in, width), activation_layer(activation)]
            fan_in = width
        self.net = nn.Sequential(
            *features,
            nn.Flatten(),  # (N, c, h, w) -> (N, c*h*w): 16*5*5 = 400 for LeNet-5 at 28x28
            *dense,
            nn.Linear(fan_in, num_classes),
        )
        if xavier_init:  # the book's init; sigmoid LeNet barely trains from PyTorch's default
            xavier_init_(self)

    @classmethod
    def min_input_size(cls, **config) -> int:
        """The smallest data.resize (each side) these constructor arguments take: the one its
        convs and pools leave one pixel of (12 for LeNet-5). image_size is not read."""
        a = with_defaults(cls, config)
        with torch.device("meta"):  # the layers' geometry only: no weights allocated
            features = lenet_features(
                a["in_channels"], a["channels"], a["kernel_size"], a["padding"],
                a["activation"], a["pool"],
            )  # fmt: skip
        return smallest_input(features)

    def forward(self, x):
        return self.net(x)
