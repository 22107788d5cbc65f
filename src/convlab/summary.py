"""The book's ``layer_summary``: each layer's output shape for one input, and the parameter count.

Read by people (``layer_table``) and by tests (``layer_shapes``)."""

import torch
from torch import nn


def _layers(net: nn.Module) -> list[nn.Module]:
    """The model's top-level children, with a child nn.Sequential (the book's ``self.net``) opened
    one level: LeNet lists Conv2d, Sigmoid, ...; VGG lists its blocks, each a Sequential."""
    if isinstance(net, nn.Sequential):
        return list(net)
    layers: list[nn.Module] = []
    for child in net.children():
        layers += list(child) if isinstance(child, nn.Sequential) else [child]
    return layers


def layer_shapes(net: nn.Module, input_shape: tuple[int, ...]) -> list[tuple[str, tuple]]:
    """(class name, output shape) of each top-level layer for a zero input of ``input_shape``.

    Assumes the forward pass chains those layers in order, as every convlab model does. Runs in
    eval mode (BatchNorm then takes a batch of one) without gradients; the mode is restored.
    """
    was_training = net.training
    param = next(net.parameters(), None)
    x = torch.zeros(input_shape, device=param.device if param is not None else None)
    shapes = []
    try:
        net.eval()
        with torch.no_grad():
            for layer in _layers(net):
                x = layer(x)
                shapes.append((type(layer).__name__, tuple(x.shape)))
    finally:
        net.train(was_training)
    return shapes


def layer_table(net: nn.Module, input_shape: tuple[int, ...]) -> str:
    """The layer shapes as an aligned text table, then the total number of parameters."""
    rows = [("Layer", "Output shape")] + [(n, str(s)) for n, s in layer_shapes(net, input_shape)]
    width = max(len(name) for name, _ in rows) + 2
    lines = [f"{name:<{width}}{shape}" for name, shape in rows]
    lines.insert(1, "-" * max(len(line) for line in lines))
    total = sum(p.numel() for p in net.parameters())
    return "\n".join([*lines, f"Total parameters: {total:,}"])
