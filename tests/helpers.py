"""What the tests share: the repository's paths, tiny-run overrides, IDX writers, a CLI runner, and
test-only callbacks importable by the runs the tests start (``tests.helpers.KillAt`` on a command
line: train.py runs from the repository root)."""

import contextlib
import dataclasses
import errno
import gzip
import hashlib
import json
import logging
import os
import runpy
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import lightning as L
import pytest
import torch
from hydra.experimental.callback import Callback as HydraCallback

from convlab.paths import CONF_DIR
from convlab.record import RunRecord

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
    "callbacks.book_figure=null",
]
# two epochs of three steps: the run conftest's ``killed_run`` kills in its second epoch
KILLED = [*TINY, "trainer.max_epochs=2"]
# the test callbacks that stop a run, as a resume command repeats them (they name code, which
# resume never takes from a record; they never fire in a continued run)
KILL = "+callbacks.kill._target_=tests.helpers.KillAt"
STOP = "+callbacks.stop._target_=tests.helpers.SignalAt"


def idx_bytes(array: torch.Tensor) -> bytes:
    """An unsigned-byte IDX file: 0, 0, 0x08, ndim, big-endian sizes, data."""
    header = bytes([0, 0, 0x08, array.dim()]) + b"".join(s.to_bytes(4, "big") for s in array.shape)
    return header + array.to(torch.uint8).numpy().tobytes()


def write_idx(path: Path, array: torch.Tensor, gz: bool = True) -> Path:
    path = path.with_name(path.name + ".gz") if gz else path
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


# smallest sizes at which every model config trains (its min_input_size, at least 28)
SIZES = {"alexnet": 65, "nin": 67, "vgg11": 32, "vgg_small": 32}
MODEL_CONFIGS = sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml"))
EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))


def cli(*args: str, cwd: Path = ROOT, timeout: int = 600, **options) -> subprocess.CompletedProcess:
    """`python train.py ARGS` as a user runs it (``options``: more of subprocess.run's)."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "HYDRA_FULL_ERROR": "0"}
    return subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        **options,
    )


def comparable(record: RunRecord) -> RunRecord:
    """A record without what legitimately differs between two identical runs."""
    return dataclasses.replace(record, timing={}, paths={}, overrides=[])


def tree_state(directory: Path) -> dict:
    """Every file under a directory with its size, modification time and content hash."""
    return {
        str(p.relative_to(directory)): (
            p.stat().st_size,
            p.stat().st_mtime_ns,
            hashlib.sha1(p.read_bytes()).hexdigest(),
        )
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def one_line_error(out) -> str:
    assert out.returncode != 0, out.stdout
    assert "Traceback" not in out.stderr, out.stderr
    lines = [line for line in out.stderr.strip().splitlines() if line.startswith("convlab: error:")]
    assert len(lines) == 1, out.stderr
    return lines[0]


def checkpoint_of(run_dir: Path) -> Path:
    """The checkpoint a finished run tested, as its record names it."""
    return Path(json.loads((run_dir / "metrics.json").read_text())["paths"]["checkpoint"])


def unfinished_copy(finished: Path, to: Path) -> Path:
    """A run as a kill would leave it: everything but metrics.json."""
    shutil.copytree(finished, to)
    (to / "metrics.json").unlink()
    return to


def write_job(sweep: Path, name: str, overrides: list[str], val_acc: float, **extra) -> Path:
    """A job directory as a finished run leaves it, with a hand-written metrics.json."""
    job = sweep / name
    (job / ".hydra").mkdir(parents=True)
    record = {
        "status": "finished",
        "metrics": {"val/acc": val_acc, "val/loss": 1.0, "test/acc": val_acc - 0.01},
        "best_epoch": 1,
        "epochs_run": 2,
        "history": [
            {"epoch": 0, "train/loss": 2.0, "val/loss": 1.5, "val/acc": val_acc / 2},
            {"epoch": 1, "train/loss": 1.0, "val/loss": 1.0, "val/acc": val_acc},
        ],
        "model": {"params": 61706},
        "overrides": overrides,
        "timing": {"wall_s": 10.0},
        "paths": {"run_dir": str(job), "checkpoint": f"{job}/checkpoints/best.ckpt"},
    }
    record.update(extra)
    (job / "metrics.json").write_text(json.dumps(record))
    return job


def failure_job(sweep: Path, name: str, status: str, error: str, resume=None, **extra) -> Path:
    """A job directory as a failed or interrupted run leaves it: .hydra and failure.json."""
    job = sweep / name
    (job / ".hydra").mkdir(parents=True)
    record = {"status": status, "error": error, "overrides": [], "resume": resume, **extra}
    (job / "failure.json").write_text(json.dumps(record))
    return job


def run_script(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """scripts/compare.py ARGS in this process: exit code, stdout, stderr."""
    monkeypatch.setattr(sys, "argv", ["compare.py", *args])
    try:
        runpy.run_path(str(ROOT / "scripts" / "compare.py"), run_name="__main__")
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
        if isinstance(e.code, str):
            print(e.code, file=sys.stderr)
    out = capsys.readouterr()
    return code, out.out, out.err


def run_to_the_end(run_dir: Path, *overrides: str):
    """The record of an uninterrupted run through the CLI: what a stopped one must end as."""
    from convlab.record import RunRecord

    out = cli(*overrides, f"hydra.run.dir={run_dir}")
    assert out.returncode == 0, out.stderr
    return RunRecord.read(run_dir / "metrics.json")


def printed_command(output: str, prefix: str = "continue with: ") -> list[str]:
    """The arguments after ``python train.py`` of the command that a line of output prints."""
    line = next(line for line in output.splitlines() if prefix in line)
    args = shlex.split(line.split(prefix, 1)[1] if prefix else line)
    assert args[:2] == ["python", "train.py"], line
    return args[2:]


class KillAt(L.Callback):
    """SIGKILLs the process after a given optimizer step: a crash at a known point, not a race.
    Never in a resumed run: the command convlab prints then runs verbatim."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step and trainer.ckpt_path is None:  # never once resumed
            os.kill(os.getpid(), signal.SIGKILL)


class SignalAt(L.Callback):
    """Sends this process a signal after a given optimizer step, as SLURM or Ctrl+C would.
    Never in a continued run (resumed, or started over where its record says it was stopped):
    the command convlab prints then runs verbatim."""

    def __init__(self, step: int, signum: int = signal.SIGTERM):
        self.step, self.signum = step, signum

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        stopped_before = (Path(trainer.default_root_dir) / "failure.json").exists()
        if trainer.global_step == self.step and trainer.ckpt_path is None and not stopped_before:
            os.kill(os.getpid(), self.signum)


class CrashAt(L.Callback):
    """An unexpected error (not a user's mistake) at the start of a given epoch. Never in a
    continued run (resumed, or started over where its record says it failed): the command
    convlab prints then runs verbatim."""

    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        failed_before = (Path(trainer.default_root_dir) / "failure.json").exists()
        if trainer.current_epoch == self.epoch and trainer.ckpt_path is None and not failed_before:
            raise RuntimeError("CUDA out of memory (simulated)")


class SignalIn(L.Callback):
    """Sends this process a signal from inside a given hook (``on_validation_batch_end``,
    ``on_save_checkpoint``, ``on_test_batch_end``, ...) the first time it runs in the given epoch
    (any epoch: None). Never in a continued run (its failure.json says it was stopped): the
    command convlab prints then runs verbatim."""

    def __init__(self, hook: str, signum: int = signal.SIGTERM, epoch: int | None = None):
        self.signum, self.epoch, self.sent = signum, epoch, False
        setattr(self, hook, self._send)

    def _send(self, trainer, *args) -> None:
        stopped_before = (Path(trainer.default_root_dir) / "failure.json").exists()
        if not (self.sent or stopped_before) and self.epoch in (None, trainer.current_epoch):
            self.sent = True
            os.kill(os.getpid(), self.signum)


class SignalOnJobStart(HydraCallback):
    """Sends this process a signal as Hydra starts the job: before the run claims its directory."""

    def __init__(self, signum: int = signal.SIGTERM):
        self.signum = signum

    def on_job_start(self, config, **kwargs) -> None:
        os.kill(os.getpid(), self.signum)


class FillDisk(L.Callback):
    """Fills the file system that holds the run directory (a file beside it) at the start of a
    given epoch: a real full disk at a known point. Never in a resumed run."""

    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch == self.epoch and trainer.ckpt_path is None:
            filler = Path(trainer.default_root_dir).parent / "filler"
            with open(filler, "ab", buffering=0) as f:
                try:
                    while True:
                        f.write(bytes(1 << 16))
                except OSError as e:
                    assert e.errno == errno.ENOSPC, e


def offline_loggers(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """W&B keeps its settings and cache in ``home`` and works offline, and no MLflow store comes
    from the environment: nothing leaves the machine and nothing asks for a login."""
    for name in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(name, str(home))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


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
