"""The toy images of section 7.2.3 and of the students' notes."""

import torch
from torch import Tensor


def band_image() -> Tensor:
    """The book's 6x8 image: white (1) with a black (0) vertical band over columns 2-5."""
    X = torch.ones(6, 8)
    X[:, 2:6] = 0
    return X


def framed_image() -> Tensor:
    """The notes' 8x10 image: a 6x4 black block (rows 1-6, columns 3-6) inside a white frame.

    Its white frame adds flat area but no edges, which is what breaks the book's learning rate.
    """
    X = torch.ones(8, 10)
    X[1:-1, 3:-3] = 0
    return X
