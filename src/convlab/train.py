"""run(cfg): the one place that wires data, model, classifier and trainer together."""

import errno
import os
import shlex
import time
from pathlib import Path
from typing import NamedTuple

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.fabric.plugins.environments import SLURMEnvironment
from lightning.pytorch.callbacks import (
    LearningRateMonitor,
    ModelCheckpoint,
    ModelSummary,
    ProgressBar,
)
from lightning.pytorch.loggers import MLFlowLogger, TensorBoardLogger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf, open_dict
from torch.utils.tensorboard.summary import hparams as hparams_summaries

from convlab.callbacks.book_figure import BookFigure
from convlab.callbacks.history import History
from convlab.callbacks.log_interval import AtLeastOncePerEpoch
from convlab.callbacks.loggers import continue_logs, dashboard_commands, finish
from convlab.callbacks.pruning import Pruned
from convlab.callbacks.reseed import ReseedEachEpoch
from convlab.checkpoint_io import AtomicCheckpointIO, read_meta
from convlab.classifier import Classifier
from convlab.config import compose_run, instantiate, model_choice
from convlab.errors import ConvlabError
from convlab.evaluation import evaluation_config
from convlab.hparams import hyperparameters
from convlab.inference import build_from_meta, check_fits, load_weights
from convlab.paths import REPO_DIR
from convlab.provenance import PATCH, Source, source_state
from convlab.record import RunRecord, environment
from convlab.registry import allowed, constructor_args, model_classes
from convlab.restored_state import checked_restore
from convlab.resume import (
    check_resume_matches,
    needs_repeating,
    refuse_evaluation_on_resume,
    refuse_partial_checkpoints,
)
from convlab.rundir import (
    METRICS,
    RunDir,
    claimed_by_this_local_job,
    holds_run,
    is_finished,
    paste_override,
    resume_command,
)
from convlab.runlog import run_log, say
from convlab.safe_files import no_room
from convlab.signals import Interrupted, interruptible
from convlab.sweep import log_scaled_keys, swept_keys
from convlab.trial_rerun import continued_trial, copy_checkpoints
from convlab.validate import validate
from convlab.warm_start import WarmStart
from convlab.write_paths import check_written_paths


def build(cfg: DictConfig, net=None, preprocess=None) -> tuple[L.LightningDataModule, Classifier]:
    """The DataModule and the Classifier around the configured network (or the given one, rebuilt
    from a checkpoint by the safe path)."""
    datamodule = instantiate(cfg.data)
    net = net if net is not None else instantiate(constructor_args(cfg.model))
    classifier = Classifier(
        net,
        preprocess if preprocess is not None else datamodule.preprocess,
        num_classes=cfg.data.num_classes,
        optimizer=instantiate(cfg.optimizer),
        scheduler=instantiate(cfg.scheduler) if cfg.get("scheduler") else None,
        scheduler_step=(
            OmegaConf.to_container(cfg.scheduler_step, resolve=True)
            if cfg.get("scheduler")
            else None
        ),
        label_smoothing=cfg.module.label_smoothing,
        channels_last=cfg.module.channels_last,
        checkpoint_meta={
            "config": OmegaConf.to_container(cfg, resolve=True),
            "model_name": model_choice(),
            "class_names": datamodule.class_names,
        },
    )
    # one batch of stored images: Lightning's model summary then shows each layer's in/out shapes
    classifier.example_input_array = torch.zeros(2, *datamodule.stored_shape, dtype=torch.uint8)
    if cfg.module.compile:
        classifier.net.compile()  # in place: checkpoints keep the uncompiled parameter names
    return datamodule, classifier


def _instantiate_all(group: DictConfig | None) -> list:
    """Callbacks and loggers are dicts of configs, so one can be dropped with `callbacks.x=null`."""
    return [instantiate(c) for c in (group or {}).values() if c is not None]


def _without_validation(cfg: DictConfig) -> None:
    """No validation split (``data.val_size=0``: the book's recipes train on all 60,000 images) or
    validation switched off (``trainer.limit_val_batches=0``: ``debug=overfit``): nothing to
    select a checkpoint by, stop early on or step a scheduler on; the test then evaluates the
    final weights."""
    if not cfg.data.get("val_size", 1):
        why, fix = "data.val_size=0 leaves no validation split", "set data.val_size=5000"
    elif cfg.trainer.get("limit_val_batches") == 0:
        why, fix = "trainer.limit_val_batches=0 turns validation off", "drop that override"
    else:
        return
    if OmegaConf.select(cfg, "callbacks.early_stopping"):
        raise ConvlabError(
            f"callbacks.early_stopping watches val/acc, and {why}; drop callbacks=early_stopping "
            f"or {fix}"
        )
    monitor = OmegaConf.select(cfg, "scheduler_step.monitor")
    if cfg.get("scheduler") and monitor and monitor.startswith("val/"):
        raise ConvlabError(
            f"scheduler_step.monitor={monitor} is measured by validation, and {why}; set "
            f"scheduler_step.monitor=train/loss or {fix}"
        )
    if HydraConfig.initialized() and HydraConfig.get().sweeper.get("n_trials") is not None:
        raise ConvlabError(
            f"a hyperparameter search ranks its trials by val/acc (never the test set), and {why}; "
            f"{fix}"
        )
    with open_dict(cfg):
        cfg.trainer.limit_val_batches = 0
        if checkpoint := OmegaConf.select(cfg, "callbacks.model_checkpoint"):
            checkpoint.monitor, checkpoint.save_top_k = None, 0  # last.ckpt only
            checkpoint.filename = "epoch{epoch:02d}"


def _trainer(cfg: DictConfig, run_dir: RunDir, last: Path | None) -> L.Trainer:
    _without_validation(cfg)
    callbacks = _instantiate_all(cfg.get("callbacks"))
    for callback in callbacks:
        if isinstance(callback, BookFigure):  # into the claimed run directory, and nowhere else
            callback.out_dir = run_dir.path
    # Lightning refuses a bar or a summary callback that its own switch turns off
    if not cfg.trainer.get("enable_progress_bar", True):
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    if not cfg.trainer.get("enable_model_summary", True):
        callbacks = [c for c in callbacks if not isinstance(c, ModelSummary)]
    loggers = _instantiate_all(cfg.get("logger"))
    if not loggers:  # `~logger`: the learning-rate chart has nowhere to go; Lightning refuses it
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    if run_dir.resuming:  # the stopped process's logs go on, each step once
        continue_logs(loggers, _first_step(last))
    trainer = instantiate(
        cfg.trainer,
        callbacks=[*callbacks, History(), ReseedEachEpoch(cfg.seed), AtLeastOncePerEpoch()],
        logger=loggers,
        plugins=[AtomicCheckpointIO(run_dir.path, _patience(cfg)), *_cluster(run_dir)],
    )
    if cfg.trainer.get("limit_val_batches") == 0:  # overfit_batches would set it to its own count
        trainer.limit_val_batches = 0
    return trainer


def _first_step(last: Path | None) -> int:
    """The first step a resumed run logs: its checkpoint's global step (Lightning logs steps
    from 0), or 0 where it starts over. Memory-mapped: the weights stay on disk."""
    if last is None:
        return 0
    return torch.load(last, map_location="cpu", weights_only=True, mmap=True)["global_step"]


def _patience(cfg: DictConfig) -> int | None:
    return OmegaConf.select(cfg, "callbacks.early_stopping.patience")


def _cluster(run_dir: RunDir) -> list:
    """On SLURM, Lightning's requeue off: its SIGUSR1 handler would save ``hpc_ckpt_*.ckpt``
    beside the run and a requeued job would load one silently; convlab resumes from last.ckpt."""
    return [SLURMEnvironment(auto_requeue=False)] if SLURMEnvironment.detect() else []


def _multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def _overrides() -> list[str]:
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def _sweep_dir() -> Path | None:
    return Path(HydraConfig.get().sweep.dir) if _multirun() else None


def run(cfg: DictConfig | None = None, overrides: list[str] | tuple[str, ...] = ()) -> RunRecord:
    """Train, test and record one run; returns what it writes to metrics.json.

    From Python: ``run(overrides=["model=lenet", "trainer.max_epochs=2"])`` composes the config
    exactly as ``python train.py model=lenet trainer.max_epochs=2`` does.
    """
    cfg = cfg if cfg is not None else compose_run(overrides)
    refuse_evaluation_on_resume(cfg)
    output = Path(cfg.paths.output_dir).resolve()
    if cfg.resume and Path(cfg.resume).resolve() == output.parent and is_finished(output):
        return _kept(output)  # a continued sweep's finished job
    rerun = continued_trial(cfg, output)  # a search's rerun of an interrupted trial: its dir
    run_dir = RunDir(
        output,
        resuming=bool(cfg.resume) or _requeued(output) or rerun is not None,
        sweep_dir=_sweep_dir(),
        claim_timeout=cfg.claim_timeout,
        repeat=needs_repeating(_overrides()),
    )
    check_written_paths(cfg, run_dir.path, run_dir.sweep_dir)
    run_dir.claim()
    try:
        with interruptible():  # from the claim on, a stop signal leaves failure.json
            run_dir.write_hydra_dir(
                cfg, HydraConfig.get() if HydraConfig.initialized() else None, _overrides()
            )
            if rerun is not None and run_dir.fresh:
                copy_checkpoints(rerun, run_dir.path)
            record = _run(cfg, run_dir)
            run_dir.clear_failure()
        return record
    except Interrupted as e:  # resumable: from its last.ckpt, or from the start where none is
        e.run_dir, e.repeat = run_dir.path, run_dir.repeat
        e.in_sweep = _multirun()
        run_dir.record_failure("interrupted", str(e), _overrides(), resumable=True)
        raise
    except Exception as e:  # a user's mistake (ConvlabError), or a crash: out of memory, a bug
        if full := no_room(e):
            raise _no_room(full, run_dir) from None
        mistake = isinstance(e, ConvlabError)  # the same command would fail the same way
        if mistake and run_dir.resuming and not (run_dir.training or run_dir.fresh):
            raise  # a refused resume leaves the run's record as it was
        if _multirun() or not run_dir.remove_if_empty_run():
            error = str(e) if mistake else f"{type(e).__name__}: {e}"
            run_dir.record_failure("failed", error, _overrides(), resumable=not mistake)
        raise
    finally:
        run_dir.release()


def _no_room(full: OSError, run_dir: RunDir) -> ConvlabError:
    """A write that found no room (a full disk or quota, a file-size limit), wherever convlab or
    Lightning wrote, as one line naming the file: once there is room, the run continues from its
    last complete checkpoint (an epoch's checkpoints are written as one)."""
    error = f"could not write {full.filename or f'into {run_dir.path}'}: {full.strerror}"
    fix = "allow larger files (ulimit -f)" if full.errno == errno.EFBIG else "free space"
    if not _multirun() and run_dir.remove_if_empty_run():
        return ConvlabError(f"{error}; {fix} and run the command again")
    run_dir.record_failure("failed", error, _overrides(), resumable=True)
    return ConvlabError(
        f"{error}; {fix} and continue with: {resume_command(run_dir.path, run_dir.repeat)}"
    )


def _requeued(output: Path) -> bool:
    """A cluster job started again in its own directory (SLURM's requeue, which submitit's
    launcher asks for at its time limit; submitit's local executor's): it continues the run it
    stopped, as resume= would."""
    restarts = os.environ.get("SLURM_RESTART_COUNT", "0").strip()
    again = (restarts.isdigit() and int(restarts) > 0) or claimed_by_this_local_job(output)
    return again and holds_run(output) and not is_finished(output)


def _kept(job_dir: Path) -> RunRecord:
    """A finished job of the sweep being continued: its record as it is, after checking that it
    is this job's (the same overrides but ``resume``); nothing is written."""
    record = RunRecord.read(job_dir / METRICS)
    if _identity(record.overrides) != _identity(_overrides()):
        raise ConvlabError(
            f"{job_dir} holds a finished run of other overrides than this job's; it is never "
            "changed: continue the sweep in a copy without it"
        )
    print(f"kept: {job_dir} (finished)")
    return record


def _identity(overrides: list[str]) -> list[str]:
    return [o for o in overrides if not o.lstrip("+~").startswith(("resume=", "hydra."))]


class Tested(NamedTuple):
    """The weights the test evaluates, and how the record names them."""

    checkpoint: str | None  # a file, or None: the weights in memory
    what: str  # in words, for metrics.json and the run's last lines
    pruned: Pruned | None = None  # a search stopped the run: nothing is tested


def _run(cfg: DictConfig, run_dir: RunDir) -> RunRecord:
    """The run's stages, top to bottom."""
    source = source_state(REPO_DIR)  # the code as it is when the run starts
    start = WarmStart(cfg, _overrides()) if cfg.get("init_from") else None  # its network: cfg's
    validate(cfg)
    last = _check_resume(cfg, run_dir) if run_dir.resuming else None  # None: it starts over
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    L.seed_everything(cfg.seed, verbose=False)
    datamodule, classifier = _build_run(cfg, start, resumed=last is not None)
    if run_dir.owner:  # the data, before a logger writes: a missing or bad dataset leaves nothing
        datamodule.prepare_data()  # a download, where asked for: rank 0 first, as Lightning does
        datamodule.setup("fit")  # once: Lightning's own call then finds it loaded
    run_dir.publish_claim()  # the checks passed: other ranks may start
    if source.patch:  # the source differs from its commit: the difference is kept beside the run
        run_dir.write(PATCH, source.patch)
    with run_log(run_dir.path, run_dir.owner):  # from here on, the run's messages are kept
        trainer = _trainer(cfg, run_dir, last)
        started = time.perf_counter()
        tested = (
            _fit(trainer, classifier, datamodule, cfg, run_dir, last) if cfg.train else _given(cfg)
        )
        fit_s = time.perf_counter() - started
        # copied now: testing a checkpoint restores callback states, the history's included
        epochs = list(next(c for c in trainer.callbacks if isinstance(c, History)).epochs)
        test_metrics = _test(trainer, classifier, datamodule, cfg, tested)
        timing = {"fit_s": fit_s, "wall_s": time.perf_counter() - started}
        record = _record(cfg, classifier, epochs, test_metrics, tested, timing, source, start)
        _finish(trainer, cfg, run_dir, record)
    return record


def _build_run(
    cfg: DictConfig, start: WarmStart | None, resumed: bool
) -> tuple[L.LightningDataModule, Classifier]:
    """The configured run; with init_from, the checkpoint's network and (unless resumed) its
    weights; with train=false, the checkpoint's own network and weights."""
    if start is not None:
        datamodule, classifier = build(cfg, start.network(cfg))
        classifier.checkpoint_meta["model_name"] = start.model_name  # its checkpoints say so
        start.load(classifier, resumed)
        return datamodule, classifier
    if cfg.train:
        return build(cfg)
    if not cfg.ckpt_path:
        raise ConvlabError("train=false needs a checkpoint to evaluate: add ckpt_path=<file>")
    saved, meta = read_meta(cfg.ckpt_path)
    evaluation_config(cfg, meta, _overrides(), cfg.ckpt_path)
    # checked against its weights before validate builds the saved model config (min_input_size)
    net, preprocess = build_from_meta(meta, saved, cfg.ckpt_path, allowed(cfg))
    validate(cfg)
    datamodule, classifier = build(cfg, net, preprocess)
    load_weights(classifier, saved, cfg.ckpt_path)
    return datamodule, classifier


def _given(cfg: DictConfig) -> Tested:
    return Tested(str(cfg.ckpt_path), "the given checkpoint")


def _check_resume(cfg: DictConfig, run_dir: RunDir) -> Path | None:
    """The checkpoint to resume from, checked before anything is built or written: it must be of
    this very config (whatever the record says), and what Lightning restores from it must be
    this run's (its checkpoint paths, scores, history)."""
    refuse_partial_checkpoints(run_dir.path)
    last = run_dir.path / "checkpoints" / "last.ckpt"
    if not last.is_file():  # stopped before its first epoch ended (or a sweep's job never ran)
        return None
    ckpt, meta = read_meta(last)
    check_resume_matches(cfg, meta, run_dir.path)
    check_fits(meta, ckpt, last, allowed(cfg))
    checked_restore(ckpt, last.parent, last, _patience(cfg))
    return last


def _fit(
    trainer: L.Trainer, classifier, datamodule, cfg: DictConfig, run_dir: RunDir, last: Path | None
) -> Tested:
    run_dir.training = True
    try:
        trainer.fit(classifier, datamodule=datamodule, ckpt_path=last, weights_only=True)
    except Pruned as e:  # a search stopped this trial: recorded as pruned, never tested
        return Tested(None, f"not tested: {e}", pruned=e)
    ckpt = trainer.checkpoint_callback
    if isinstance(ckpt, ModelCheckpoint) and ckpt.monitor and ckpt.best_model_path:
        return Tested(ckpt.best_model_path, "best-val checkpoint")
    if not trainer.limit_val_batches:
        why = "validation off" if cfg.data.get("val_size", 1) else "no validation split"
        return Tested(None, f"final weights ({why})")
    return Tested(None, "final weights")


def _test(trainer: L.Trainer, classifier, datamodule, cfg: DictConfig, tested: Tested) -> dict:
    if not cfg.test or tested.pruned is not None:
        return {}
    (metrics,) = trainer.test(
        classifier,
        datamodule=datamodule,
        # train=false loaded the given checkpoint's weights into the network it built
        ckpt_path=tested.checkpoint if cfg.train else None,
        weights_only=True,
        verbose=False,
    )
    return metrics


def log_hparams(logger: TensorBoardLogger, shown: dict, columns: dict, new: dict) -> None:
    """One run's row of TensorBoard's HPARAMS tab, without a per-run "experiment" summary (which
    Lightning's log_hyperparams writes): given one, TensorBoard takes its columns from the first
    run it finds, sorted by name; without, it builds them from all runs and puts the keys that
    differ between the runs (a sweep's swept keys) first. ``columns`` are the metrics shown,
    ``new`` those of them not logged yet."""
    _, session_start, session_end = hparams_summaries(shown, columns)
    writer = logger.experiment._get_file_writer()
    writer.add_summary(session_start)
    writer.add_summary(session_end)
    logger.log_metrics(new, step=0)
    logger.save()


def _record(
    cfg: DictConfig,
    classifier: Classifier,
    epochs: list,
    test: dict,
    tested: Tested,
    timing: dict,
    source: Source,
    start: WarmStart | None,
) -> RunRecord:
    # the epoch whose checkpoint the test saw: chosen as ModelCheckpoint chose it (its first best)
    monitor = OmegaConf.select(cfg, "callbacks.model_checkpoint.monitor") or "val/acc"
    pick = min if OmegaConf.select(cfg, "callbacks.model_checkpoint.mode") == "min" else max
    validated = [r for r in epochs if monitor in r]  # check_val_every_n_epoch may skip some
    best = pick(validated, key=lambda r: r[monitor]) if validated else {}
    metrics = {k: v for k, v in best.items() if k.startswith("val/")}
    metrics.update({k: float(v) for k, v in test.items()})
    return RunRecord(
        status="pruned" if tested.pruned else "finished",
        pruned_after_epoch=tested.pruned.epoch if tested.pruned else None,
        validation=bool(validated),
        metrics=metrics,
        best_epoch=best.get("epoch"),
        tested=tested.what,
        epochs_run=len(epochs),
        history=epochs,
        model={
            "name": classifier.checkpoint_meta["model_name"],
            "class": type(classifier.net).__name__,
            "params": sum(p.numel() for p in classifier.net.parameters()),
        },
        overrides=_overrides(),
        environment=environment(REPO_DIR, source),
        timing=timing,
        paths={"run_dir": str(cfg.paths.output_dir), "checkpoint": tested.checkpoint},
        init_from=start.record() if start else {},
    )


def evaluate_command(checkpoint: str, overrides: list[str], target: str) -> str:
    """``train=false`` on a run's checkpoint, on the data it was tested on: its data choice (the
    network and preprocessing come from the checkpoint), where that data was and how its test
    images were chosen; its model's class ``target`` allowed by name where no config in
    conf/model/ registers it."""
    choice = HydraConfig.get().runtime.choices.get("data") if HydraConfig.initialized() else None
    data = [f"data={choice}"] if choice else []
    data += [shlex.quote(o) for o in overrides if o.split("=", 1)[0] in _DATA_PLACES]
    allow = [] if target in model_classes() else [shlex.quote(f"allow=[{target}]")]
    return " ".join(
        ["python train.py train=false", paste_override("ckpt_path", checkpoint), *data, *allow]
    )


# where the data was, and which of its images an image folder held out for the test
_DATA_PLACES = (
    "data.root",
    "data.system_dir",
    "paths.data_dir",
    "paths.root_dir",
    "data.stored_size",
    "data.test_size",
    "data.val_size",
    "data.split_seed",
)


@rank_zero_only
def _finish(trainer: L.Trainer, cfg: DictConfig, run: RunDir, record: RunRecord) -> None:
    """Rank 0 writes metrics.json, sends the final metrics to TensorBoard's HPARAMS tab, and says
    where everything is."""
    choices = HydraConfig.get().runtime.choices if HydraConfig.initialized() else {}
    shown = hyperparameters(cfg, record.overrides, dict(choices), swept_keys(), log_scaled_keys())
    # HPARAMS' metric columns: the test metrics as the test logged them, and the selected epoch's
    # validation metrics under tags of their own (val/acc's last point is the last epoch's)
    selected = {k.replace("val/", "val/best_", 1): v for k, v in record.metrics.items()}
    new = {k: v for k, v in selected.items() if k not in record.metrics}
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            log_hparams(logger, shown, selected, new)
        elif isinstance(logger, MLFlowLogger | WandbLogger):
            logger.log_hyperparams(shown)
            logger.log_metrics(new)
    finish(trainer.loggers)  # W&B writes its last files now, not after metrics.json exists
    run.write(METRICS, record.to_text())  # last: metrics.json marks the run finished
    run_dir = run.path
    acc = record.test_acc
    if acc is not None:
        epoch = f", epoch {record.best_epoch}" if record.best_epoch is not None else ""
        say(f"test/acc {acc:.4f} ({record.tested}{epoch})")
    say(f"run directory: {shlex.quote(str(run_dir))}")
    if record.paths["checkpoint"]:  # as an override that pastes, whatever the path holds
        again = evaluate_command(record.paths["checkpoint"], record.overrides, cfg.model._target_)
        say(f"evaluate again: {again}")
    # the runs of its kind (outputs/runs, or the sweep's own directory), or a run put elsewhere
    log_dir = Path(cfg.paths.log_dir).resolve()
    shown = run_dir.parent if run_dir.resolve().is_relative_to(log_dir) else run_dir
    for line in dashboard_commands(trainer.loggers, shown):
        say(f"dashboards: {line}")
