"""Shared fixtures: tiny IDX files, tiny-run overrides, and a CLI runner."""

import gzip
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
REAL_DATA = Path("/usr/share/datasets/fashion-mnist")
needs_real_data = pytest.mark.skipif(
    not (REAL_DATA / "train-images-idx3-ubyte.gz").exists(),
    reason="real FashionMNIST not installed (apt-get install dataset-fashion-mnist)",
)

# the fastest configuration that still trains, validates, tests and checkpoints
TINY = [
    "data=synthetic",
    "trainer.max_epochs=1",
    "trainer.enable_progress_bar=false",
    "trainer.limit_train_batches=3",
    "trainer.limit_val_batches=2",
    "trainer.limit_test_batches=2",
    "callbacks.dashboards=null",
]


def idx_bytes(array: torch.Tensor) -> bytes:
    """An unsigned-byte IDX file: 0, 0, 0x08, ndim, big-endian sizes, data."""
    header = bytes([0, 0, 0x08, array.dim()]) + b"".join(s.to_bytes(4, "big") for s in array.shape)
    return header + array.to(torch.uint8).numpy().tobytes()


def write_idx(path: Path, array: torch.Tensor, gz: bool = True) -> Path:
    path = path.with_name(path.name + ".gz") if gz else path
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


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


def cli(*args: str, cwd: Path = ROOT, timeout: int = 600) -> subprocess.CompletedProcess:
    """`python train.py ARGS` as a user runs it."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "HYDRA_FULL_ERROR": "0"}
    return subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
