"""A run stopped and continued with ``resume=`` logs as an uninterrupted one: TensorBoard and the
CSV log show each step once, MLflow and W&B continue the same run; compare.py keeps a continued
job with its seeds."""

import csv
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from tensorboard.backend.event_processing import plugin_event_accumulator
from tensorboard.backend.event_processing.event_accumulator import (
    IMAGES,
    SCALARS,
    EventAccumulator,
)

from convlab.callbacks.loggers import MLFLOW_RUN, WANDB_RUN, mlflow_logger, recorded_run_id
from convlab.compare import compare, find_jobs, group_by_configuration
from convlab.errors import ConvlabError
from convlab.signals import Interrupted
from convlab.train import run
from tests.helpers import STOP, TINY, offline_loggers, write_job

# two epochs of 3 steps, every step logged (the learning rate), pictures after each validation;
# SIGTERM after step 4, in the second epoch: the checkpoint is epoch 0's, at global step 3
LOGGED = [o for o in TINY if not o.startswith("callbacks.dashboards")] + [
    "trainer.max_epochs=2",
    "trainer.log_every_n_steps=1",
    "callbacks.dashboards.every_n_epochs=1",
    "callbacks.dashboards.num_images=4",
]
STOPPED_AT = [STOP, "+callbacks.stop.step=4"]  # repeated on resume: it names code
CHECKPOINT_STEP = 3


def events(run_dir: Path) -> tuple[dict, dict]:
    """Tag -> [(step, value)] of the scalars, tag -> [step] of the pictures, as TensorBoard shows
    the run directory (its files in order, purges applied)."""
    accumulator = EventAccumulator(str(run_dir), size_guidance={SCALARS: 0, IMAGES: 0})
    accumulator.Reload()
    tags = accumulator.Tags()
    scalars = {t: [(e.step, e.value) for e in accumulator.Scalars(t)] for t in tags["scalars"]}
    return scalars, {t: [e.step for e in accumulator.Images(t)] for t in tags["images"]}


def python_loader_steps(run_dir: Path, tag: str) -> list[int]:
    """A tag's steps as TensorBoard's Python loader (``--load_fast=false``) shows them: it takes
    a run's first SessionLog START for its beginning, never a restart."""
    loader = plugin_event_accumulator
    accumulator = loader.EventAccumulator(str(run_dir), size_guidance={loader.TENSORS: 0})
    accumulator.Reload()
    return [e.step for e in accumulator.Tensors(tag)]


def csv_rows(run_dir: Path) -> list[dict]:
    with open(run_dir / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def offline_runs(run_dir: Path) -> list[str]:
    return sorted(p.name for p in (run_dir / "wandb").glob("offline-run-*"))


@contextmanager
def stopped_and_resumed(root: Path, config: list[str], logger: str) -> Iterator[Path]:
    """A run in this process stopped by SIGTERM, the block, then the run continued; the loggers
    offline, MLflow's store under ``root``, nothing written to the working directory."""
    # said again on resume: a path, and a list of loggers, are never taken from a run's record
    stopped, common = root / "stopped", [f"paths.log_dir={root}", f"logger={logger}"]
    (root / "cwd").mkdir()
    with pytest.MonkeyPatch.context() as monkeypatch:
        offline_loggers(monkeypatch, root / "wandb_home")
        monkeypatch.chdir(root / "cwd")
        with pytest.raises(Interrupted):
            run(overrides=[*config, *common, *STOPPED_AT, f"hydra.run.dir={stopped}"])
        yield stopped
        run(overrides=[f"resume={stopped}", *common, *STOPPED_AT])
    assert not any((root / "cwd").iterdir())


@pytest.fixture(scope="module")
def tensorboard_csv(tmp_path_factory) -> dict:
    """An uninterrupted run, and the same run stopped (what its logs held then) and continued."""
    root = tmp_path_factory.mktemp("tensorboard_csv")
    reference, logger = root / "reference", "logger=[tensorboard,csv]"
    run(overrides=[*LOGGED, logger, f"paths.log_dir={root}", f"hydra.run.dir={reference}"])
    with stopped_and_resumed(root, LOGGED, "[tensorboard,csv]") as stopped:
        left = {"scalars": events(stopped)[0], "csv": csv_rows(stopped)}
    return {"reference": reference, "resumed": stopped, "left": left}


@pytest.fixture(scope="module")
def mlflow_wandb(tmp_path_factory) -> dict:
    """A run stopped (its MLflow run and W&B offline runs then) and continued."""
    root = tmp_path_factory.mktemp("mlflow_wandb")
    store = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    with stopped_and_resumed(root, [*TINY, "trainer.max_epochs=2"], "[mlflow,wandb]") as stopped:
        left = {
            "mlflow": store.get_run(recorded_run_id(stopped, MLFLOW_RUN)),
            "wandb": offline_runs(stopped),
        }
    return {"resumed": stopped, "left": left, "store": store, "root": root}


def test_tensorboard_shows_each_step_once_as_an_uninterrupted_run_does(tensorboard_csv):
    left = tensorboard_csv["left"]["scalars"]
    assert max(step for step, _ in left["train/lr"]) >= CHECKPOINT_STEP  # logged past it
    scalars, pictures = events(tensorboard_csv["resumed"])
    reference_scalars, reference_pictures = events(tensorboard_csv["reference"])
    assert scalars.keys() == reference_scalars.keys()
    # each step as often as uninterrupted: once ("epoch", which Lightning logs with the training
    # and with the validation metrics, twice), with the same values
    for tag, points in scalars.items():
        assert points == pytest.approx(reference_scalars[tag]), tag
    every_step = list(range(6))  # two epochs of 3 steps
    assert [step for step, _ in scalars["train/lr"]] == every_step
    assert python_loader_steps(tensorboard_csv["resumed"], "train/lr") == every_step
    # the pictures of epoch 0's validation are at the checkpoint's own step: kept, and once
    assert pictures == reference_pictures
    assert pictures["val/1_predictions"] == [CHECKPOINT_STEP, 2 * CHECKPOINT_STEP]


def test_the_csv_log_keeps_every_epoch_once_as_an_uninterrupted_run_does(tensorboard_csv):
    left = tensorboard_csv["left"]["csv"]
    assert {r["step"] for r in left} >= {"2", "3"}  # epoch 0's rows, and one past the checkpoint
    rows = csv_rows(tensorboard_csv["resumed"])
    assert rows == csv_rows(tensorboard_csv["reference"])
    epochs = [(r["epoch"], r["step"]) for r in rows if r["val/acc"]]
    assert epochs == [("0", "2"), ("1", "5")]


def test_mlflow_continues_the_recorded_run_and_ends_it_finished(mlflow_wandb):
    stopped, store = mlflow_wandb["left"]["mlflow"], mlflow_wandb["store"]
    assert stopped.info.status != "FINISHED"
    (found,) = store.search_runs([store.get_experiment_by_name("convlab").experiment_id])
    assert found.info.run_id == stopped.info.run_id
    assert found.info.run_id == recorded_run_id(mlflow_wandb["resumed"], MLFLOW_RUN)
    assert found.info.status == "FINISHED"
    history = store.get_metric_history(found.info.run_id, "val/acc")
    assert sorted(m.step for m in history) == [2, 5]  # epoch 0 by the stopped process, 1 resumed


def test_wandb_continues_the_recorded_run_id_without_links_in_the_run_directory(mlflow_wandb):
    resumed = mlflow_wandb["resumed"]
    run_id = recorded_run_id(resumed, WANDB_RUN)
    (before,) = mlflow_wandb["left"]["wandb"]
    after = offline_runs(resumed)
    assert before in after and len(after) == 2
    assert all(name.endswith(f"-{run_id}") for name in after)  # one run once synced
    assert all((resumed / "wandb" / n / f"run-{run_id}.wandb").is_file() for n in after)
    assert not [p for p in resumed.rglob("*") if p.is_symlink()]  # resume= refuses any link


def test_a_recorded_mlflow_run_missing_from_the_store_asks_for_its_tracking_uri(
    mlflow_wandb, tmp_path
):
    """A tracking URI other than the default is never taken from the run's record."""
    (tmp_path / MLFLOW_RUN).write_text(uuid.uuid4().hex + "\n")
    uri = f"sqlite:///{mlflow_wandb['root'] / 'mlflow.db'}"  # the store of another run
    with pytest.raises(ConvlabError, match="logger.mlflow.tracking_uri=<uri>"):
        mlflow_logger(str(tmp_path), uri, experiment_name="convlab")


@pytest.mark.parametrize(
    "text",
    ["", "0" * 31, "../../" + "0" * 32, "G" * 32, "0" * 32 * 100],
    ids=["empty", "short", "a path", "not hex", "long"],
)
def test_a_recorded_run_id_is_a_plain_hex_id_or_refused(tmp_path, text):
    (tmp_path / MLFLOW_RUN).write_text(text)
    with pytest.raises(ConvlabError, match="does not hold a run id"):
        recorded_run_id(tmp_path, MLFLOW_RUN)


def test_a_resumed_job_stays_in_its_configuration(tmp_path):
    """A job continued with resume= records where it ran and how; only what changes the numbers
    makes a configuration."""
    recipe = ["model=lenet", "optimizer.lr=0.01"]
    write_job(tmp_path, "0_seed=0", [*recipe, "seed=0"], 0.80)
    write_job(tmp_path, "1_seed=1", [*recipe, "seed=1"], 0.90)
    continued = [
        *recipe,
        "seed=2",
        "threads=1",
        "trainer.enable_progress_bar=false",
        "logger=[tensorboard,csv]",
        "logger.mlflow.tracking_uri=sqlite:////elsewhere/mlflow.db",
        "paths.log_dir=/elsewhere",
        "~callbacks.dashboards",
        "hydra.mode=RUN",
        f"hydra.run.dir={tmp_path / '2_seed=2'}",
        f"resume={tmp_path / '2_seed=2'}",
    ]
    write_job(tmp_path, "2_seed=2", continued, 0.85)
    write_job(tmp_path, "3_lr", ["model=lenet", "optimizer.lr=0.1", "seed=0"], 0.5)
    jobs = find_jobs([tmp_path])
    configurations = group_by_configuration([j.record for j in jobs], [j.name for j in jobs])
    assert [c.jobs for c in configurations] == [["0_seed=0", "1_seed=1", "2_seed=2"], ["3_lr"]]
    assert configurations[0].overrides == tuple(recipe)
    assert "optimizer.lr=0.01 | 3 | **0.8500 ± 0.0500**" in compare(tmp_path)
