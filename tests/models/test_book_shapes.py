"""Output shapes against the tables the book (sections 8.1-8.6) and the course notes print."""

import pytest
import torch

from convlab.models.alexnet import AlexNet
from convlab.models.nin import NiN
from convlab.models.resnet import Residual, ResNet
from convlab.models.resnext import ResNeXt, ResNeXtBlock
from convlab.models.small_cnn import SmallCNN
from convlab.models.vgg import VGG
from convlab.summary import layer_shapes

DENSE_HEAD = [
    ("Linear", (1, 4096)), ("ReLU", (1, 4096)), ("Dropout", (1, 4096)),
    ("Linear", (1, 4096)), ("ReLU", (1, 4096)), ("Dropout", (1, 4096)),
    ("Linear", (1, 10)),
]  # fmt: skip
RESNET18_AT_96 = [
    ("Sequential", (1, 64, 24, 24)),  # stem
    ("Sequential", (1, 64, 24, 24)),
    ("Sequential", (1, 128, 12, 12)),
    ("Sequential", (1, 256, 6, 6)),
    ("Sequential", (1, 512, 3, 3)),
    ("Sequential", (1, 10)),  # global average pooling + linear
]


def test_vgg11_at_224():
    net = VGG(arch=((1, 64), (1, 128), (2, 256), (2, 512), (2, 512)))
    assert layer_shapes(net, (1, 1, 224, 224)) == [
        ("Sequential", (1, 64, 112, 112)),
        ("Sequential", (1, 128, 56, 56)),
        ("Sequential", (1, 256, 28, 28)),
        ("Sequential", (1, 512, 14, 14)),
        ("Sequential", (1, 512, 7, 7)),
        ("Flatten", (1, 25088)),
        *DENSE_HEAD,
    ]


def test_alexnet_at_224():
    assert layer_shapes(AlexNet(), (1, 1, 224, 224)) == [
        ("Conv2d", (1, 96, 54, 54)), ("ReLU", (1, 96, 54, 54)),
        ("MaxPool2d", (1, 96, 26, 26)),
        ("Conv2d", (1, 256, 26, 26)), ("ReLU", (1, 256, 26, 26)),
        ("MaxPool2d", (1, 256, 12, 12)),
        ("Conv2d", (1, 384, 12, 12)), ("ReLU", (1, 384, 12, 12)),
        ("Conv2d", (1, 384, 12, 12)), ("ReLU", (1, 384, 12, 12)),
        ("Conv2d", (1, 256, 12, 12)), ("ReLU", (1, 256, 12, 12)),
        ("MaxPool2d", (1, 256, 5, 5)),
        ("Flatten", (1, 6400)),
        *DENSE_HEAD,
    ]  # fmt: skip


def test_nin_at_224():
    assert layer_shapes(NiN(), (1, 1, 224, 224)) == [
        ("Sequential", (1, 96, 54, 54)),
        ("MaxPool2d", (1, 96, 26, 26)),
        ("Sequential", (1, 256, 26, 26)),
        ("MaxPool2d", (1, 256, 12, 12)),
        ("Sequential", (1, 384, 12, 12)),
        ("MaxPool2d", (1, 384, 5, 5)),
        ("Dropout", (1, 384, 5, 5)),
        ("Sequential", (1, 10, 5, 5)),
        ("AdaptiveAvgPool2d", (1, 10, 1, 1)),
        ("Flatten", (1, 10)),
    ]


def test_nin_with_a_small_stem_keeps_a_28_pixel_image_s_detail():
    # a 3x3 stride-1 stem: the first block sees 28x28 (the book's stem at 68 px leaves 15x15)
    net = NiN(channels=(64, 128, 256), stem=(3, 1, 1))
    assert [shape for _, shape in layer_shapes(net, (1, 1, 28, 28))][:7] == [
        (1, 64, 28, 28),
        (1, 64, 13, 13),
        (1, 128, 13, 13),
        (1, 128, 6, 6),
        (1, 256, 6, 6),
        (1, 256, 2, 2),
        (1, 256, 2, 2),
    ]
    assert NiN.min_input_size(stem=(3, 1, 1)) == 15  # the three pools still need 15 pixels


def test_small_cnn_matches_the_keras_summary():
    # the notes' Keras summary in NCHW; Keras folds each ReLU into its layer, so leave them out
    shapes = [(n, s) for n, s in layer_shapes(SmallCNN(), (1, 1, 28, 28)) if n != "ReLU"]
    assert shapes == [
        ("Conv2d", (1, 32, 26, 26)),
        ("MaxPool2d", (1, 32, 13, 13)),
        ("Conv2d", (1, 64, 11, 11)),
        ("MaxPool2d", (1, 64, 5, 5)),
        ("Conv2d", (1, 64, 3, 3)),
        ("Flatten", (1, 576)),
        ("Linear", (1, 64)),
        ("Linear", (1, 10)),
    ]


def test_resnet18_at_96():
    assert layer_shapes(ResNet(), (1, 1, 96, 96)) == RESNET18_AT_96


def test_resnext_shares_resnets_stem_and_stages():
    assert layer_shapes(ResNeXt(), (1, 1, 96, 96)) == RESNET18_AT_96


@pytest.mark.parametrize(
    ("block", "x_shape", "y_shape"),
    [
        (Residual(3, 3), (4, 3, 6, 6), (4, 3, 6, 6)),
        (Residual(3, 6, use_1x1conv=True, stride=2), (4, 3, 6, 6), (4, 6, 3, 3)),
        # the book's ResNeXtBlock(32, 16, 1): 32 channels, 16 per group
        (ResNeXtBlock(32, 32, group_width=16, bias=True), (4, 32, 96, 96), (4, 32, 96, 96)),
    ],
    ids=["Residual(3)", "Residual(6, 1x1, stride 2)", "ResNeXtBlock(32, 16, 1)"],
)
def test_blocks_as_in_the_book(block, x_shape, y_shape):
    with torch.no_grad():
        assert block(torch.randn(x_shape)).shape == y_shape


def test_resnext_block_groups_the_3x3_conv_and_downsamples():
    book = ResNeXtBlock(32, 32, group_width=16, bot_mul=1)
    assert book.conv2.groups == 2  # 32 channels in groups of 16
    assert book.conv2.weight.shape == (32, 16, 3, 3)  # each output channel sees its group's 16
    down = ResNeXtBlock(32, 64, groups=4, bot_mul=0.5, use_1x1conv=True, stride=2)
    with torch.no_grad():
        assert down(torch.randn(4, 32, 12, 12)).shape == (4, 64, 6, 6)
