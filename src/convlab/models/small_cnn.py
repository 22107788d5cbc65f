"""The small Keras-style CNN of the course notes' MNIST experiment (TensorFlow's beginner CNN):
unpadded 3x3 convs with 32, 64, 64 channels, 2x2 max-pools between them, a dense layer of 64."""

from collections.abc import Sequence

import torch
from torch import nn

from convlab.models.layers import feature_size, smallest_input, with_defaults, xavier_init_


def small_cnn_features(in_channels: int, channels: Sequence[int]) -> list[nn.Module]:
    """Unpadded 3x3 convs with ReLU (Keras's "valid"), a 2x2 max-pool between each two."""
    layers: list[nn.Module] = []
    c = in_channels
    for i, out_channels in enumerate(channels):
        if i > 0:  # pools between the convs only: a 3x3 map is left for the dense layer at 28
            layers.append(nn.MaxPool2d(2))
        layers += [nn.Conv2d(c, out_channels, 3), nn.ReLU()]
        c = out_channels
    return layers


class SmallCNN(nn.Module):
    """93,322 parameters at 28x28, 1 channel, 10 classes, as Keras's summary prints. It returns
    logits where the Keras model ends in a softmax: the cross-entropy loss applies log-softmax."""

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        image_size: int | list[int] = 28,
        channels: tuple[int, ...] = (32, 64, 64),
        hidden: int = 64,
        xavier_init: bool = True,
    ):
        super().__init__()
        features = small_cnn_features(in_channels, channels)
        c = channels[-1] if channels else in_channels
        h, w = feature_size(features, image_size)  # 28 -> 26 -> 13 -> 11 -> 5 -> 3
        self.net = nn.Sequential(
            *features,
            nn.Flatten(),  # (N, c, h, w) -> (N, c*h*w): 64*3*3 = 576 at 28 (Keras flattens HWC)
            nn.Linear(c * h * w, hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )
        if xavier_init:  # Keras's default (glorot_uniform), the same as the book's init_cnn
            xavier_init_(self)

    @classmethod
    def min_input_size(cls, **config) -> int:
        """The smallest data.resize (each side) these constructor arguments take: 18 for the
        notes' three convs. image_size is not read."""
        a = with_defaults(cls, config)
        with torch.device("meta"):  # the layers' geometry only: no weights allocated
            return smallest_input(small_cnn_features(a["in_channels"], a["channels"]))

    def forward(self, x):
        return self.net(x)
