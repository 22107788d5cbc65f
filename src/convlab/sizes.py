"""Sizes given as one number for both axes (3) or as a (height, width) pair, as torch takes them:
shared by the from-scratch operations, the models and the data's resize."""

from collections.abc import Sequence

Size2 = int | Sequence[int]


def pair(size: Size2) -> tuple[int, int]:
    """(size, size) for one number, else the (height, width) pair as ints."""
    if isinstance(size, int):
        return size, size
    h, w = size
    return int(h), int(w)
