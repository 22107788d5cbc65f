"""The small Keras-style CNN of the course notes' MNIST experiment (TensorFlow's beginner CNN):
unpadded 3x3 convs with 32, 64, 64 channels, 2x2 max-pools between them, a dense layer of 64."""

from torch import nn

from convlab.models.layers import feature_size, xavier_init_


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
        features: list[nn.Module] = []
        c = in_channels
        for i, out_channels in enumerate(channels):
            if i > 0:  # pools between the convs only: a 3x3 map is left for the dense layer at 28
                features.append(nn.MaxPool2d(2))
            features += [nn.Conv2d(c, out_channels, 3), nn.ReLU()]  # Keras's "valid": no padding
            c = out_channels
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

    def forward(self, x):
        return self.net(x)
