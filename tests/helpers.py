"""What the tests share: the repository's paths, tiny-run overrides, IDX writers, a CLI runner, and
test-only callbacks importable by the runs the tests start (``tests.helpers.KillAt`` on a command
line: train.py runs from the repository root)."""

import contextlib
import gzip
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import lightning as L
import pytest
import torch

from convlab.paths import CONF_DIR

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


MODEL_CONFIGS = sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml"))
EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))


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


class KillAt(L.Callback):
    """SIGKILLs the process after a given optimizer step: a crash at a known point, not a race."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


class SignalAt(L.Callback):
    """Sends this process a signal after a given optimizer step, as SLURM or Ctrl+C would."""

    def __init__(self, step: int, signum: int = signal.SIGTERM):
        self.step, self.signum = step, signum

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), self.signum)


class CrashAt(L.Callback):
    """An unexpected error (not a user's mistake) at the start of a given epoch."""

    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch == self.epoch:
            raise RuntimeError("CUDA out of memory (simulated)")


@contextlib.contextmanager
def lightning_log_at(level: int) -> Iterator[logging.Logger]:
    """Lightning's logger at this level for the block, then as it was."""
    log = logging.getLogger("lightning.pytorch")
    before = log.level
    log.setLevel(level)
    try:
        yield log
    finally:
        log.setLevel(before)
