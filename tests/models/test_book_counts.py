"""Parameter counts against the book's own code (sections 7.6, 8.1-8.3 and 8.6), written below as
the book writes it: lazy layers, sized by one forward pass at the book's input size. convlab's
networks are built from conf/model plus the book experiment's overrides, as a run builds them.

Both sides live on the meta device: shapes without weights, so the forward pass at 224 and
VGG-11's 129M parameters cost no time or memory, and the counts are the same as on the CPU.
"""

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn
from torch.nn import functional as F

from convlab.models.resnet import Residual as ConvlabResidual
from convlab.models.resnext import ResNeXtBlock as ConvlabResNeXtBlock
from convlab.paths import CONF_DIR

VGG11 = ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))


# ---- the book's code, without d2l: its Classifier base and lr argument dropped -------------------


def book_lenet(num_classes=10):
    return nn.Sequential(
        nn.LazyConv2d(6, kernel_size=5, padding=2), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.LazyConv2d(16, kernel_size=5), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Flatten(),
        nn.LazyLinear(120), nn.Sigmoid(),
        nn.LazyLinear(84), nn.Sigmoid(),
        nn.LazyLinear(num_classes))  # fmt: skip


def book_alexnet(num_classes=10):
    return nn.Sequential(
        nn.LazyConv2d(96, kernel_size=11, stride=4, padding=1),
        nn.ReLU(), nn.MaxPool2d(kernel_size=3, stride=2),
        nn.LazyConv2d(256, kernel_size=5, padding=2), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.LazyConv2d(384, kernel_size=3, padding=1), nn.ReLU(),
        nn.LazyConv2d(384, kernel_size=3, padding=1), nn.ReLU(),
        nn.LazyConv2d(256, kernel_size=3, padding=1), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2), nn.Flatten(),
        nn.LazyLinear(4096), nn.ReLU(), nn.Dropout(p=0.5),
        nn.LazyLinear(4096), nn.ReLU(), nn.Dropout(p=0.5),
        nn.LazyLinear(num_classes))  # fmt: skip


def vgg_block(num_convs, out_channels):
    layers = []
    for _ in range(num_convs):
        layers.append(nn.LazyConv2d(out_channels, kernel_size=3, padding=1))
        layers.append(nn.ReLU())
    layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return nn.Sequential(*layers)


def book_vgg(arch, num_classes=10):
    conv_blks = []
    for num_convs, out_channels in arch:
        conv_blks.append(vgg_block(num_convs, out_channels))
    return nn.Sequential(
        *conv_blks, nn.Flatten(),
        nn.LazyLinear(4096), nn.ReLU(), nn.Dropout(0.5),
        nn.LazyLinear(4096), nn.ReLU(), nn.Dropout(0.5),
        nn.LazyLinear(num_classes))  # fmt: skip


def nin_block(out_channels, kernel_size, strides, padding):
    return nn.Sequential(
        nn.LazyConv2d(out_channels, kernel_size, strides, padding), nn.ReLU(),
        nn.LazyConv2d(out_channels, kernel_size=1), nn.ReLU(),
        nn.LazyConv2d(out_channels, kernel_size=1), nn.ReLU())  # fmt: skip


def book_nin(num_classes=10):
    return nn.Sequential(
        nin_block(96, kernel_size=11, strides=4, padding=0),
        nn.MaxPool2d(3, stride=2),
        nin_block(256, kernel_size=5, strides=1, padding=2),
        nn.MaxPool2d(3, stride=2),
        nin_block(384, kernel_size=3, strides=1, padding=1),
        nn.MaxPool2d(3, stride=2),
        nn.Dropout(0.5),
        nin_block(num_classes, kernel_size=3, strides=1, padding=1),
        nn.AdaptiveAvgPool2d((1, 1)),
        nn.Flatten())  # fmt: skip


class Residual(nn.Module):
    """The Residual block of ResNet models."""

    def __init__(self, num_channels, use_1x1conv=False, strides=1):
        super().__init__()
        self.conv1 = nn.LazyConv2d(num_channels, kernel_size=3, padding=1, stride=strides)
        self.conv2 = nn.LazyConv2d(num_channels, kernel_size=3, padding=1)
        if use_1x1conv:
            self.conv3 = nn.LazyConv2d(num_channels, kernel_size=1, stride=strides)
        else:
            self.conv3 = None
        self.bn1 = nn.LazyBatchNorm2d()
        self.bn2 = nn.LazyBatchNorm2d()

    def forward(self, X):
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.conv3:
            X = self.conv3(X)
        Y += X
        return F.relu(Y)


def book_resnet18(num_classes=10):
    b1 = nn.Sequential(
        nn.LazyConv2d(64, kernel_size=7, stride=2, padding=3),
        nn.LazyBatchNorm2d(), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2, padding=1))  # fmt: skip

    def block(num_residuals, num_channels, first_block=False):
        blk = []
        for i in range(num_residuals):
            if i == 0 and not first_block:
                blk.append(Residual(num_channels, use_1x1conv=True, strides=2))
            else:
                blk.append(Residual(num_channels))
        return nn.Sequential(*blk)

    net = nn.Sequential(b1)
    for i, b in enumerate(((2, 64), (2, 128), (2, 256), (2, 512))):
        net.add_module(f"b{i + 2}", block(*b, first_block=(i == 0)))
    net.add_module(
        "last",
        nn.Sequential(nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.LazyLinear(num_classes)),
    )
    return net


class ResNeXtBlock(nn.Module):
    """The ResNeXt block."""

    def __init__(self, num_channels, groups, bot_mul, use_1x1conv=False, strides=1):
        super().__init__()
        bot_channels = int(round(num_channels * bot_mul))
        self.conv1 = nn.LazyConv2d(bot_channels, kernel_size=1, stride=1)
        self.conv2 = nn.LazyConv2d(
            bot_channels, kernel_size=3, stride=strides, padding=1, groups=bot_channels // groups
        )
        self.conv3 = nn.LazyConv2d(num_channels, kernel_size=1, stride=1)
        self.bn1 = nn.LazyBatchNorm2d()
        self.bn2 = nn.LazyBatchNorm2d()
        self.bn3 = nn.LazyBatchNorm2d()
        if use_1x1conv:
            self.conv4 = nn.LazyConv2d(num_channels, kernel_size=1, stride=strides)
            self.bn4 = nn.LazyBatchNorm2d()
        else:
            self.conv4 = None

    def forward(self, X):
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = F.relu(self.bn2(self.conv2(Y)))
        Y = self.bn3(self.conv3(Y))
        if self.conv4:
            X = self.bn4(self.conv4(X))
        return F.relu(Y + X)


# ---- counting ---------------------------------------------------------------------------------


def count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def book_count(build, x_shape) -> int:
    """The book's network after the forward pass that sizes its lazy layers."""
    with torch.device("meta"), torch.no_grad():
        net = build()
        net(torch.zeros(x_shape))
    assert not any(isinstance(p, nn.UninitializedParameter) for p in net.parameters())
    return count(net)


def book_config(overrides: list[str]) -> DictConfig:
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("train", overrides)


def convlab_count(overrides: list[str]) -> int:
    with torch.device("meta"):
        return count(instantiate(book_config(overrides).model))


@pytest.mark.parametrize(
    ("build", "side", "overrides", "expected"),
    [
        (book_lenet, 28, ["experiment=lenet_book"], 61_706),
        # the book prints VGG-11's layer table but trains the small one; no experiment for it
        (lambda: book_vgg(VGG11), 224, ["model=vgg11", "data.resize=224"], 128_806_154),
        (
            lambda: book_vgg(((1, 16), (1, 32), (2, 64), (2, 128), (2, 128))),
            224,
            ["experiment=vgg_book"],
            43_093_322,
        ),
        (book_alexnet, 224, ["experiment=alexnet_book"], 46_764_746),
        (book_nin, 224, ["experiment=nin_book"], 1_992_166),
        (book_resnet18, 96, ["experiment=resnet18_book"], 11_178_378),
    ],
    ids=["LeNet-5", "VGG-11", "small VGG", "AlexNet", "NiN", "ResNet-18"],
)
def test_book_networks_to_the_parameter(build, side, overrides, expected):
    book = book_count(build, (1, 1, side, side))
    ours = convlab_count(overrides)
    assert (book, ours) == (expected, expected)


# the blocks the book builds and prints, each beside convlab's spelling of it
BLOCKS = [
    (lambda: Residual(3), (4, 3, 6, 6), dict(in_channels=3, num_channels=3), 180),
    (
        lambda: Residual(6, use_1x1conv=True, strides=2),
        (4, 3, 6, 6),
        dict(in_channels=3, num_channels=6, use_1x1conv=True, stride=2),
        546,
    ),
]
BLOCK_IDS = ["Residual(3)", "Residual(6, use_1x1conv=True, strides=2)"]


@pytest.mark.parametrize(("build", "x_shape", "kwargs", "expected"), BLOCKS, ids=BLOCK_IDS)
def test_residual_blocks_with_the_book_experiments_bias(build, x_shape, kwargs, expected):
    bias = book_config(["experiment=resnet18_book"]).model.bias
    with torch.device("meta"):
        ours = count(ConvlabResidual(**kwargs, bias=bias))
    assert (book_count(build, x_shape), ours) == (expected, expected)


def test_resnext_block_in_the_books_form():
    # the book trains no ResNeXt: its form is checked at block level. ResNeXtBlock(32, 16, 1):
    # 32 channels in groups of 16, every conv biased
    book = book_count(lambda: ResNeXtBlock(32, 16, 1), (4, 32, 96, 96))
    with torch.device("meta"):
        ours = count(ConvlabResNeXtBlock(32, 32, group_width=16, bot_mul=1, bias=True))
    assert (book, ours) == (6_944, 6_944)


def test_default_resnets_drop_exactly_the_biases_batchnorm_cancels():
    with torch.device("meta"), torch.no_grad():
        book = book_resnet18()
        book(torch.zeros(1, 1, 96, 96))
    # every conv feeds a BatchNorm but the book's 1x1 shortcuts (conv3), which keep their bias
    cancelled = sum(
        m.out_channels
        for name, m in book.named_modules()
        if isinstance(m, nn.Conv2d) and not name.endswith("conv3")
    )
    assert cancelled == 64 + 4 * (64 + 128 + 256 + 512)  # the stem and the 16 3x3 convs
    assert convlab_count(["model=resnet18", "data.resize=96"]) == count(book) - cancelled
    assert convlab_count(["model=resnet18", "data.resize=96"]) == 11_174_474
    with torch.device("meta"):  # the ResNeXt block: all three convs feed a BatchNorm
        assert count(ConvlabResNeXtBlock(32, 32, group_width=16)) == 6_944 - 3 * 32
