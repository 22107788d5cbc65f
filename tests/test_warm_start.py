"""init_from: a new run that starts from a checkpoint's weights, with its own optimizer, schedule
and length; the checkpoint is read as data and decides the network; a finished run trains longer
by the command its refusal prints."""

import json
import shlex
from pathlib import Path

import lightning as L
import pytest
import torch

from convlab.errors import ConvlabError
from convlab.record import RunRecord
from convlab.signals import Interrupted
from convlab.train import run
from tests.helpers import (
    KILLED,
    STOP,
    TINY,
    cli,
    one_line_error,
    printed_command,
    tree_state,
    unfinished_copy,
)

FIRST = "+callbacks.first._target_=tests.test_warm_start.FirstWeights"


class FirstWeights(L.Callback):
    """What the run holds as training starts: its weights, its loop's counters, its optimizer's
    state."""

    seen: dict = {}

    def on_train_start(self, trainer, pl_module) -> None:
        FirstWeights.seen = {
            "weights": {k: v.detach().clone() for k, v in pl_module.state_dict().items()},
            "step": trainer.global_step,
            "epoch": trainer.current_epoch,
            "optimizer_state": len(trainer.optimizers[0].state),
        }


def last_of(run_dir: Path) -> Path:
    return run_dir / "checkpoints" / "last.ckpt"


def test_a_warm_start_begins_with_the_checkpoints_weights_in_its_own_loop(finished, tmp_path):
    """The command line's default model is lenet_modern (ReLU, max-pooling); the checkpoint's
    sigmoid/avg LeNet is what trains, with another optimizer and length than its run's."""
    before, source = tree_state(finished), last_of(finished)
    record = run(
        overrides=[
            *TINY,
            f"init_from={source}",
            "optimizer=sgd",
            "trainer.max_epochs=2",
            FIRST,
            f"hydra.run.dir={tmp_path / 'warm'}",
        ]
    )
    saved = torch.load(source, weights_only=True)["state_dict"]
    first = FirstWeights.seen
    assert first["weights"].keys() == saved.keys()
    assert all(torch.equal(first["weights"][k], saved[k]) for k in saved)
    assert (first["step"], first["epoch"], first["optimizer_state"]) == (0, 0, 0)
    assert record.epochs_run == 2 and record.model["name"] == "lenet"
    written = RunRecord.read(tmp_path / "warm" / "metrics.json")
    expected = {"checkpoint": str(source.resolve()), "reinitialised": []}
    assert written.init_from == record.init_from == expected
    config = torch.load(last_of(tmp_path / "warm"), weights_only=True)["convlab"]["config"]
    assert (config["model"]["activation"], config["optimizer"]["_target_"]) == (
        "sigmoid",
        "torch.optim.SGD",
    )
    # a run from scratch writes no init_from, so records from before it read as they were
    assert "init_from" not in json.loads((finished / "metrics.json").read_text())
    assert RunRecord.read(finished / "metrics.json").init_from == {}
    assert tree_state(finished) == before  # the checkpoint's run is read, never written


@pytest.mark.parametrize(
    ("model", "head"),
    [
        ("lenet", ["net.net.11.weight", "net.net.11.bias"]),  # a linear layer
        ("nin", [f"net.net.7.{i}.{p}" for i in (0, 2, 4) for p in ("weight", "bias")]),  # convs
    ],
)
def test_a_new_number_of_classes_reinitialises_exactly_the_head(
    model, head, finished, tmp_path, capsys
):
    if model == "lenet":
        source = last_of(finished)
    else:  # NiN's last block, three convolutions with one channel per class, is its head
        source_dir = tmp_path / "nin"
        tiny_nin = ["model.channels=[8,8,8]", "data.resize=67", "trainer.limit_train_batches=1"]
        run(overrides=[*TINY, "model=nin", *tiny_nin, "test=false", f"hydra.run.dir={source_dir}"])
        source = last_of(source_dir)
    start = [*TINY, f"init_from={source}", "data.num_classes=5", f"hydra.run.dir={tmp_path / 'r'}"]
    with pytest.raises(ConvlabError, match=rf"{head[0]} is \(10, .*add init_from_strict=false"):
        run(overrides=start)
    assert not (tmp_path / "r").exists()

    record = run(overrides=[*start, "init_from_strict=false", FIRST])
    assert record.init_from["reinitialised"] == head
    assert f"re-initialised {len(head)} tensors" in capsys.readouterr().out
    saved = torch.load(source, weights_only=True)["state_dict"]
    weights = FirstWeights.seen["weights"]
    assert all(weights[k].shape[0] == 5 for k in head)  # one row or channel per new class
    assert all(torch.equal(weights[k], saved[k]) for k in saved.keys() - set(head))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["train=false", "ckpt_path={source}"],
            "init_from starts a new training run from a checkpoint's weights; to evaluate",
        ),
        (["model=nin"], "was trained as model=lenet, not model=nin; drop the model override"),
        (["model=lenet", "model.activation=relu"], r"model.activation \('relu' here, 'sigmoid'"),
    ],
    ids=["train=false", "another model", "another activation"],
)
def test_a_warm_start_is_refused_in_one_line_where_it_contradicts(
    overrides, message, finished, tmp_path
):
    source = last_of(finished)
    given = [o.format(source=source) for o in overrides]
    with pytest.raises(ConvlabError, match=message) as refused:
        run(overrides=[*TINY, f"init_from={source}", *given, f"hydra.run.dir={tmp_path / 'r'}"])
    assert "\n" not in str(refused.value)
    assert not (tmp_path / "r").exists()


def test_the_cli_refuses_a_missing_checkpoint_and_one_the_network_contradicts(finished, tmp_path):
    run_dir = tmp_path / "r"
    missing = cli(*TINY, f"init_from={tmp_path / 'none.ckpt'}", f"hydra.run.dir={run_dir}")
    assert one_line_error(missing).endswith("none.ckpt does not exist; check the path")
    pool = ["model=lenet", "model.pool=max", f"init_from={last_of(finished)}"]
    with pytest.raises(ConvlabError, match=r"model.pool \('max' here, 'avg' in the checkpoint\)"):
        run(overrides=[*TINY, *pool, f"hydra.run.dir={run_dir}"])
    assert not run_dir.exists()
    # a run's directory, or a file that is no checkpoint: each named for what it is
    with pytest.raises(ConvlabError, match="is a directory; give a checkpoint file in it"):
        run(overrides=[*TINY, f"init_from={finished}", f"hydra.run.dir={run_dir}"])
    text = tmp_path / "notes.txt"
    text.write_text("not a checkpoint")
    with pytest.raises(ConvlabError, match="notes.txt is not a PyTorch checkpoint"):
        run(overrides=[*TINY, f"init_from={text}", f"hydra.run.dir={run_dir}"])
    assert not run_dir.exists()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"_target_": "os.system"}, "names 'os.system', which no config in conf/model/"),
        ({"activation": "${oc.env:HOME}"}, "holds '\\${oc.env:HOME}', which OmegaConf would"),
    ],
    ids=["code", "a resolver"],
)
def test_init_from_checks_a_checkpoint_as_train_false_does(edit, message, finished, tmp_path):
    ckpt = torch.load(last_of(finished), weights_only=True)
    ckpt["convlab"]["config"]["model"].update(edit)
    edited = tmp_path / "edited.ckpt"
    torch.save(ckpt, edited)
    with pytest.raises(ConvlabError, match=message):
        run(overrides=[*TINY, f"init_from={edited}", f"hydra.run.dir={tmp_path / 'r'}"])


def test_resume_takes_no_other_start_than_the_runs_own(finished, tmp_path):
    stopped = unfinished_copy(finished, tmp_path / "stopped")
    before = tree_state(stopped)
    with pytest.raises(ConvlabError, match="did not start from init_from=.*drop resume="):
        run(overrides=[f"resume={stopped}", f"init_from={last_of(finished)}"])
    assert tree_state(stopped) == before


def test_a_stopped_warm_start_resumes_by_its_printed_command_as_if_never_stopped(
    finished, tmp_path
):
    start = [*KILLED, f"init_from={last_of(finished)}", "data.num_classes=5"]
    start.append("init_from_strict=false")
    whole = run(overrides=[*start, f"hydra.run.dir={tmp_path / 'whole'}"])
    stopped = tmp_path / "stopped"
    with pytest.raises(Interrupted):
        run(overrides=[*start, STOP, "+callbacks.stop.step=4", f"hydra.run.dir={stopped}"])
    command = json.loads((stopped / "failure.json").read_text())["resume"]
    assert "init_from=" in command  # a path: said again, never taken from the run's record
    resumed = run(overrides=shlex.split(command)[2:])
    assert (resumed.metrics, resumed.history) == (whole.metrics, whole.history)
    assert resumed.init_from == whole.init_from and len(whole.init_from["reinitialised"]) == 2


def test_the_printed_command_trains_a_finished_run_longer_in_a_new_directory(finished, tmp_path):
    before = tree_state(finished)
    with pytest.raises(ConvlabError, match="is finished and is never changed") as refused:
        run(overrides=[f"resume={finished}", "trainer.max_epochs=2"])
    longer = cli(*printed_command(str(refused.value), prefix="schedule): "), cwd=tmp_path)
    assert longer.returncode == 0, longer.stderr
    (run_dir,) = (tmp_path / "outputs" / "runs").iterdir()
    record = RunRecord.read(run_dir / "metrics.json")
    assert record.epochs_run == 2 and record.model["name"] == "lenet"
    assert record.init_from["checkpoint"] == str(last_of(finished).resolve())
    assert tree_state(finished) == before
