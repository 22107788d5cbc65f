"""Every way a run stops leaves an exact, resumable state: kill -9, a stop signal at any point (a
checkpoint being written included), a full disk or a file-size limit."""

import errno
import json
import os
import resource
import shlex
import signal
import subprocess
from pathlib import Path

import pytest
import torch

import convlab.checkpoint_io
from convlab.checkpoint_io import AtomicCheckpointIO
from convlab.errors import ConvlabError
from convlab.record import RunRecord
from convlab.signals import Interrupted, interruptible
from convlab.train import run
from tests.helpers import (
    KILL,
    KILLED,
    ROOT,
    STOP,
    TINY,
    cli,
    comparable,
    one_line_error,
    printed_command,
    run_to_the_end,
)

# The same val/acc after every epoch (a learning rate of 1e-30 leaves LeNet's weights as they are,
# and it has no batch norm): epoch 0 stays the best, no later epoch improves.
STEADY = [
    *TINY,
    "model=lenet",
    "optimizer=sgd",
    "optimizer.lr=1e-30",
    "scheduler=none",
    "trainer.max_epochs=3",
]
SIGNAL_IN = "+callbacks.stop._target_=tests.helpers.SignalIn"
FILL_DISK = "+callbacks.fill._target_=tests.helpers.FillDisk"


def last_epoch(run_dir: Path) -> int:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["epoch"]


def no_temporaries(run_dir: Path) -> bool:
    return not list(run_dir.rglob(".*.tmp"))


@pytest.mark.parametrize("validation", [[], ["data.val_size=0"]], ids=["val/acc", "no val split"])
def test_a_stop_after_an_epoch_that_did_not_improve_resumes_at_the_next_epoch(tmp_path, validation):
    """Lightning writes last.ckpt only with a new best (without validation, only when training
    ends): stopped in epoch 2, the run resumed from epoch 0 (or from scratch) and trained epoch 1
    again."""
    run_dir = tmp_path / "run"
    stop = [STOP, "+callbacks.stop.step=7"]  # after the first step of epoch 2
    with pytest.raises(Interrupted):
        run(overrides=[*STEADY, *validation, f"hydra.run.dir={run_dir}", *stop])
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["epoch"] == 1  # the last completed epoch: only epoch 2 is trained again
    history = ckpt["callbacks"]["History"]["epochs"]
    if not validation:  # epoch 1 did not improve: only epoch 0's best checkpoint is kept
        assert history[0]["val/acc"] == history[1]["val/acc"]
        best = [p.name for p in (run_dir / "checkpoints").glob("epoch*")]
        assert len(best) == 1 and best[0].startswith("epoch00-")
    resume = json.loads((run_dir / "failure.json").read_text())["resume"]
    record = run(overrides=shlex.split(resume)[2:])
    assert [r["epoch"] for r in record.history] == [0, 1, 2]
    assert last_epoch(run_dir) == 2  # a finished run's last.ckpt is its last epoch's


@pytest.mark.slow
def test_kill_9_after_an_epoch_that_did_not_improve_resumes_at_the_next_epoch(tmp_path):
    run_dir = tmp_path / "run"
    killed = cli(*STEADY, f"hydra.run.dir={run_dir}", KILL, "+callbacks.kill.step=7")
    assert killed.returncode == -9, killed.stderr
    assert last_epoch(run_dir) == 1
    resumed = cli(f"resume={run_dir}", KILL)
    assert resumed.returncode == 0, resumed.stderr
    record = RunRecord.read(run_dir / "metrics.json")
    assert [r["epoch"] for r in record.history] == [0, 1, 2] and record.best_epoch == 0
    assert Path(record.paths["checkpoint"]).name.startswith("epoch00-")
    assert last_epoch(run_dir) == 2


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> RunRecord:
    """The record every stopped and continued run of ``KILLED`` must end with."""
    return run_to_the_end(tmp_path_factory.mktemp("uninterrupted") / "run", *KILLED)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("hook", "signum", "epoch"),
    [
        pytest.param("on_train_batch_end", signal.SIGQUIT, 1, id="SIGQUIT mid-epoch"),
        pytest.param("on_train_batch_end", signal.SIGUSR1, 1, id="SIGUSR1 mid-epoch"),
        pytest.param("on_validation_batch_end", signal.SIGTERM, 1, id="SIGTERM in validation"),
        pytest.param("on_save_checkpoint", signal.SIGHUP, 1, id="SIGHUP in a checkpoint save"),
        pytest.param("on_test_batch_end", signal.SIGINT, None, id="SIGINT in the test"),
    ],
)
def test_a_signal_anywhere_exits_with_its_code_and_the_printed_command_ends_the_run(
    tmp_path, uninterrupted, hook, signum, epoch
):
    run_dir = tmp_path / "run"
    where = [f"+callbacks.stop.hook={hook}", f"+callbacks.stop.signum={int(signum)}"]
    where += [f"+callbacks.stop.epoch={epoch}"] if epoch is not None else []
    stopped = cli(*KILLED, f"hydra.run.dir={run_dir}", SIGNAL_IN, *where)
    assert stopped.returncode == 128 + signum, stopped.stderr
    assert "Traceback" not in stopped.stderr, stopped.stderr
    failure = json.loads((run_dir / "failure.json").read_text())
    assert (failure["status"], failure["error"]) == ("interrupted", f"interrupted by {signum.name}")
    assert no_temporaries(run_dir)
    resumed = cli(*printed_command(stopped.stderr))
    assert resumed.returncode == 0, resumed.stderr
    assert comparable(RunRecord.read(run_dir / "metrics.json")) == comparable(uninterrupted)


@pytest.mark.slow
def test_a_signal_before_the_run_claims_its_directory_exits_with_its_code_and_writes_nothing(
    tmp_path,
):
    run_dir = tmp_path / "run"
    hydra_stop = "+hydra.callbacks.stop._target_=tests.helpers.SignalOnJobStart"
    out = cli(*TINY, f"hydra.run.dir={run_dir}", hydra_stop)
    assert out.returncode == 128 + signal.SIGTERM, out.stderr
    assert "interrupted by SIGTERM before a run held its directory" in out.stderr
    assert "Traceback" not in out.stderr, out.stderr
    assert not list(run_dir.rglob("*"))  # at most the empty directory Hydra made


class SignallingFile:
    """A file whose first write sends this process SIGTERM, which arrives inside the write: in
    torch.save's C++ writer, as a signal during a long write of a real checkpoint does."""

    def __init__(self, file):
        self.file, self.sent = file, False

    def write(self, data) -> int:
        if not self.sent:
            self.sent = True
            os.kill(os.getpid(), signal.SIGTERM)
        return self.file.write(data)

    def flush(self) -> None:
        self.file.flush()


def test_a_signal_inside_torch_save_is_an_interruption_that_keeps_the_previous_checkpoint(
    tmp_path, monkeypatch
):
    io = AtomicCheckpointIO(tmp_path)
    last = tmp_path / "checkpoints" / "last.ckpt"
    io.save_checkpoint({"epoch": 0, "weights": torch.zeros(1000)}, last)
    write_with = convlab.checkpoint_io.write_with

    def signalling(root, relative, write) -> None:
        write_with(root, relative, lambda f: write(SignallingFile(f)))

    monkeypatch.setattr(convlab.checkpoint_io, "write_with", signalling)
    with pytest.raises(Interrupted) as stopped, interruptible():
        io.save_checkpoint({"epoch": 1, "weights": torch.ones(1000)}, last)
    assert stopped.value.signum == signal.SIGTERM
    assert torch.load(last, weights_only=True)["epoch"] == 0
    assert no_temporaries(tmp_path)


def test_a_full_disk_between_an_epochs_two_checkpoints_keeps_the_epoch_before(
    tmp_path, monkeypatch
):
    """Epoch 1 improves: its best checkpoint is written, then last.ckpt finds the disk full. The
    folder is left as epoch 0 left it (last.ckpt names epoch 0's best, which is kept)."""
    real_fsync, lasts = os.fsync, []

    def fsync_then_fill_the_disk(fd):
        if "/checkpoints/.last.ckpt." in os.readlink(f"/proc/self/fd/{fd}"):
            lasts.append(fd)
            if len(lasts) == 2:
                raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(convlab.checkpoint_io.os, "fsync", fsync_then_fill_the_disk)
    run_dir = tmp_path / "run"
    full = "could not write .*last.ckpt: No space left on device; free space and continue with"
    with pytest.raises(ConvlabError, match=full):
        run(overrides=[*KILLED, f"hydra.run.dir={run_dir}"])
    monkeypatch.undo()
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    state = next(v for k, v in ckpt["callbacks"].items() if k.startswith("ModelCheckpoint"))
    best = Path(state["best_model_path"])
    assert ckpt["epoch"] == 0 and best.name.startswith("epoch00-")
    assert {p.name for p in (run_dir / "checkpoints").iterdir()} == {best.name, "last.ckpt"}
    failure = json.loads((run_dir / "failure.json").read_text())
    record = run(overrides=shlex.split(failure["resume"])[2:])
    assert record.best_epoch == 1 and [r["epoch"] for r in record.history] == [0, 1]


def check_stopped_for_room(out, run_dir: Path, error: str, fix: str) -> None:
    """One line naming the file and the error, no traceback, epoch 0's last.ckpt whole, no
    temporary file, and failure.json (where it could be written) saying how to continue."""
    line = one_line_error(out)
    assert f"{error}; {fix} and continue with: python train.py resume=" in line, line
    assert last_epoch(run_dir) == 0
    assert no_temporaries(run_dir)
    if (run_dir / "failure.json").exists():
        failure = json.loads((run_dir / "failure.json").read_text())
        assert failure["status"] == "failed" and failure["resume"] in line
    else:
        assert f"could not write {run_dir / 'failure.json'}: {error}" in out.stderr


@pytest.fixture
def small_disk(tmp_path) -> Path:
    """A real 32 MiB file system (tmpfs) of its own."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(disk)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    yield disk
    subprocess.run(["umount", str(disk)], check=True)


@pytest.mark.slow
def test_a_real_full_disk_stops_the_run_in_one_line_and_it_continues_once_there_is_room(
    small_disk,
):
    # pictures too: TensorBoard's writer thread may be the first to find the disk full
    with_pictures = [o for o in KILLED if not o.startswith("callbacks.dashboards")]
    run_dir = small_disk / "run"
    out = cli(*with_pictures, f"hydra.run.dir={run_dir}", FILL_DISK, "+callbacks.fill.epoch=1")
    check_stopped_for_room(out, run_dir, "No space left on device", "free space")
    (small_disk / "filler").unlink()
    resumed = cli(*printed_command(out.stderr))
    assert resumed.returncode == 0, resumed.stderr
    assert [r["epoch"] for r in RunRecord.read(run_dir / "metrics.json").history] == [0, 1]


@pytest.mark.slow
def test_a_file_size_limit_stops_the_run_in_one_line_and_it_continues_without(killed_copy):
    """``ulimit -f`` below a checkpoint's size: its writes fail with EFBIG (SIGXFSZ ignored)."""
    limit = (killed_copy / "checkpoints" / "last.ckpt").stat().st_size // 2

    def limit_file_size():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    out = cli(f"resume={killed_copy}", KILL, preexec_fn=limit_file_size)
    check_stopped_for_room(out, killed_copy, "File too large", "allow larger files (ulimit -f)")
    resumed = cli(*printed_command(out.stderr))
    assert resumed.returncode == 0, resumed.stderr
    assert RunRecord.read(killed_copy / "metrics.json").epochs_run == 2


@pytest.mark.slow
@pytest.mark.parametrize(
    "launch",
    [
        ["torchrun", "--standalone", "--nproc_per_node=2"],
        # tests/fake_slurm/srun starts the tasks on this machine with srun's variables
        ["srun", "--nodes=1", "--ntasks-per-node=2", "python"],
    ],
    ids=["torchrun", "srun"],
)
def test_a_multi_process_launch_prints_its_launch_command_which_ends_the_run(tmp_path, launch):
    run_dir = tmp_path / "run"
    start = [*launch, "train.py"]
    overrides = [*KILLED, "trainer=ddp_cpu", f"hydra.run.dir={run_dir}", STOP]
    path = f"{ROOT / 'tests' / 'fake_slurm'}{os.pathsep}{os.environ['PATH']}"
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "PATH": path}
    options = dict(cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    # stopped in the second epoch, on every rank
    stopped = subprocess.run([*start, *overrides, "+callbacks.stop.step=4"], **options)
    assert stopped.returncode != 0 and last_epoch(run_dir) == 0, stopped.stderr[-3000:]
    line = next(line for line in stopped.stderr.splitlines() if "continue with: " in line)
    command = line.split("continue with: ", 1)[1]
    # every rank starts again: `python train.py resume=...` would start one, which is refused
    assert command.startswith(f"{shlex.join(start)} resume={run_dir} "), command
    assert json.loads((run_dir / "failure.json").read_text())["resume"] == command

    again = subprocess.run(shlex.split(command), **options)
    assert again.returncode == 0, again.stderr[-3000:]
    record = RunRecord.read(run_dir / "metrics.json")
    assert [row["epoch"] for row in record.history] == [0, 1]
    assert not (run_dir / "failure.json").exists()
