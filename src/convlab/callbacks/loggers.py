"""MLflow and Weights & Biases next to TensorBoard: how their loggers are built from
``conf/logger/``, and how a run's pictures reach every logger that shows images.

The dashboards draw each picture once; :func:`picture_sinks` turns the run's loggers into
functions that each take ``(tag, image, step)``, one per logger kind, so a new kind is one small
function here and the drawing code never changes. Loggers without images (CSV) get none.

A run continued with ``resume=`` continues its logs too: the same MLflow and W&B runs (their ids
are recorded in the run directory), and TensorBoard's events and the CSV rows from the
checkpoint's step on (:func:`continue_logs`), so each step shows once.
"""

import csv
import fcntl
import io
import re
import shlex
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch.loggers import (
    CSVLogger,
    Logger,
    MLFlowLogger,
    TensorBoardLogger,
    WandbLogger,
)
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.utilities import rank_zero_only, rank_zero_warn
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import Tensor

from convlab import safe_files
from convlab.errors import ConvlabError

# (tag, CHW image: uint8, or float in [0, 1]; the global step)
Sink = Callable[[str, Tensor, int], None]
# files of the run directory naming the logger's run, so that resume= continues it
MLFLOW_RUN, WANDB_RUN = "mlflow_run_id", "wandb_run_id"
# MLflow's run ids, and the ones convlab gives W&B runs: nothing else is read from those files
RUN_ID = re.compile(r"[0-9a-f]{32}")


class TensorBoard(TensorBoardLogger):
    """Lightning's TensorBoard logger without the ``epoch`` scalar Lightning adds to every log
    call: in TensorBoard it sorted before the training and validation charts and became HPARAMS'
    first metric column (colouring its parallel coordinates); the step axis and metrics.json's
    history already say the epoch."""

    @rank_zero_only
    def log_metrics(self, metrics: dict, step: int | None = None) -> None:
        super().log_metrics({k: v for k, v in metrics.items() if k != "epoch"}, step)


def recorded_run_id(run_dir: Path, name: str) -> str | None:
    """The logger's run id that an earlier process of this run directory recorded, or None. A run
    directory is data: anything but a plain id there is refused."""
    path = Path(run_dir) / name
    try:
        with open(path, "rb") as f:
            text = f.read(64)  # an id and a newline; more is not convlab's
    except FileNotFoundError:
        return None
    except OSError as e:
        raise ConvlabError(f"{path} is unreadable ({e.strerror or e})") from None
    run_id = text.decode("ascii", "replace").strip()
    if not RUN_ID.fullmatch(run_id):
        raise ConvlabError(
            f"{path} does not hold a run id (32 hex digits), which convlab writes there; it was "
            "edited: remove it to log into a new run"
        )
    return run_id


def _record_run_id(run_dir: Path, name: str, run_id: str) -> None:
    safe_files.write_text(Path(run_dir), name, run_id + "\n")


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

    The MLflow run starts at once and its id goes into the run directory (``mlflow_run_id``), so
    ``resume=`` logs into the same run, which then ends FINISHED instead of staying RUNNING
    beside a second one. The store must be the same: ``resume=`` never takes a path from a run's
    record, so a tracking URI other than the default is given again.
    """
    if tracking_uri.startswith("sqlite:///"):
        database = Path(tracking_uri.removeprefix("sqlite:///"))
        if artifact_location is None:
            artifact_location = (database.parent / "mlartifacts").resolve().as_uri()
        if rank_zero_only.rank == 0:  # the only rank that logs
            _prepare_sqlite(database, tracking_uri, experiment_name, artifact_location)
    recorded = recorded_run_id(Path(run_dir), MLFLOW_RUN)
    logger = MLFlowLogger(
        run_name=Path(run_dir).name,
        tracking_uri=tracking_uri,
        experiment_name=experiment_name,
        artifact_location=artifact_location,
        run_id=recorded,
        **kwargs,
    )
    if rank_zero_only.rank == 0:
        _start_mlflow_run(logger, Path(run_dir), recorded, tracking_uri)
    return logger


def _start_mlflow_run(logger: MLFlowLogger, run_dir: Path, recorded: str | None, uri: str) -> None:
    """A new run is created and its id recorded; a recorded one, which the stopped process left
    RUNNING or FAILED, is RUNNING again until Lightning ends it."""
    from mlflow.exceptions import MlflowException

    if recorded is None:
        _record_run_id(run_dir, MLFLOW_RUN, logger.run_id)  # run_id creates the run
        return
    try:
        logger.experiment.update_run(recorded, status="RUNNING")
    except MlflowException as e:
        if e.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        raise ConvlabError(
            f"{run_dir / MLFLOW_RUN} names MLflow run {recorded}, which {uri} does not hold; give "
            "the tracking URI the run was logged to again: logger.mlflow.tracking_uri=<uri>"
        ) from None


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
    (``<run dir>/wandb/``), under an id recorded there (``wandb_run_id``): ``resume=`` continues
    that run (in a new ``offline-run-*`` folder of the same id, which ``wandb sync`` joins).

    The run starts at once, without W&B's links (``latest-run``, its debug logs): convlab refuses
    a run directory holding a link, so they would stop ``resume=``. A run still open in this
    process (an earlier ``convlab.train.run`` in a notebook or a test) is finished first:
    Lightning would otherwise log this run into that one.
    """
    import wandb

    if wandb.run is not None:
        wandb.finish()
    recorded = recorded_run_id(Path(run_dir), WANDB_RUN)
    run_id = recorded or uuid.uuid4().hex
    logger = WandbLogger(
        name=Path(run_dir).name,
        save_dir=run_dir,
        id=run_id,
        settings=wandb.Settings(symlink=False),
        **kwargs,
    )
    if logger._wandb_init.get("anonymous") is None:  # W&B warns in every run that it is unused
        logger._wandb_init.pop("anonymous", None)
    if rank_zero_only.rank == 0:
        if recorded is None:
            Path(run_dir).mkdir(parents=True, exist_ok=True)
            _record_run_id(Path(run_dir), WANDB_RUN, run_id)
        # wandb-core links its own log into the run's folder whatever the settings say
        core_log = Path(logger.experiment.settings.log_dir) / "debug-core.log"
        if core_log.is_symlink():
            core_log.unlink()
    return logger


@rank_zero_only
def continue_logs(loggers: list[Logger], step: int) -> None:
    """A resumed run's TensorBoard events and CSV rows go on from ``step``, the first step it
    logs, each step once: what the stopped process logged from that step on is dropped, since
    the resumed run logs it again. MLflow and W&B continue their recorded runs instead."""
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            _purge_tensorboard(logger, step)
        elif isinstance(logger, CSVLogger):
            _trim_csv(logger, step)


def _purge_tensorboard(logger: TensorBoardLogger, step: int) -> None:
    """A SessionLog START at ``step`` opens the resumed run's events, as SummaryWriter's
    ``purge_step`` does: TensorBoard then hides the earlier files' events from that step on. It
    is written twice: TensorBoard's Python loader (``--load_fast=false``) takes a run's first
    START for its beginning, never a restart. The dashboards' pictures of the validation before
    the checkpoint are at that very step (the global step, one past its scalars'), so they are
    written again after it."""
    from tensorboard.compat.proto.event_pb2 import Event, SessionLog

    pictures = _pictures_at(Path(logger.log_dir), step)
    start = Event(step=step, session_log=SessionLog(status=SessionLog.START))
    writer = logger.experiment._get_file_writer()
    for event in [start, start, *pictures]:
        writer.add_event(event)
    writer.flush()


def _pictures_at(log_dir: Path, step: int) -> list:
    """The image events at ``step`` that TensorBoard shows, reading the files in its order: those
    after the last START at or before that step."""
    from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
    from tensorboard.compat.proto.event_pb2 import Event, SessionLog

    pictures = []
    for path in sorted(log_dir.glob("*tfevents*")):
        for event in map(Event.FromString, RawEventFileLoader(str(path)).Load()):  # as written
            if event.session_log.status == SessionLog.START and event.step <= step:
                pictures.clear()
            elif event.step == step and any(v.HasField("image") for v in event.summary.value):
                pictures.append(event)
    return pictures


def _trim_csv(logger: CSVLogger, step: int) -> None:
    """Lightning's CSV writer deletes the metrics.csv it finds: the rows logged before ``step``
    are written back (never through a link), and the writer appends after them."""
    log_dir, name = Path(logger.log_dir), ExperimentWriter.NAME_METRICS_FILE
    header, rows = _csv_rows(log_dir / name)
    writer = logger.experiment  # here Lightning deletes the file
    if "step" not in header:
        return
    column = header.index("step")
    kept = [r for r in rows if len(r) == len(header) and _before(r[column], step)]
    text = io.StringIO()
    csv.writer(text).writerows([header, *kept])  # "\r\n", as Lightning's DictWriter ends rows
    safe_files.write_text(log_dir, name, text.getvalue())
    writer.metrics_keys = header  # the columns of the file it appends to


def _csv_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    """A CSV file's header and rows; none where it is missing, empty or unreadable (warned)."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            table = list(csv.reader(f))
    except FileNotFoundError:
        return [], []
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        rank_zero_warn(f"{path} is unreadable ({e}); the resumed run's CSV log starts afresh")
        return [], []
    return (table[0], table[1:]) if table else ([], [])


def _before(logged: str, step: int) -> bool:
    """Whether a row's step is before ``step``; a row without one was not Lightning's: dropped."""
    try:
        return int(logged) < step
    except ValueError:
        return False


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


def dashboard_commands(loggers: list[Logger], log_dir: Path) -> list[str]:
    """How to look at what each of the run's loggers wrote, one line each: a run logged only to
    MLflow must not end by pointing at TensorBoard."""
    commands = []
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            commands.append(f"tensorboard --logdir {shlex.quote(str(log_dir))}")
        elif isinstance(logger, MLFlowLogger):
            uri = shlex.quote(logger._tracking_uri)
            commands.append(f"mlflow ui --backend-store-uri {uri}  (the UI: pip install mlflow)")
        elif isinstance(logger, WandbLogger):
            runs = f"{shlex.quote(str(Path(logger.save_dir) / 'wandb'))}/offline-run-*"
            commands.append(f"wandb sync {runs}  (offline: uploads it)")
        elif isinstance(logger, CSVLogger):
            commands.append(f"{shlex.quote(str(Path(logger.log_dir) / 'metrics.csv'))}")
    return commands
