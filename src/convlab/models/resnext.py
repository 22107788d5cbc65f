"""ResNeXt (Xie et al., 2017) as in the book's section 8.6: ResNet with bottleneck blocks whose
3x3 conv is split into groups. The stem and stages are ResNet's (resnet.py)."""

from collections.abc import Sequence
from functools import partial

import torch.nn.functional as F
from torch import nn

from convlab.models.layers import conv1x1, conv3x3, xavier_init_
from convlab.models.resnet import resnet_layers


class ResNeXtBlock(nn.Module):
    """1x1 conv down to bot_mul * num_channels, a grouped 3x3 conv, 1x1 conv back up, each with
    BatchNorm; groups cut the 3x3 conv's weights by a factor of ``groups`` at the same width.

    ``groups`` is the number of groups, as in the paper and ``nn.Conv2d``. The book's ResNeXtBlock
    takes the channels per group in that place: its ResNeXtBlock(32, 16, 1) is
    ResNeXtBlock(32, 32, groups=2, bot_mul=1) here.
    """

    def __init__(
        self,
        in_channels: int,
        num_channels: int,
        groups: int,
        bot_mul: float,
        use_1x1conv: bool = False,
        stride: int = 1,
    ):
        super().__init__()
        bot = round(num_channels * bot_mul)
        # no conv bias before a BatchNorm: its shift would cancel it
        self.conv1 = conv1x1(in_channels, bot, bias=False)
        self.bn1 = nn.BatchNorm2d(bot)
        self.conv2 = conv3x3(bot, bot, stride, groups=groups, bias=False)  # strided, as the book
        self.bn2 = nn.BatchNorm2d(bot)
        self.conv3 = conv1x1(bot, num_channels, bias=False)
        self.bn3 = nn.BatchNorm2d(num_channels)
        self.shortcut = (
            nn.Sequential(conv1x1(in_channels, num_channels, stride, bias=False),
                          nn.BatchNorm2d(num_channels))
            if use_1x1conv else nn.Identity()
        )  # fmt: skip

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + self.shortcut(x))


class ResNeXt(nn.Module):
    """``arch`` lists the stages as (num_blocks, num_channels), as for ResNet; every block has the
    same ``groups`` and ``bot_mul``."""

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        arch: Sequence[tuple[int, int]] = ((2, 64), (2, 128), (2, 256), (2, 512)),
        groups: int = 16,
        bot_mul: float = 1.0,
        xavier_init: bool = True,
    ):
        super().__init__()
        block = partial(ResNeXtBlock, groups=groups, bot_mul=bot_mul)
        self.net = resnet_layers(block, in_channels, num_classes, arch)
        if xavier_init:  # the book's init_cnn
            xavier_init_(self)

    def forward(self, x):
        return self.net(x)
