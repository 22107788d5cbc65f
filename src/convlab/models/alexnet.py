"""AlexNet (Krizhevsky et al., 2012) as the book builds it in section 8.1: one tower instead of the
original two GPU halves, no local response normalisation, sized for 224x224 inputs."""

from collections.abc import Sequence

import torch
from torch import nn

from convlab.models.layers import (
    conv3x3,
    dense_head,
    feature_size,
    smallest_input,
    with_defaults,
    xavier_init_,
)


def alexnet_features(in_channels: int, channels: Sequence[int]) -> list[nn.Module]:
    """Five convs (an 11x11 stride-4 one to cut a large image down fast, a 5x5, three 3x3) and
    three overlapping 3x3 stride-2 max-pools."""
    c1, c2, c3, c4, c5 = channels
    return [
        nn.Conv2d(in_channels, c1, 11, stride=4, padding=1), nn.ReLU(),
        nn.MaxPool2d(3, stride=2),
        nn.Conv2d(c1, c2, 5, padding=2), nn.ReLU(),
        nn.MaxPool2d(3, stride=2),
        conv3x3(c2, c3), nn.ReLU(),
        conv3x3(c3, c4), nn.ReLU(),
        conv3x3(c4, c5), nn.ReLU(),
        nn.MaxPool2d(3, stride=2),
    ]  # fmt: skip


class AlexNet(nn.Module):
    """AlexNet's features, then the 4096-4096 dense head with dropout."""

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        image_size: int | list[int] = 224,
        channels: tuple[int, int, int, int, int] = (96, 256, 384, 384, 256),
        hidden: int = 4096,
        dropout: float = 0.5,
        xavier_init: bool = True,
    ):
        super().__init__()
        features = alexnet_features(in_channels, channels)
        h, w = feature_size(features, image_size)  # 224 -> 54 -> 26 -> 12 -> 5
        c5 = channels[-1]
        self.net = nn.Sequential(
            *features,
            nn.Flatten(),  # (N, c5, h, w) -> (N, c5*h*w): 256*5*5 = 6400 at 224
            *dense_head(c5 * h * w, hidden, num_classes, dropout),
        )
        if xavier_init:  # the book's init_cnn
            xavier_init_(self)

    @classmethod
    def min_input_size(cls, **config) -> int:
        """The smallest data.resize (each side) these constructor arguments take: 65, where the
        stride-4 conv and the three pools leave one pixel. image_size is not read."""
        a = with_defaults(cls, config)
        with torch.device("meta"):  # the layers' geometry only: no weights allocated
            return smallest_input(alexnet_features(a["in_channels"], a["channels"]))

    def forward(self, x):
        return self.net(x)
