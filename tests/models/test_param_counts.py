"""Parameter counts: the notes' Keras summary where they print one, else the closed form from each
layer's formula, or torchvision's definition of the same network. Models are built on the meta
device: counting needs the shapes, not the ~10^8 initialised weights."""

import pytest
import torch
import torchvision
from torch import nn

from convlab.models.alexnet import AlexNet
from convlab.models.nin import NiN
from convlab.models.resnet import Residual, ResNet
from convlab.models.resnext import ResNeXt, ResNeXtBlock
from convlab.models.small_cnn import SmallCNN
from convlab.models.vgg import VGG

VGG11 = ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))


def conv(cin: int, cout: int, k: int, groups: int = 1, bias: bool = True) -> int:
    return cout * (cin // groups) * k * k + (cout if bias else 0)


def linear(fan_in: int, fan_out: int) -> int:
    return fan_out * (fan_in + 1)


def bn(c: int) -> int:
    return 2 * c  # scale and shift


def count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def shapes(net: nn.Module) -> list[torch.Size]:
    return sorted(p.shape for p in net.parameters())


@pytest.fixture(autouse=True)
def on_meta():
    with torch.device("meta"):
        yield


def test_vgg11_at_224():
    convs, c = 0, 1
    for num_convs, out in VGG11:
        for _ in range(num_convs):
            convs, c = convs + conv(c, out, 3), out
    dense = linear(512 * 7 * 7, 4096) + linear(4096, 4096) + linear(4096, 10)
    assert count(VGG(1, 10, 224, VGG11)) == convs + dense


def test_alexnet_at_224():
    convs = conv(1, 96, 11) + conv(96, 256, 5) + conv(256, 384, 3) + conv(384, 384, 3)
    convs += conv(384, 256, 3)
    dense = linear(256 * 5 * 5, 4096) + linear(4096, 4096) + linear(4096, 10)
    assert count(AlexNet(1, 10, 224)) == convs + dense


def test_nin():
    blocks = [(1, 96, 11), (96, 256, 5), (256, 384, 3), (384, 10, 3)]
    assert count(NiN(1, 10)) == sum(conv(i, o, k) + 2 * conv(o, o, 1) for i, o, k in blocks)


def test_small_cnn_matches_the_keras_summary():
    net = SmallCNN(1, 10, 28)
    per_layer = [count(m) for m in net.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    assert per_layer == [320, 18_496, 36_928, 36_928, 650]  # as printed in the notes
    assert count(net) == 93_322


@pytest.mark.parametrize("use_1x1conv", [False, True])
def test_residual(use_1x1conv):
    cin, c = (3, 6) if use_1x1conv else (6, 6)
    shortcut = conv(cin, c, 1) if use_1x1conv else 0  # the book's: a biased conv, no BatchNorm
    expected = conv(cin, c, 3, bias=False) + conv(c, c, 3, bias=False) + 2 * bn(c) + shortcut
    assert count(Residual(cin, c, use_1x1conv, stride=2 if use_1x1conv else 1)) == expected


@pytest.mark.parametrize("groups", [1, 2, 4, 32])
@pytest.mark.parametrize(
    ("cin", "c", "bot_mul", "use_1x1conv"), [(32, 32, 1, False), (32, 64, 0.5, True)]
)
def test_resnext_block(cin, c, bot_mul, groups, use_1x1conv):
    b = round(c * bot_mul)
    expected = conv(cin, b, 1, bias=False) + conv(b, b, 3, groups, bias=False)
    expected += conv(b, c, 1, bias=False) + bn(b) + bn(b) + bn(c)
    if use_1x1conv:
        expected += conv(cin, c, 1, bias=False) + bn(c)
    assert count(ResNeXtBlock(cin, c, groups, bot_mul, use_1x1conv)) == expected
    # the same split given as channels per group
    same = ResNeXtBlock(cin, c, None, bot_mul, use_1x1conv, group_width=b // groups)
    assert shapes(same) == shapes(ResNeXtBlock(cin, c, groups, bot_mul, use_1x1conv))


@pytest.mark.parametrize("use_1x1conv", [False, True])
def test_bias_adds_one_per_output_channel_of_every_conv_that_feeds_a_batchnorm(use_1x1conv):
    cin, c = (3, 6) if use_1x1conv else (6, 6)
    residual = [Residual(cin, c, use_1x1conv, bias=b) for b in (False, True)]
    assert count(residual[1]) - count(residual[0]) == 2 * c  # not the shortcut's: it has one
    resnext = [ResNeXtBlock(cin, c, 2, 1, use_1x1conv, bias=b) for b in (False, True)]
    assert count(resnext[1]) - count(resnext[0]) == 3 * c + (c if use_1x1conv else 0)


def test_resnet18_is_torchvisions_but_for_the_books_shortcut():
    ours = ResNet(3, 1000, ((2, 64), (2, 128), (2, 256), (2, 512)))
    # torchvision follows the 1x1 shortcut conv with a BatchNorm (2c); the book gives it a bias (c)
    assert count(ours) == count(torchvision.models.resnet18()) - (128 + 256 + 512)
    # the book's biases on the stem conv and the 16 3x3 convs
    biased = ResNet(3, 1000, ((2, 64), (2, 128), (2, 256), (2, 512)), bias=True)
    assert count(biased) - count(ours) == 64 + 4 * (64 + 128 + 256 + 512)


def test_resnext50_32x4d_is_torchvisions():
    # its bottlenecks are half as wide as the stage output: 32 groups of 4 channels in stage one
    ours = ResNeXt(3, 1000, ((3, 256), (4, 512), (6, 1024), (3, 2048)), groups=32, bot_mul=0.5)
    theirs = torchvision.models.resnext50_32x4d()
    assert shapes(ours) == shapes(theirs)  # the same weights, layer by layer
