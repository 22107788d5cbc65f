"""MLflow and W&B beside TensorBoard: each alone and together, scalars and pictures, offline."""

import struct
import time
from pathlib import Path

import numpy as np
import pytest
from lightning.pytorch.loggers import CSVLogger
from matplotlib.figure import Figure
from mlflow.tracking import MlflowClient
from tensorboard.backend.event_processing.event_accumulator import (
    IMAGES,
    SCALARS,
    EventAccumulator,
)
from torch.utils.tensorboard._utils import figure_to_image

from convlab.callbacks.loggers import as_image, finish, picture_sinks, wandb_logger
from convlab.config import compose_run
from convlab.record import RunRecord
from convlab.train import run
from tests.helpers import TINY, cli, offline_loggers

# one epoch of 3 steps, the pictures after its validation and after testing, both at step 3
PICTURES = [o for o in TINY if not o.startswith("callbacks.dashboards")] + [
    "callbacks.dashboards.every_n_epochs=1",
    "callbacks.dashboards.num_images=4",
]
TAGS = {  # what every logger that shows images gets, per split (synthetic data: classes "2", "4")
    f"{split}/{tag}"
    for split in ("val", "test")
    for tag in (
        "1_predictions",
        "2_confusion_matrix",
        "3_filters/conv1",
        *(f"4_activations/conv{n}_relu/{c}" for n in (1, 2) for c in (0, 1)),
    )
}
PNG = b"\x89PNG"


def train(tmp_path: Path, logger: str) -> dict:
    """A tiny run with its MLflow database and artifacts under tmp_path, never in ./ (the run
    starts in an empty directory, checked afterwards)."""
    return run(
        overrides=[
            *PICTURES,
            f"logger={logger}",
            f"hydra.run.dir={tmp_path / 'run'}",
            f"paths.log_dir={tmp_path}",
        ]
    )


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Runs start in an empty directory, and W&B keeps its settings and cache in tmp_path and
    works offline: nothing leaves the machine and nothing asks for a login."""
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    offline_loggers(monkeypatch, tmp_path / "wandb_home")
    yield
    assert not any((tmp_path / "cwd").iterdir()), "a logger wrote into the working directory"


def mlflow_run(tmp_path: Path) -> tuple[MlflowClient, object]:
    """The one MLflow run of experiment "convlab" in the run's SQLite store."""
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("convlab")
    (found,) = client.search_runs([experiment.experiment_id])
    return client, found


def mlflow_pictures(client: MlflowClient, run_id: str) -> dict[str, Path]:
    """Tag -> the PNG artifact logged under it at step 3."""
    pictures, folders = {}, ["dashboards"]
    while folders:
        for entry in client.list_artifacts(run_id, folders.pop()):
            if entry.is_dir:
                folders.append(entry.path)
            else:
                tag, _, step = entry.path.removeprefix("dashboards/").rpartition("_step")
                assert step == "3.png", entry.path
                pictures[tag] = Path(client.download_artifacts(run_id, entry.path))
    return pictures


def test_mlflow_alone_keeps_the_metrics_and_pictures_in_its_sqlite_store(tmp_path):
    record = train(tmp_path, "mlflow")
    client, found = mlflow_run(tmp_path)
    assert found.info.run_name == "run"  # the run directory's name
    assert found.info.status == "FINISHED"
    metrics = found.data.metrics
    assert metrics["val/acc"] == pytest.approx(record.metrics["val/acc"])
    assert metrics["test/acc"] == pytest.approx(record.metrics["test/acc"])
    assert {"train/loss", "val/loss", "test/loss"} <= metrics.keys()
    assert len(client.get_metric_history(found.info.run_id, "val/acc")) == 1  # one epoch
    pictures = mlflow_pictures(client, found.info.run_id)
    assert pictures.keys() == TAGS
    assert all(p.read_bytes().startswith(PNG) for p in pictures.values())
    assert (tmp_path / "mlartifacts").is_dir()  # beside the database, not in ./mlruns
    assert not list((tmp_path / "run").glob("events.out.tfevents.*"))  # TensorBoard not chosen


def wandb_records(path: Path):
    """The records of W&B's offline run file: a 7-byte header, then LevelDB's log format (blocks
    of 32 KiB; each chunk a 7-byte header of checksum, length and type, a record whole or in
    first/middle/last pieces), each record one protobuf message."""
    from wandb.proto.wandb_internal_pb2 import Record

    data, block, position, pieces = path.read_bytes(), 32768, 7, b""
    assert data.startswith(b":W&B")
    while position + 7 <= len(data):
        if block - position % block < 7:  # a block's tail too short for a header is padding
            position += block - position % block
            continue
        _, length, kind = struct.unpack("<IHB", data[position : position + 7])
        if position + 7 + length > len(data):  # still being written
            return
        pieces += data[position + 7 : position + 7 + length]
        position += 7 + length
        if kind in (1, 4):  # full, last
            record = Record()
            record.ParseFromString(pieces)
            pieces = b""
            yield record


def test_wandb_alone_writes_an_offline_run_with_the_pictures_into_the_run_directory(tmp_path):
    import wandb

    record = train(tmp_path, "wandb")
    wandb.finish()
    (offline,) = (tmp_path / "run" / "wandb").glob("offline-run-*")
    (log,) = offline.glob("run-*.wandb")
    # W&B's own process writes the file: wait for the run's exit record (seconds at most)
    deadline = time.monotonic() + 60
    while not any(r.HasField("exit") for r in wandb_records(log)):
        assert time.monotonic() < deadline, f"{log} has no exit record"
        time.sleep(0.1)
    media = offline / "files" / "media" / "images"
    for tag in TAGS:
        (picture,) = media.glob(f"{tag}_*.png")  # W&B adds its own step and a hash
        assert picture.read_bytes().startswith(PNG)
    history: dict[str, list[str]] = {}
    for entry in wandb_records(log):
        if entry.HasField("run"):
            assert (entry.run.display_name, entry.run.project) == ("run", "convlab")
        for item in entry.history.item:
            history.setdefault(item.key or "/".join(item.nested_key), []).append(item.value_json)
    assert float(history["val/acc"][-1]) == pytest.approx(record.metrics["val/acc"])
    assert float(history["test/acc"][-1]) == pytest.approx(record.metrics["test/acc"])
    assert not list((tmp_path / "run").glob("events.out.tfevents.*"))


def test_each_wandb_run_gets_its_own_offline_run_and_is_closed_by_finish(tmp_path):
    """Runs in one process (a notebook, the tests): without finishing the open W&B run, Lightning
    would log the next run into it."""
    import wandb

    first = wandb_logger(run_dir=str(tmp_path / "first"), project="convlab", offline=True)
    first.log_metrics({"val/acc": 0.5}, step=0)
    second = wandb_logger(run_dir=str(tmp_path / "second"), project="convlab", offline=True)
    assert wandb.run is second.experiment is not first.experiment  # the first one was finished
    second.log_metrics({"val/acc": 0.6}, step=0)
    assert Path(second.experiment.dir).is_relative_to(tmp_path / "second")
    finish([second])
    assert wandb.run is None


def test_tensorboard_and_mlflow_together_both_get_the_scalars_and_the_same_pictures(tmp_path):
    record = train(tmp_path, "[tensorboard,mlflow]")
    scalars, images = {}, set()
    for events in (tmp_path / "run").glob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(events), size_guidance={IMAGES: 0, SCALARS: 0})
        accumulator.Reload()
        images |= set(accumulator.Tags()["images"])
        scalars |= {t: accumulator.Scalars(t)[-1].value for t in accumulator.Tags()["scalars"]}
    assert images == TAGS
    assert scalars["val/acc"] == pytest.approx(record.metrics["val/acc"])
    client, found = mlflow_run(tmp_path)
    assert found.data.metrics["val/acc"] == pytest.approx(record.metrics["val/acc"])
    assert mlflow_pictures(client, found.info.run_id).keys() == TAGS


def test_every_logger_is_selectable_alone_or_with_the_others():
    """Each option of the logger group is one top-level key, so Hydra's list syntax merges them."""
    both = compose_run(["logger=[tensorboard,csv,mlflow,wandb]"])
    assert list(both.logger) == ["tensorboard", "csv", "mlflow", "wandb"]
    assert list(compose_run(["logger=wandb"]).logger) == ["wandb"]
    assert compose_run(["logger=mlflow"]).logger.mlflow.tracking_uri.startswith("sqlite:///")


def test_figures_reach_every_logger_with_the_pixels_tensorboard_draws(tmp_path):
    def drawn() -> Figure:
        figure = Figure(figsize=(2, 1))
        figure.subplots().plot([0, 1], [1, 0])
        return figure

    assert np.array_equal(as_image(drawn()).numpy(), figure_to_image(drawn()))
    assert picture_sinks([CSVLogger(tmp_path)]) == []  # no images there: nothing is drawn


@pytest.mark.parametrize("off", ["~logger", "logger=[]"])
def test_a_run_without_any_logger_trains_and_keeps_its_record(tmp_path, off):
    """No logger: the learning-rate monitor, which Lightning refuses without one, is dropped, and
    the record and checkpoints are written as ever."""
    out = cli(*TINY, off, f"hydra.run.dir={tmp_path / 'run'}")
    assert out.returncode == 0, out.stderr
    assert not list((tmp_path / "run").glob("events.out.tfevents.*"))
    assert RunRecord.read(tmp_path / "run" / "metrics.json").status == "finished"
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()
    assert "tensorboard --logdir" not in out.stdout
