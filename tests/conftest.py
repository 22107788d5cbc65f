"""Shared fixtures; shared constants and helpers are in tests/helpers.py."""

from pathlib import Path

import pytest
import torch

from tests.helpers import write_idx


@pytest.fixture
def idx_dir(tmp_path: Path) -> Path:
    """A FashionMNIST-shaped dataset of 300 train and 50 test images in the official file names."""
    g = torch.Generator().manual_seed(0)
    root = tmp_path / "idx"
    root.mkdir()
    for split, n in (("train", 300), ("t10k", 50)):
        images = torch.randint(0, 256, (n, 28, 28), generator=g)
        write_idx(root / f"{split}-images-idx3-ubyte", images)
        write_idx(root / f"{split}-labels-idx1-ubyte", torch.arange(n) % 10)
    return root


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return tmp_path / "run"
