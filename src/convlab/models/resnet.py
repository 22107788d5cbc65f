"""ResNet (He et al., 2016) as the book builds it in section 8.6. The stem and the stage builder
are shared with ResNeXt (resnext.py), which only swaps the block."""

from collections.abc import Callable, Sequence
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from convlab.models.layers import conv1x1, conv3x3, smallest_input, xavier_init_

# block(in_channels, num_channels, use_1x1conv=..., stride=...) -> a residual block
Block = Callable[..., nn.Module]


class Residual(nn.Module):
    """Two 3x3 conv-BN layers added to the input; a 1x1 conv on the shortcut (the book's, without
    BatchNorm) matches the shape where the block changes the channels or halves the size.

    ``bias`` gives the two 3x3 convs a bias, as the book's code does. BatchNorm subtracts the batch
    mean right after them, which cancels any constant added before it, so false saves those
    parameters and computes the same function. The shortcut conv, with no BatchNorm after it,
    always has one.
    """

    def __init__(
        self,
        in_channels: int,
        num_channels: int,
        use_1x1conv: bool = False,
        stride: int = 1,
        bias: bool = False,
    ):
        super().__init__()
        self.conv1 = conv3x3(in_channels, num_channels, stride, bias=bias)
        self.bn1 = nn.BatchNorm2d(num_channels)
        self.conv2 = conv3x3(num_channels, num_channels, bias=bias)
        self.bn2 = nn.BatchNorm2d(num_channels)
        self.shortcut = conv1x1(in_channels, num_channels, stride) if use_1x1conv else nn.Identity()

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.shortcut(x))


def stem(in_channels: int, bias: bool = False) -> nn.Sequential:
    """The book's b1: 7x7 conv at stride 2 and a 3x3 max-pool at stride 2, a quarter of the size.
    ``bias``: the conv's, which the BatchNorm after it cancels (the book has one)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=bias),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.MaxPool2d(3, stride=2, padding=1),
    )


def resnet_layers(
    block: Block,
    in_channels: int,
    num_classes: int,
    arch: Sequence[tuple[int, int]],
    bias: bool = False,
) -> nn.Sequential:
    """Stem, one stage of blocks per (num_blocks, num_channels) in arch, then global average pooling
    and a linear classifier. Stages after the first start at stride 2 (half the size); a block gets
    the 1x1 shortcut conv exactly where its output shape differs from its input's. ``bias`` is the
    stem conv's; the blocks take their own."""
    stages, c = [stem(in_channels, bias)], 64
    for i, (num_blocks, num_channels) in enumerate(arch):
        stride = 1 if i == 0 else 2
        first = block(c, num_channels, use_1x1conv=stride != 1 or c != num_channels, stride=stride)
        rest = (block(num_channels, num_channels) for _ in range(num_blocks - 1))
        stages.append(nn.Sequential(first, *rest))
        c = num_channels
    head = nn.Sequential(
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),  # (N, c, 1, 1) -> (N, c)
        nn.Linear(c, num_classes),
    )
    return nn.Sequential(*stages, head)


class ResNet(nn.Module):
    """``arch`` lists the stages as (num_residuals, num_channels). Global average pooling makes the
    network independent of the input size: any size down to 1x1 goes through.

    ``bias`` gives every conv that feeds a BatchNorm (the stem's and the blocks' 3x3 ones) a bias,
    as the book's code does: 11,178,378 parameters for its ResNet-18 against 11,174,474 without.
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        arch: Sequence[tuple[int, int]] = ((2, 64), (2, 128), (2, 256), (2, 512)),
        bias: bool = False,
        xavier_init: bool = True,
    ):
        super().__init__()
        block = partial(Residual, bias=bias)
        self.net = resnet_layers(block, in_channels, num_classes, arch, bias)
        if xavier_init:  # the book's init_cnn
            xavier_init_(self)

    @classmethod
    def min_input_size(cls, **config) -> int:
        """The smallest data.resize (each side) these constructor arguments take: 1, as every
        strided layer is padded enough to map one pixel to one and global average pooling takes
        what is left."""
        with torch.device("meta"):  # the layers' geometry only: no weights allocated
            return smallest_input(cls(**{**config, "xavier_init": False}).net)

    def forward(self, x):
        return self.net(x)
