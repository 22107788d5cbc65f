"""The book's example inputs of sections 7.2-7.5, and the toy images of 7.2.3 and of the notes.

Functions, not constants: each call gives a fresh tensor that a caller may modify."""

import torch
from torch import Tensor


def example_input(channels: int = 1) -> Tensor:
    """The book's 3x3 input arange(9); with channels=2, the (2, 3, 3) stack of it and it + 1."""
    X = torch.arange(9.0).reshape(3, 3)
    return X if channels == 1 else torch.stack([X + c for c in range(channels)])


def example_kernel(channels: int = 1) -> Tensor:
    """The book's 2x2 kernel arange(4); with channels=2, the (2, 2, 2) stack of it and it + 1."""
    K = torch.arange(4.0).reshape(2, 2)
    return K if channels == 1 else torch.stack([K + c for c in range(channels)])


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
