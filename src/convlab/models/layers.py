"""Small building blocks shared by the model families, looked up by the names the configs use."""

from collections.abc import Iterable

from torch import nn

from convlab.errors import ConvlabError

ACTIVATIONS = {
    "sigmoid": nn.Sigmoid,
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
}
POOLS = {"avg": nn.AvgPool2d, "max": nn.MaxPool2d}
_GEOMETRY = ("kernel_size", "stride", "padding", "dilation")


def _lookup(table: dict, kind: str, name: str):
    if name not in table:
        raise ConvlabError(f"model.{kind}={name} is unknown; choose one of {', '.join(table)}")
    return table[name]


def activation_layer(name: str) -> nn.Module:
    return _lookup(ACTIVATIONS, "activation", name)()


def pool_layer(name: str, kernel_size: int) -> nn.Module:
    """Pooling with stride = kernel_size, as in LeNet."""
    return _lookup(POOLS, "pool", name)(kernel_size)


def as_pair(size: int | list[int] | tuple[int, int]) -> tuple[int, int]:
    """An image size given as one side (28) or as [h, w]."""
    if isinstance(size, int):
        return size, size
    h, w = size
    return int(h), int(w)


def conv3x3(
    in_channels: int, out_channels: int, stride: int = 1, groups: int = 1, bias: bool = True
) -> nn.Conv2d:
    """3x3 conv with padding 1: keeps the size at stride 1, halves it (rounding up) at stride 2."""
    return nn.Conv2d(in_channels, out_channels, 3, stride, padding=1, groups=groups, bias=bias)


def conv1x1(in_channels: int, out_channels: int, stride: int = 1, bias: bool = True) -> nn.Conv2d:
    """1x1 conv: mixes channels per pixel; at stride 2 it subsamples (shortcuts that halve)."""
    return nn.Conv2d(in_channels, out_channels, 1, stride, bias=bias)


def feature_size(
    layers: Iterable[nn.Module], image_size: int | list[int] | tuple[int, int]
) -> tuple[int, int]:
    """The (h, w) a stack of convs and pools leaves of an image_size input (PyTorch's floor rule;
    ceil_mode is not modelled), so a dense layer can be sized before the first batch.

    Refuses an input that some layer would shrink to nothing: exactly when the forward pass fails.
    """
    h, w = as_pair(image_size)
    for m in (m for layer in layers for m in layer.modules()):
        if isinstance(m, nn.Conv2d | nn.MaxPool2d | nn.AvgPool2d):
            # AvgPool2d has no dilation attribute: 1
            k, s, p, d = (as_pair(getattr(m, a, 1)) for a in _GEOMETRY)
            h, w = (
                (n + 2 * p[i] - d[i] * (k[i] - 1) - 1) // s[i] + 1 for i, n in enumerate((h, w))
            )
            if h < 1 or w < 1:
                raise ConvlabError(
                    f"input {as_pair(image_size)} is too small: {type(m).__name__} would output "
                    f"{h}x{w}; raise data.resize (see the model config's min_input_size)"
                )
    return h, w


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
