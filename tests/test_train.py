"""End-to-end runs through the Python API (the same composition as the CLI), on synthetic data."""

import contextlib
import json
import logging
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from convlab.config import instantiate
from convlab.errors import ConvlabError
from convlab.paths import CONF_DIR
from convlab.record import RunRecord
from convlab.registry import min_input_size
from convlab.train import run
from tests.helpers import (
    EXPERIMENTS,
    MODEL_CONFIGS,
    TINY,
    cli,
    lightning_log_at,
    needs_real_data,
    printed_command,
)


def tiny_run(run_dir: Path, *overrides: str) -> dict:
    return run(overrides=[*TINY, f"hydra.run.dir={run_dir}", *overrides])


@pytest.mark.parametrize("model", MODEL_CONFIGS)
def test_every_model_config_runs_at_its_own_input_size(model, run_dir):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        model_cfg = compose("train", [f"model={model}"]).model
        size = max(min_input_size(OmegaConf.to_container(model_cfg, resolve=True)), 28)
    record = tiny_run(
        run_dir,
        f"model={model}",
        f"data.resize={size}",
        "trainer.fast_dev_run=true",
        "data.batch_size=4",
        "data.eval_batch_size=4",
    )
    assert 0.0 <= record.metrics["test/acc"] <= 1.0 and record.model["params"] > 0


def test_run_writes_the_run_directory(run_dir):
    record = tiny_run(run_dir, "trainer.max_epochs=2")
    saved = RunRecord.read(run_dir / "metrics.json")
    assert saved == record  # the file holds exactly what run() returned
    assert {"val/acc", "val/loss", "test/acc", "test/loss"} <= set(saved.metrics)
    assert [r["epoch"] for r in saved.history] == [0, 1] and saved.epochs_run == 2
    assert saved.tested == "best-val checkpoint"
    assert saved.model == {"name": "lenet_modern", "class": "LeNet", "params": 61706}
    assert "trainer.max_epochs=2" in saved.overrides
    assert set(saved.timing) == {"fit_s", "wall_s"} and "git_commit" in saved.environment
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert Path(saved.paths["checkpoint"]).is_file()
    assert (run_dir / ".hydra" / "config.yaml").is_file()
    assert list(run_dir.glob("events.out.tfevents.*"))


def test_checkpoints_hold_plain_containers_and_rebuild_preprocessing(run_dir):
    tiny_run(run_dir, "data.resize=32")
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["convlab"]["model_name"] == "lenet_modern"
    assert ckpt["convlab"]["preprocess"]["size"] == [32, 32]
    assert ckpt["convlab"]["config"]["data"]["resize"] == 32


def test_two_runs_with_the_same_seed_give_identical_metrics(tmp_path):
    a = tiny_run(tmp_path / "a", "trainer.max_epochs=2", "augment=erase")
    b = tiny_run(tmp_path / "b", "trainer.max_epochs=2", "augment=erase")
    assert a.metrics == b.metrics and a.history == b.history


def test_evaluate_a_checkpoint(tmp_path):
    trained = tiny_run(tmp_path / "a")
    evaluated = tiny_run(tmp_path / "b", "train=false", f"ckpt_path={trained.paths['checkpoint']}")
    assert evaluated.metrics["test/acc"] == trained.metrics["test/acc"]
    assert evaluated.tested == "the given checkpoint"


def test_evaluating_with_another_models_config_says_which_model(tmp_path):
    trained = tiny_run(tmp_path / "a")
    with pytest.raises(ConvlabError, match="model=lenet_modern"):
        tiny_run(
            tmp_path / "b",
            "train=false",
            f"ckpt_path={trained.paths['checkpoint']}",
            "model=small_cnn",
        )


def test_a_pickled_payload_is_refused_and_never_runs(tmp_path):
    class Payload:
        def __reduce__(self):
            return (Path.touch, (tmp_path / "pwned",))

    bad = tmp_path / "bad.ckpt"
    torch.save({"state_dict": {}, "x": Payload()}, bad)
    with pytest.raises(ConvlabError, match="refusing to load"):
        tiny_run(tmp_path / "b", "train=false", f"ckpt_path={bad}")
    assert not (tmp_path / "pwned").exists()


def test_hparams_tab_gets_config_and_final_metrics(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

    record = tiny_run(run_dir)
    tags, hparams, logged = set(), {}, None
    for events in run_dir.glob("events.out.tfevents.*"):
        acc = EventAccumulator(str(events))
        acc.Reload()
        tags |= set(acc.Tags()["scalars"])
        if "test/acc" in acc.Tags()["scalars"]:
            logged = acc.Scalars("test/acc")[-1].value
        with contextlib.suppress(KeyError):  # only the file written at the end holds HPARAMS
            hparams |= acc.PluginTagToContent("hparams")
    info = HParamsPluginData.FromString(hparams["_hparams_/session_start_info"])
    columns = set(info.session_start_info.hparams)
    assert {"data", "model", "optimizer.lr"} <= columns
    assert not any("callbacks" in c for c in columns)
    assert info.session_start_info.hparams["data"].string_value == "synthetic"
    assert {"val/acc", "train/loss", "train/acc", "test/acc", "val/best_acc"} <= tags
    assert "epoch" not in tags  # Lightning's own: it sorted first and became a metric column
    assert logged == pytest.approx(record.metrics["test/acc"])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.batch_size=0", "data.batch_size=0 is invalid: expected a positive integer"),
        ("data.batch_size=abc", "data.batch_size=abc is invalid"),
        ("optimizer.lr=-0.1", "optimizer.lr=-0.1 is invalid: expected a positive finite number"),
        ("data.resize=0", "data.resize=0 is invalid"),
        ("data.resize=8", "data.resize=8 is too small for model LeNet: it needs at least 12x12"),
        ("trainer.max_epochs=0", "trainer.max_epochs=0 is invalid"),
        ("threads=-1", "threads=-1 is invalid"),
        ("model.activation=swish", "model.activation=swish is unknown; choose one of sigmoid"),
        ("model.pool=median", "model.pool=median is unknown"),
        ("trainer.limit_val_batches=-1", "trainer.limit_val_batches=-1 is invalid"),
        ("trainer.limit_test_batches=0", "trainer.limit_test_batches=0 is invalid"),
        ("ckpt_path=some.ckpt", "ckpt_path is the checkpoint to evaluate with train=false"),
        ("model.lr=0.1", "did you mean optimizer.lr=0.1"),  # from Python as on the command line
    ],
)
def test_nonsense_values_fail_before_training(run_dir, override, message):
    with pytest.raises(ConvlabError, match=message):
        tiny_run(run_dir, override)
    assert not (run_dir / "checkpoints").exists()


def test_divergence_stops_with_a_clear_error_and_keeps_the_last_good_checkpoint(run_dir):
    with pytest.raises(ConvlabError, match="training diverged.*lower optimizer.lr"):
        tiny_run(run_dir, "optimizer.lr=1e6", "scheduler=none", "trainer.max_epochs=3")
    for ckpt in (run_dir / "checkpoints").glob("*.ckpt"):
        state = torch.load(ckpt, weights_only=True)["state_dict"]
        assert all(torch.isfinite(v).all() for v in state.values())


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_config_runs(experiment, run_dir):
    record = tiny_run(
        run_dir,
        f"experiment={experiment}",
        "data=synthetic",
        "trainer.fast_dev_run=true",
        "data.batch_size=4",
        "data.eval_batch_size=4",
    )
    assert 0.0 <= record.metrics["test/acc"] <= 1.0


@needs_real_data
def test_short_training_on_the_real_fashion_mnist(run_dir):
    record = run(
        overrides=[
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=150",
            "trainer.enable_progress_bar=false",
            "callbacks.dashboards=null",
            f"hydra.run.dir={run_dir}",
        ]
    )
    assert record.metrics["test/acc"] > 0.75  # chance is 0.10


def test_a_checkpoint_alone_classifies_raw_images(run_dir):
    from convlab.data.datamodule import SyntheticDataModule
    from convlab.inference import load_classifier

    record = tiny_run(run_dir, "data.resize=40", "trainer.max_epochs=2")
    model = load_classifier(record.paths["checkpoint"])
    dm = SyntheticDataModule(val_size=200)
    dm.setup()
    images, labels = dm.splits["test"]  # raw (N, 28, 28) uint8: the checkpoint resizes to 40
    predicted = model.predict(images)
    accuracy = sum(p == str(int(y)) for p, y in zip(predicted, labels, strict=True)) / len(labels)
    assert images.dtype == torch.uint8 and len(predicted) == len(labels)
    assert accuracy == pytest.approx(record.metrics["test/acc"], abs=1e-6)


def test_a_schedule_too_short_for_its_phases_says_so(run_dir):
    with pytest.raises(ConvlabError, match="steps the scheduler 4 times, too few.*scheduler=none"):
        tiny_run(run_dir, "trainer.limit_train_batches=4")


@pytest.mark.parametrize(
    ("augment", "override"),
    [("flip_translate", "data.augment.translate=-2"), ("erase", "data.augment.erase_p=1.5")],
)
def test_nonsense_augmentation_fails_before_training(run_dir, augment, override):
    with pytest.raises(ConvlabError, match=f"{override} is invalid"):
        tiny_run(run_dir, f"augment={augment}", override)


def test_an_endless_run_cannot_size_its_schedule(run_dir):
    with pytest.raises(ConvlabError, match=r"length \(total_steps\) from the run.*scheduler=none"):
        tiny_run(run_dir, "trainer.max_epochs=-1")


def test_epochs_without_validation_are_skipped_when_choosing_the_best(run_dir):
    record = tiny_run(run_dir, "trainer.max_epochs=2", "trainer.check_val_every_n_epoch=2")
    assert ["val/acc" in r for r in record.history] == [False, True]
    assert record.best_epoch == 1 and record.metrics["val/acc"] == record.history[1]["val/acc"]


def test_validation_switched_off_tests_the_final_weights(run_dir):
    record = tiny_run(run_dir, "trainer.limit_val_batches=0", "trainer.max_epochs=2")
    assert record.validation is False and record.tested == "final weights (validation off)"
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["last.ckpt"]
    with pytest.raises(ConvlabError, match="limit_val_batches=0 turns validation off"):
        tiny_run(run_dir.parent / "b", "trainer.limit_val_batches=0", "callbacks=early_stopping")


def test_a_crash_leaves_a_failure_record_and_the_resume_command(run_dir):
    crash = "+callbacks.crash._target_=tests.helpers.CrashAt"
    with pytest.raises(RuntimeError, match="simulated"):
        tiny_run(run_dir, "trainer.max_epochs=2", crash, "+callbacks.crash.epoch=1")
    failure = json.loads((run_dir / "failure.json").read_text())
    assert failure["status"] == "failed"
    assert failure["error"] == "RuntimeError: CUDA out of memory (simulated)"
    assert failure["resume"] == f"python train.py resume={run_dir} {crash}"  # it names code
    assert not (run_dir / "metrics.json").exists()
    # before the first checkpoint too: the run starts over in its directory
    early = run_dir.parent / "early"
    with pytest.raises(RuntimeError, match="simulated"):
        tiny_run(early, crash, "+callbacks.crash.epoch=0")
    for stopped in (run_dir, early):  # each printed command, pasted, ends its run
        command = json.loads((stopped / "failure.json").read_text())["resume"]
        out = cli(*printed_command(command, prefix=""))
        assert out.returncode == 0, out.stderr
        assert (stopped / "metrics.json").is_file() and not (stopped / "failure.json").exists()


def test_without_a_validation_split_the_final_weights_are_tested(run_dir):
    """data.val_size=0, as the book's recipes train: no checkpoint is selected on any split."""
    record = tiny_run(run_dir, "data.val_size=0", "trainer.max_epochs=2")
    assert record.validation is False and record.tested == "final weights (no validation split)"
    assert record.best_epoch is None and not any(k.startswith("val/") for k in record.metrics)
    assert "test/acc" in record.metrics and record.epochs_run == 2
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["last.ckpt"]
    with pytest.raises(ConvlabError, match="early_stopping watches val/acc"):
        tiny_run(run_dir.parent / "b", "data.val_size=0", "callbacks=early_stopping")


@needs_real_data
@pytest.mark.parametrize("experiment", [e for e in EXPERIMENTS if e.endswith("_book")])
def test_the_books_recipes_train_on_all_60000_images(experiment):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", [f"experiment={experiment}"])
    datamodule = instantiate(cfg.data)
    datamodule.setup()
    assert len(datamodule.splits["train"][1]) == 60_000 and len(datamodule.splits["val"][1]) == 0


def test_the_model_summary_shows_each_layers_shapes(run_dir):
    from lightning.pytorch.utilities.model_summary import ModelSummary

    from convlab.config import compose_run
    from convlab.train import build

    cfg = compose_run([*TINY, "data.resize=32", f"hydra.run.dir={run_dir}"])
    _, classifier = build(cfg)
    summary = ModelSummary(classifier, max_depth=3)
    sizes = dict(zip(summary.layer_names, summary.in_sizes, strict=True))
    assert sizes["net.net.0"] == [2, 1, 32, 32]  # stored 28x28 bytes, resized by Preprocess
    # Lightning's logger does not propagate to the root, where pytest listens
    logged, handler = [], logging.Handler()
    handler.emit = logged.append
    with lightning_log_at(logging.INFO) as lightning_log:
        lightning_log.addHandler(handler)
        try:
            tiny_run(run_dir, "trainer.enable_model_summary=true")  # the callback logs the table
        finally:
            lightning_log.removeHandler(handler)
    table = "\n".join(r.getMessage() for r in logged)
    assert "In sizes" in table and "net.net.0" in table and "[2, 1, 28, 28]" in table


def test_an_install_without_the_configs_says_to_use_a_clone(tmp_path, monkeypatch):
    import convlab.paths
    from convlab.config import compose_run

    monkeypatch.setattr(
        convlab.paths, "CONF_DIR", tmp_path / "conf"
    )  # as `pip install .` leaves it
    with pytest.raises(ConvlabError, match="convlab runs from a clone of its repository"):
        compose_run(["model=lenet"])
