"""ResNeXt (Xie et al., 2017) as in the book's section 8.6: ResNet with bottleneck blocks whose
3x3 conv is split into groups. The stem and stages are ResNet's (resnet.py)."""

from collections.abc import Sequence
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from convlab.models.layers import (
    ModelConfigError,
    conv1x1,
    conv3x3,
    smallest_input,
    xavier_init_,
)
from convlab.models.resnet import resnet_layers


def _yaml(value) -> str:
    return "null" if value is None else str(value)


def grouping(groups: int | None, group_width: int | None) -> tuple[str, int]:
    """The one of the two ways to say how the 3x3 conv is split that is set, as (key, value).
    Exactly one must be, so a number is never read as the other: 16 groups of 4 channels and 4
    groups of 16 are different networks."""
    if (groups is None) == (group_width is None):
        raise ModelConfigError(
            f"model.groups={_yaml(groups)} and model.group_width={_yaml(group_width)}: set "
            "exactly one of model.groups and model.group_width, the other null (groups: the "
            "number of groups; group_width: channels per group, the book's ResNeXtBlock argument)"
        )
    key, value = ("groups", groups) if groups is not None else ("group_width", group_width)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ModelConfigError(f"model.{key}={value} is invalid: expected a positive integer")
    return key, value


def num_groups(width: int, groups: int | None, group_width: int | None) -> int:
    """The number of groups that split a conv of ``width`` channels, given either that number or
    the channels per group; either must divide ``width``."""
    key, value = grouping(groups, group_width)
    if width % value:
        raise ModelConfigError(
            f"model.{key}={value} does not divide a bottleneck of {width} channels "
            "(num_channels x model.bot_mul); choose a divisor of every stage's bottleneck"
        )
    return value if key == "groups" else width // value


class ResNeXtBlock(nn.Module):
    """1x1 conv down to bot_mul * num_channels, a grouped 3x3 conv, 1x1 conv back up, each with
    BatchNorm; groups cut the 3x3 conv's weights by the number of groups at the same width.

    Set exactly one of ``groups`` (the number of groups, as in the paper and ``nn.Conv2d``) and
    ``group_width`` (channels per group, what the book's ResNeXtBlock takes in that place). The
    book's ResNeXtBlock(32, 16, 1) is ResNeXtBlock(32, 32, group_width=16, bot_mul=1, bias=True)
    here, or groups=2. ``bias`` gives every conv a bias, as the book's code does; each feeds a
    BatchNorm, whose mean subtraction cancels it.
    """

    def __init__(
        self,
        in_channels: int,
        num_channels: int,
        groups: int | None = None,
        bot_mul: float = 1.0,
        use_1x1conv: bool = False,
        stride: int = 1,
        group_width: int | None = None,
        bias: bool = False,
    ):
        super().__init__()
        bot = round(num_channels * bot_mul)
        g = num_groups(bot, groups, group_width)
        self.conv1 = conv1x1(in_channels, bot, bias=bias)
        self.bn1 = nn.BatchNorm2d(bot)
        self.conv2 = conv3x3(bot, bot, stride, groups=g, bias=bias)  # strided, as the book
        self.bn2 = nn.BatchNorm2d(bot)
        self.conv3 = conv1x1(bot, num_channels, bias=bias)
        self.bn3 = nn.BatchNorm2d(num_channels)
        self.shortcut = (
            nn.Sequential(conv1x1(in_channels, num_channels, stride, bias=bias),
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
    same ``groups`` or ``group_width`` (exactly one set), ``bot_mul`` and ``bias`` (every conv's,
    the stem's included; all feed a BatchNorm)."""

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        arch: Sequence[tuple[int, int]] = ((2, 64), (2, 128), (2, 256), (2, 512)),
        groups: int | None = 16,
        group_width: int | None = None,
        bot_mul: float = 1.0,
        bias: bool = False,
        xavier_init: bool = True,
    ):
        super().__init__()
        grouping(groups, group_width)  # checked here too: an empty arch builds no block
        block = partial(
            ResNeXtBlock, groups=groups, group_width=group_width, bot_mul=bot_mul, bias=bias
        )
        self.net = resnet_layers(block, in_channels, num_classes, arch, bias)
        if xavier_init:  # the book's init_cnn
            xavier_init_(self)

    @classmethod
    def min_input_size(cls, **config) -> int:
        """The smallest data.resize (each side) these constructor arguments take: 1, as for
        ResNet, whose stem and strides these blocks keep."""
        with torch.device("meta"):  # the layers' geometry only: no weights allocated
            return smallest_input(cls(**{**config, "xavier_init": False}).net)

    def forward(self, x):
        return self.net(x)
