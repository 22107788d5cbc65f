"""MLflow and Weights & Biases next to TensorBoard: how their loggers are built from
``conf/logger/``, and how a run's pictures reach every logger that shows images.

The dashboards draw each picture once; :func:`picture_sinks` turns the run's loggers into
functions that each take ``(tag, image, step)``, one per logger kind, so a new kind is one small
function here and the drawing code never changes. Loggers without images (CSV) get none.
"""

import fcntl
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch.loggers import Logger, MLFlowLogger, TensorBoardLogger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import Tensor

# (tag, CHW image: uint8, or float in [0, 1]; the global step)
Sink = Callable[[str, Tensor, int], None]


def mlflow_logger(
    run_dir: str,
    tracking_uri: str,
    experiment_name: str,
    artifact_location: str | None = None,
    **kwargs,
) -> MLFlowLogger:
    """Lightning's MLFlowLogger, its run named after the run directory so the MLflow UI and
    ``outputs/runs/`` use the same names.

    A local SQLite store gets its folder created, and its artifacts (pictures, checkpoints with
    ``log_model``) beside the database in ``mlartifacts/``, where ``mlflow server`` keeps them
    too; left to MLflow, they would land in ``./mlruns`` of whatever directory the run started in.
    Any other store (a tracking server) picks its own artifact location.
    """
    if tracking_uri.startswith("sqlite:///"):
        database = Path(tracking_uri.removeprefix("sqlite:///"))
        if artifact_location is None:
            artifact_location = (database.parent / "mlartifacts").resolve().as_uri()
        if rank_zero_only.rank == 0:  # the only rank that logs
            _prepare_sqlite(database, tracking_uri, experiment_name, artifact_location)
    return MLFlowLogger(
        run_name=Path(run_dir).name,
        tracking_uri=tracking_uri,
        experiment_name=experiment_name,
        artifact_location=artifact_location,
        **kwargs,
    )


def _prepare_sqlite(database: Path, uri: str, experiment_name: str, artifacts: str) -> None:
    """Creates the database and the experiment one process at a time: the jobs of a parallel
    sweep starting together would otherwise all run MLflow's table migrations, or create the
    experiment, at once, and all but one fail."""
    from mlflow.tracking import MlflowClient

    database.parent.mkdir(parents=True, exist_ok=True)
    with open(database.with_name(database.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        client = MlflowClient(uri)
        if client.get_experiment_by_name(experiment_name) is None:
            client.create_experiment(experiment_name, artifact_location=artifacts)


def wandb_logger(run_dir: str, **kwargs) -> WandbLogger:
    """Lightning's WandbLogger, its run named after the run directory and kept in it
    (``<run dir>/wandb/``).

    A run still open in this process (an earlier ``convlab.train.run`` in a notebook or a test)
    is finished first: Lightning would otherwise log this run into that one.
    """
    import wandb

    if wandb.run is not None:
        wandb.finish()
    logger = WandbLogger(name=Path(run_dir).name, save_dir=run_dir, **kwargs)
    if logger._wandb_init.get("anonymous") is None:  # W&B warns in every run that it is unused
        logger._wandb_init.pop("anonymous", None)
    return logger


def finish(loggers: list[Logger]) -> None:
    """Closes the loggers that write after the run otherwise: W&B writes its run's last files
    when the process exits, after metrics.json marks the run directory finished."""
    for logger in loggers:
        if isinstance(logger, WandbLogger) and logger._experiment is not None:
            logger.experiment.finish()


def as_image(picture: Figure | Tensor) -> Tensor:
    """A picture as a CHW image: a figure rendered on Agg to uint8, exactly as TensorBoard's
    ``add_figure`` renders it, so every logger gets the same pixels from one drawing; a tensor
    (float in [0, 1]) as it is."""
    if isinstance(picture, Tensor):
        return picture
    canvas = FigureCanvasAgg(picture)
    canvas.draw()
    return torch.from_numpy(np.asarray(canvas.buffer_rgba())[..., :3].copy()).permute(2, 0, 1)


def _hwc_uint8(image: Tensor) -> np.ndarray:
    if image.dtype != torch.uint8:
        image = (image.clamp(0, 1) * 255).round().to(torch.uint8)
    return image.permute(1, 2, 0).cpu().numpy()


def tensorboard_sink(logger: TensorBoardLogger) -> Sink:
    """TensorBoard: the Images tab, one slider over the steps per tag."""
    return lambda tag, image, step: logger.experiment.add_image(tag, image, step)


def mlflow_sink(logger: MLFlowLogger) -> Sink:
    """MLflow: PNG artifacts ``dashboards/<tag>_step<step>.png`` of the run (``/`` in a tag makes
    folders, as in TensorBoard's tag groups)."""

    def log(tag: str, image: Tensor, step: int) -> None:
        artifact = f"dashboards/{tag}_step{step}.png"
        logger.experiment.log_image(logger.run_id, _hwc_uint8(image), artifact_file=artifact)

    return log


def wandb_sink(logger: WandbLogger) -> Sink:
    """W&B: a media panel per tag, stepped by ``trainer/global_step`` as the run's scalars are."""
    return lambda tag, image, step: logger.log_image(key=tag, images=[_hwc_uint8(image)], step=step)


SINKS: list[tuple[type[Logger], Callable[..., Sink]]] = [
    (TensorBoardLogger, tensorboard_sink),
    (MLFlowLogger, mlflow_sink),
    (WandbLogger, wandb_sink),
]


def picture_sinks(loggers: list[Logger]) -> list[Sink]:
    """One sink per logger that shows images, in the order the run's loggers are configured."""
    return [make(lg) for lg in loggers for kind, make in SINKS if isinstance(lg, kind)]
