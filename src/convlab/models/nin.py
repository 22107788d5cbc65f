"""Network in Network (Lin et al., 2013) as the book builds it in section 8.3: AlexNet's conv
layout, each conv followed by two 1x1 convs, and no dense layers at all."""

from torch import nn

from convlab.models.layers import conv1x1, xavier_init_


def nin_block(
    in_channels: int, out_channels: int, kernel_size: int, stride: int, padding: int
) -> nn.Sequential:
    """A spatial conv, then two 1x1 convs: a two-layer MLP applied to every pixel's channels."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding), nn.ReLU(),
        conv1x1(out_channels, out_channels), nn.ReLU(),
        conv1x1(out_channels, out_channels), nn.ReLU(),
    )  # fmt: skip


class NiN(nn.Module):
    """The last NiN block has one channel per class and global average pooling turns each into a
    score, which replaces AlexNet's ~50M dense weights and lets any input size through."""

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        channels: tuple[int, int, int] = (96, 256, 384),
        dropout: float = 0.5,
        xavier_init: bool = True,
    ):
        super().__init__()
        c1, c2, c3 = channels
        self.net = nn.Sequential(
            nin_block(in_channels, c1, 11, 4, 0), nn.MaxPool2d(3, stride=2),
            nin_block(c1, c2, 5, 1, 2), nn.MaxPool2d(3, stride=2),
            nin_block(c2, c3, 3, 1, 1), nn.MaxPool2d(3, stride=2),
            nn.Dropout(dropout),
            # as in the book the block ends in ReLU, so the class scores are >= 0
            nin_block(c3, num_classes, 3, 1, 1),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),  # (N, num_classes, 1, 1) -> (N, num_classes)
        )  # fmt: skip
        if xavier_init:  # the book's init_cnn
            xavier_init_(self)

    def forward(self, x):
        return self.net(x)
