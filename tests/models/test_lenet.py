"""LeNet of any depth (the book's exercise 7.6.2): its layers, its dense input size, its smallest
input, and the combinations it refuses."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from convlab.errors import ConvlabError
from convlab.models.layers import ModelConfigError
from convlab.models.lenet import LeNet
from convlab.summary import layer_shapes

DEEP = dict(channels=[6, 16, 32], kernel_size=[5, 3, 3], hidden=[120, 84, 32])


def layers(net: nn.Module, kind: type) -> list[nn.Module]:
    return [m for m in net.modules() if isinstance(m, kind)]


def test_three_convs_and_three_hidden_layers_train_a_step():
    torch.manual_seed(0)
    net = LeNet(**DEEP, activation="relu", pool="max")
    convs, dense = layers(net, nn.Conv2d), layers(net, nn.Linear)
    assert [(c.out_channels, c.kernel_size, c.padding) for c in convs] == [
        (6, (5, 5), (2, 2)),  # LeNet-5's padding on the first conv only
        (16, (3, 3), (0, 0)),
        (32, (3, 3), (0, 0)),
    ]
    # 28 -> 28 -> 14 -> 12 -> 6 -> 4 -> 2: 32*2*2 = 128 into the first dense layer
    assert [(d.in_features, d.out_features) for d in dense] == [
        (128, 120), (120, 84), (84, 32), (32, 10)
    ]  # fmt: skip
    x, y = torch.randn(8, 1, 28, 28), torch.arange(8)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    before = F.cross_entropy(net(x), y)
    before.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())
    optimizer.step()
    with torch.no_grad():
        assert F.cross_entropy(net(x), y) < before


def test_min_input_size_follows_the_layers():
    # backwards from one pixel: pool 2 <- conv3 4 <- pool 8 <- conv3 10 <- pool 20 <- padded conv 20
    assert LeNet.min_input_size(**DEEP) == 20
    assert LeNet.min_input_size() == 12  # LeNet-5: 1 <- 2 <- 6 <- 12 <- 12
    assert LeNet.min_input_size(image_size=1000) == 12  # the question, not an answer
    net = LeNet(**DEEP, image_size=20)
    assert net(torch.zeros(1, 1, 20, 20)).shape == (1, 10)
    with pytest.raises(ModelConfigError, match=r"set data\.resize=20 or more"):
        LeNet(**DEEP, image_size=19)


def test_kernel_size_4_at_29_pixels_works():
    # 29 -> 30 (padding 2 widens a 4x4 kernel's output) -> 15 -> 12 -> 6: 16*6*6 = 576
    net = LeNet(kernel_size=4, image_size=29)
    assert layers(net, nn.Linear)[0].in_features == 576
    assert net(torch.zeros(2, 1, 29, 29)).shape == (2, 10)


def test_lenet5_is_the_books():
    net = LeNet()
    assert sum(p.numel() for p in net.parameters()) == 61_706
    assert layer_shapes(net, (1, 1, 28, 28))[6] == ("Flatten", (1, 400))


def test_padding_and_hidden_as_given():
    net = LeNet(channels=[8, 8], kernel_size=3, padding=1, hidden=[])
    assert [c.padding for c in layers(net, nn.Conv2d)] == [(1, 1), (1, 1)]
    # no hidden layer: the flattened 8*7*7 features go straight to the classes
    assert [(d.in_features, d.out_features) for d in layers(net, nn.Linear)] == [(392, 10)]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            dict(channels=[6, 16, 32], kernel_size=[5, 5]),
            "model.kernel_size=[5, 5] does not match model.channels' 3 convs",
        ),
        (dict(padding=[2, 0, 0]), "model.padding=[2, 0, 0] does not match model.channels' 2 convs"),
        (dict(image_size=11), "input 11x11 is too small (AvgPool2d would output 0x0)"),
        # 7x7 kernels: 1 <- 2 <- 8 <- 16 <- 16 (the padded first conv keeps the size)
        (dict(kernel_size=7, image_size=[28, 15]), "set data.resize=16 or more"),
    ],
    ids=["kernel_size", "padding", "too-small", "too-small-side"],
)
def test_refused_in_one_line(kwargs, message):
    with pytest.raises(ModelConfigError) as refused:
        LeNet(**kwargs)
    assert message in str(refused.value) and "\n" not in str(refused.value)
    assert isinstance(refused.value, ConvlabError | ValueError)  # the CLI's one line; a bad value


def test_a_stack_no_image_fits_is_refused():
    with pytest.raises(ModelConfigError, match="needs inputs larger than 65536x65536"):
        LeNet.min_input_size(channels=[4] * 20)
