"""Small building blocks shared by the model families, looked up by the names the configs use."""

import inspect
from collections.abc import Iterable

from torch import nn

from convlab.errors import ConvlabError
from convlab.sizes import pair


class ModelConfigError(ConvlabError, ValueError):
    """A model argument that cannot work. A ConvlabError, so the command line prints it as one
    line; a ValueError, as any bad constructor argument is."""


ACTIVATIONS = {
    "sigmoid": nn.Sigmoid,
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
}
POOLS = {"avg": nn.AvgPool2d, "max": nn.MaxPool2d}
_GEOMETRY = ("kernel_size", "stride", "padding", "dilation")
_LARGEST = 2**16  # no image this side of 65,536 pixels: a network needing more is a mistake


def _lookup(table: dict, kind: str, name: str):
    if name not in table:
        raise ModelConfigError(f"model.{kind}={name} is unknown; choose one of {', '.join(table)}")
    return table[name]


def activation_layer(name: str) -> nn.Module:
    return _lookup(ACTIVATIONS, "activation", name)()


def pool_layer(name: str, kernel_size: int) -> nn.Module:
    """Pooling with stride = kernel_size, as in LeNet."""
    return _lookup(POOLS, "pool", name)(kernel_size)


def conv3x3(
    in_channels: int, out_channels: int, stride: int = 1, groups: int = 1, bias: bool = True
) -> nn.Conv2d:
    """3x3 conv with padding 1: keeps the size at stride 1, halves it (rounding up) at stride 2."""
    return nn.Conv2d(in_channels, out_channels, 3, stride, padding=1, groups=groups, bias=bias)


def conv1x1(in_channels: int, out_channels: int, stride: int = 1, bias: bool = True) -> nn.Conv2d:
    """1x1 conv: mixes channels per pixel; at stride 2 it subsamples (shortcuts that halve)."""
    return nn.Conv2d(in_channels, out_channels, 1, stride, bias=bias)


def _shrink(layers: list[nn.Module], size) -> tuple[int, int, nn.Module | None]:
    """The (h, w) the layers leave of a size input, and the first layer that leaves nothing (else
    None), by PyTorch's floor rule; ceil_mode is not modelled."""
    h, w = pair(size)
    for m in layers:
        # AvgPool2d has no dilation attribute: 1
        k, s, p, d = (pair(getattr(m, a, 1)) for a in _GEOMETRY)
        h, w = ((n + 2 * p[i] - d[i] * (k[i] - 1) - 1) // s[i] + 1 for i, n in enumerate((h, w)))
        if h < 1 or w < 1:
            return h, w, m
    return h, w, None


def _geometry(layers: Iterable[nn.Module]) -> list[nn.Module]:
    """The convs and pools among the layers and their submodules, in order: the ones that resize."""
    return [
        m
        for layer in layers
        for m in layer.modules()
        if isinstance(m, nn.Conv2d | nn.MaxPool2d | nn.AvgPool2d)
    ]


def smallest_input(layers: Iterable[nn.Module]) -> int:
    """The smallest side of a square input that the layers leave at least one pixel of.

    A layer's output never shrinks as its input grows, so the sizes that fit are all those from
    some side up: doubling finds one that fits, bisection the first. Layers built on the meta
    device will do: only their geometry is read.
    """
    layers = _geometry(layers)

    def fits(side: int) -> bool:
        return _shrink(layers, side)[2] is None

    hi = 1
    while not fits(hi):
        if hi >= _LARGEST:
            raise ModelConfigError(
                f"the network needs inputs larger than {_LARGEST}x{_LARGEST}: its convs and pools "
                "shrink every smaller one to nothing; use fewer or smaller layers"
            )
        hi *= 2
    lo = hi // 2  # does not fit, or 0
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if fits(mid) else (mid, hi)
    return hi


def too_small(size, need: int, why: str = "") -> ModelConfigError:
    """The error for an input below the network's smallest side, naming the fix."""
    h, w = pair(size)
    return ModelConfigError(
        f"input {h}x{w} is too small{why}: this network takes at least {need}x{need}; "
        f"set data.resize={need} or more"
    )


def feature_size(
    layers: Iterable[nn.Module], image_size: int | list[int] | tuple[int, int]
) -> tuple[int, int]:
    """The (h, w) a stack of convs and pools leaves of an image_size input, so a dense layer can be
    sized before the first batch.

    Refuses an input that some layer would shrink to nothing (exactly when the forward pass would
    fail), naming the smallest input that works.
    """
    layers = _geometry(layers)
    h, w, failed = _shrink(layers, image_size)
    if failed is not None:
        why = f" ({type(failed).__name__} would output {h}x{w})"
        raise too_small(image_size, smallest_input(layers), why)
    return h, w


def with_defaults(cls: type, config: dict) -> dict:
    """A model's keyword arguments completed with its constructor's defaults; an unknown key is a
    TypeError, as in the constructor."""
    bound = inspect.signature(cls).bind_partial(**config)
    bound.apply_defaults()
    return bound.arguments


def dense_head(in_features: int, hidden: int, num_classes: int, dropout: float) -> list[nn.Module]:
    """AlexNet's and VGG's classifier: two hidden dense layers with dropout, the regulariser that
    keeps their ~10^8 dense weights from memorising the data. Returned as a list so the layers sit
    flat in the model's Sequential, as in the book's layer tables."""
    return [
        nn.Linear(in_features, hidden), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(hidden, num_classes),
    ]  # fmt: skip


def xavier_init_(net: nn.Module) -> None:
    """The book's init_cnn: Xavier-uniform weights for every conv and dense layer (Keras's default
    too), in place; biases and BatchNorm keep PyTorch's defaults."""
    for m in net.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            nn.init.xavier_uniform_(m.weight)
