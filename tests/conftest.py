"""Shared fixtures; shared constants and helpers are in tests/helpers.py."""

import shutil
from pathlib import Path

import pytest
import torch

from tests.helpers import KILL, KILLED, TINY, cli, write_idx


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


@pytest.fixture(scope="session")
def finished(tmp_path_factory) -> Path:
    """A finished tiny run of the book's sigmoid/avg LeNet (its activation and pooling differ from
    the default command line's, and leave no trace in the weights' shapes). Shared: tests copy it,
    and those that aim at it check that it never changes."""
    from convlab.train import run  # here: collecting the tests needs no Lightning

    run_dir = tmp_path_factory.mktemp("finished") / "run"
    run(overrides=[*TINY, "model=lenet", f"hydra.run.dir={run_dir}"])
    return run_dir


@pytest.fixture(scope="session")
def killed_run(tmp_path_factory) -> Path:
    """A tiny run killed (SIGKILL) in its second epoch, as a crash or a preemption leaves it:
    last.ckpt of epoch 0, no metrics.json. Made once per test run; copy it with ``killed_copy``."""
    run_dir = tmp_path_factory.mktemp("killed") / "run"
    out = cli(
        *KILLED,
        f"hydra.run.dir={run_dir}",
        KILL,
        "+callbacks.kill.step=4",
    )
    assert out.returncode == -9 and (run_dir / "checkpoints" / "last.ckpt").is_file(), out.stderr
    return run_dir


@pytest.fixture
def killed_copy(killed_run, tmp_path) -> Path:
    """A fresh copy of ``killed_run`` for one test to tamper with: resumed with
    ``resume=<copy> KILL``."""
    copy = tmp_path / "killed"
    shutil.copytree(killed_run, copy, symlinks=True)
    return copy
