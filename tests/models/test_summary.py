"""layer_shapes / layer_table against the book's LeNet table (section 7.6)."""

import torch
from torch import nn

from convlab.models.lenet import LeNet
from convlab.models.resnet import ResNet
from convlab.summary import layer_shapes, layer_table

BOOK_LENET = [
    ("Conv2d", (1, 6, 28, 28)),
    ("Sigmoid", (1, 6, 28, 28)),
    ("AvgPool2d", (1, 6, 14, 14)),
    ("Conv2d", (1, 16, 10, 10)),
    ("Sigmoid", (1, 16, 10, 10)),
    ("AvgPool2d", (1, 16, 5, 5)),
    ("Flatten", (1, 400)),
    ("Linear", (1, 120)),
    ("Sigmoid", (1, 120)),
    ("Linear", (1, 84)),
    ("Sigmoid", (1, 84)),
    ("Linear", (1, 10)),
]


def test_lenet_matches_the_book():
    assert layer_shapes(LeNet(), (1, 1, 28, 28)) == BOOK_LENET


def test_relu_max_lenet_has_the_same_shapes():
    modern = {"Sigmoid": "ReLU", "AvgPool2d": "MaxPool2d"}
    expected = [(modern.get(name, name), shape) for name, shape in BOOK_LENET]
    assert layer_shapes(LeNet(activation="relu", pool="max"), (1, 1, 28, 28)) == expected


def test_a_sequential_model_lists_its_own_layers():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten())
    assert layer_shapes(net, (1, 1, 5, 5)) == [("Conv2d", (1, 2, 3, 3)), ("Flatten", (1, 18))]


def test_layer_table_is_aligned_and_ends_with_the_parameter_count():
    lines = layer_table(LeNet(), (1, 1, 28, 28)).splitlines()
    assert lines[0].split() == ["Layer", "Output", "shape"]
    assert set(lines[1]) == {"-"}
    rows = lines[2:-1]
    assert [row.split(maxsplit=1) for row in rows] == [[n, str(s)] for n, s in BOOK_LENET]
    assert len({row.index("(") for row in rows}) == 1  # the shapes form one column
    # convs: out * (in * k * k + 1); dense: out * (in + 1)
    total = 6 * (1 * 25 + 1) + 16 * (6 * 25 + 1) + 120 * 401 + 84 * 121 + 10 * 85
    assert lines[-1] == f"Total parameters: {total:,}"


def test_runs_in_eval_mode_without_gradients_and_restores_the_mode():
    net = ResNet(arch=((1, 8),))
    seen = []
    net.net[0].register_forward_hook(
        lambda m, i, o: seen.append((m.training, torch.is_grad_enabled()))
    )
    stats = net.net[0][1].running_mean.clone()
    layer_shapes(net.train(), (2, 1, 16, 16))
    assert seen == [(False, False)]
    assert net.training
    assert torch.equal(net.net[0][1].running_mean, stats)  # BatchNorm did not update
    layer_shapes(net.eval(), (2, 1, 16, 16))
    assert not net.training
