"""LeNet-5 (LeCun et al., 1998) as the book builds it in section 7.6, with the two switches that
separate the 1998 network from a modern one: the activation and the pooling."""

from torch import nn

from convlab.models.layers import activation_layer, as_pair, pool_layer, xavier_init_


class LeNet(nn.Module):
    """Two conv/pool stages and a three-layer MLP head.

    ``image_size`` sizes the first dense layer; the book's LazyLinear would defer that to the first
    batch, which hides the parameter count and makes checkpoints depend on a forward pass.
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        image_size: int | list[int] = 28,
        channels: tuple[int, int] = (6, 16),
        hidden: tuple[int, int] = (120, 84),
        kernel_size: int = 5,
        activation: str = "sigmoid",
        pool: str = "avg",
        xavier_init: bool = True,
    ):
        super().__init__()
        c1, c2 = channels
        h, w = as_pair(image_size)
        # conv1 keeps the size (padding 2 as the book, for 28x28 inputs); each pool halves it; conv2
        # loses kernel_size - 1 pixels
        h, w = (h // 2 - kernel_size + 1) // 2, (w // 2 - kernel_size + 1) // 2
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, c1, kernel_size, padding=kernel_size // 2),
            activation_layer(activation),
            pool_layer(pool, 2),
            nn.Conv2d(c1, c2, kernel_size),
            activation_layer(activation),
            pool_layer(pool, 2),
            nn.Flatten(),  # (N, c2, h, w) -> (N, c2*h*w): 16*5*5 = 400 at 28x28
            nn.Linear(c2 * h * w, hidden[0]),
            activation_layer(activation),
            nn.Linear(hidden[0], hidden[1]),
            activation_layer(activation),
            nn.Linear(hidden[1], num_classes),
        )
        if xavier_init:  # the book's init; sigmoid LeNet barely trains from PyTorch's default
            xavier_init_(self)

    def forward(self, x):
        return self.net(x)
