"""VGG (Simonyan & Zisserman, 2015) as the book builds it in section 8.2: a network described by a
list of blocks, each a few 3x3 convs and a 2x2 max-pool, then AlexNet's dense head."""

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


def vgg_block(in_channels: int, num_convs: int, out_channels: int) -> nn.Sequential:
    """num_convs 3x3 convs with ReLU (padding 1 keeps the size), then a 2x2 max-pool that halves it:
    two stacked 3x3 convs see as far as one 5x5 with fewer weights and one more nonlinearity."""
    layers: list[nn.Module] = []
    for i in range(num_convs):
        layers += [conv3x3(in_channels if i == 0 else out_channels, out_channels), nn.ReLU()]
    return nn.Sequential(*layers, nn.MaxPool2d(2, stride=2))


def vgg_blocks(in_channels: int, arch: Sequence[tuple[int, int]]) -> list[nn.Sequential]:
    """One vgg_block per (num_convs, out_channels) in arch."""
    blocks, c = [], in_channels
    for num_convs, out_channels in arch:
        blocks.append(vgg_block(c, num_convs, out_channels))
        c = out_channels
    return blocks


class VGG(nn.Module):
    """``arch`` lists the blocks as (num_convs, out_channels); ``image_size`` sizes the first dense
    layer, which dominates the parameter count (25088 x 4096 for VGG-11 at 224)."""

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        image_size: int | list[int] = 224,
        arch: Sequence[tuple[int, int]] = ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512)),
        hidden: int = 4096,
        dropout: float = 0.5,
        xavier_init: bool = True,
    ):
        super().__init__()
        blocks = vgg_blocks(in_channels, arch)
        h, w = feature_size(blocks, image_size)  # each block halves: 224 -> 7
        c = arch[-1][1] if arch else in_channels
        self.net = nn.Sequential(
            *blocks,
            nn.Flatten(),  # (N, c, h, w) -> (N, c*h*w): 512*7*7 = 25088 for VGG-11 at 224
            *dense_head(c * h * w, hidden, num_classes, dropout),
        )
        if xavier_init:  # the book's init_cnn
            xavier_init_(self)

    @classmethod
    def min_input_size(cls, **config) -> int:
        """The smallest data.resize (each side) these constructor arguments take: 2**blocks, as
        each block halves the size (32 for VGG-11). image_size is not read."""
        a = with_defaults(cls, config)
        with torch.device("meta"):  # the layers' geometry only: no weights allocated
            return smallest_input(vgg_blocks(a["in_channels"], a["arch"]))

    def forward(self, x):
        return self.net(x)
