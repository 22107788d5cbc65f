"""Network in Network (Lin et al., 2013) as the book builds it in section 8.3: AlexNet's conv
layout, each conv followed by two 1x1 convs, and no dense layers at all."""

import torch
from torch import nn

from convlab.models.layers import conv1x1, smallest_input, too_small, xavier_init_


def nin_block(
    in_channels: int, out_channels: int, kernel_size: int, stride: int, padding: int
) -> nn.Sequential:
    """A spatial conv, then two 1x1 convs: a two-layer MLP applied to every pixel's channels."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding), nn.ReLU(),
        conv1x1(out_channels, out_channels), nn.ReLU(),
        conv1x1(out_channels, out_channels), nn.ReLU(),
    )  # fmt: skip


class NiN(nn.Module):
    """The last NiN block has one channel per class and global average pooling turns each into a
    score, which replaces AlexNet's ~50M dense weights and lets any input size through."""

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        channels: tuple[int, int, int] = (96, 256, 384),
        stem: tuple[int, int, int] = (11, 4, 0),
        dropout: float = 0.5,
        xavier_init: bool = True,
    ):
        super().__init__()
        c1, c2, c3 = channels
        # the first conv's (kernel, stride, padding): the book's 11x11 stride 4 is for 224 px;
        # a small input keeps its detail with a small stride-1 stem instead
        kernel, stride, padding = stem
        self.net = nn.Sequential(
            nin_block(in_channels, c1, kernel, stride, padding), nn.MaxPool2d(3, stride=2),
            nin_block(c1, c2, 5, 1, 2), nn.MaxPool2d(3, stride=2),
            nin_block(c2, c3, 3, 1, 1), nn.MaxPool2d(3, stride=2),
            nn.Dropout(dropout),
            # as in the book the block ends in ReLU, so the class scores are >= 0
            nin_block(c3, num_classes, 3, 1, 1),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),  # (N, num_classes, 1, 1) -> (N, num_classes)
        )  # fmt: skip
        if xavier_init:  # the book's init_cnn
            xavier_init_(self)
        # no dense layer to size, so an input that is too small gets through the constructor:
        # forward refuses it in convlab's words rather than in a pooling layer's
        self._min_side = smallest_input(self.net)

    @classmethod
    def min_input_size(cls, **config) -> int:
        """The smallest data.resize (each side) these constructor arguments take: 67 for the book's
        stem, where the unpadded 11x11 stride-4 conv and the three pools leave one pixel."""
        with torch.device("meta"):  # the layers' geometry only: no weights allocated
            return cls(**{**config, "xavier_init": False})._min_side

    def forward(self, x):
        if min(x.shape[-2:]) < self._min_side:
            raise too_small(x.shape[-2:], self._min_side)
        return self.net(x)
