"""run(cfg): the one place that wires data, model, classifier and trainer together."""

import shlex
import time
from pathlib import Path
from typing import NamedTuple

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch.callbacks import ModelCheckpoint, ModelSummary, ProgressBar
from lightning.pytorch.loggers import MLFlowLogger, TensorBoardLogger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf, open_dict
from torch.utils.tensorboard.summary import hparams as hparams_summaries

from convlab.callbacks.history import History
from convlab.callbacks.loggers import finish
from convlab.callbacks.pruning import Pruned
from convlab.callbacks.reseed import ReseedEachEpoch
from convlab.checkpoint_io import AtomicCheckpointIO, read_meta
from convlab.classifier import Classifier
from convlab.config import compose_run, instantiate, model_choice
from convlab.errors import ConvlabError
from convlab.evaluation import evaluation_config
from convlab.hparams import hyperparameters
from convlab.inference import build_from_meta, load_weights
from convlab.paths import REPO_DIR
from convlab.record import RunRecord, environment
from convlab.registry import constructor_args
from convlab.resume import check_resume_matches
from convlab.rundir import METRICS, RunDir, paste_override
from convlab.signals import Interrupted, interruptible
from convlab.sweep import swept_keys
from convlab.validate import validate


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
    select a checkpoint by or stop early on; the test then evaluates the final weights."""
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


def _trainer(cfg: DictConfig) -> L.Trainer:
    _without_validation(cfg)
    callbacks = _instantiate_all(cfg.get("callbacks"))
    # Lightning refuses a bar or a summary callback that its own switch turns off
    if not cfg.trainer.get("enable_progress_bar", True):
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    if not cfg.trainer.get("enable_model_summary", True):
        callbacks = [c for c in callbacks if not isinstance(c, ModelSummary)]
    return instantiate(
        cfg.trainer,
        callbacks=[*callbacks, History(), ReseedEachEpoch(cfg.seed)],
        logger=_instantiate_all(cfg.get("logger")),
        plugins=[AtomicCheckpointIO()],
    )


def _multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def _overrides() -> list[str]:
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def run(cfg: DictConfig | None = None, overrides: list[str] | tuple[str, ...] = ()) -> RunRecord:
    """Train, test and record one run; returns what it writes to metrics.json.

    From Python: ``run(overrides=["model=lenet", "trainer.max_epochs=2"])`` composes the config
    exactly as ``python train.py model=lenet trainer.max_epochs=2`` does.
    """
    cfg = cfg if cfg is not None else compose_run(overrides)
    run_dir = RunDir(Path(cfg.paths.output_dir), resuming=bool(cfg.resume)).claim()
    try:
        run_dir.write_hydra_dir(
            cfg, HydraConfig.get() if HydraConfig.initialized() else None, _overrides()
        )
        with interruptible():
            record = _run(cfg, run_dir)
        run_dir.clear_failure()
        return record
    except Interrupted as e:
        e.run_dir, e.resumable = run_dir.path, _resumable(run_dir)
        e.in_sweep = _multirun()
        run_dir.record_failure("interrupted", str(e), _overrides(), e.resumable)
        raise
    except Exception as e:  # a user's mistake (ConvlabError), or a crash: out of memory, a bug
        if _multirun() or not run_dir.remove_if_empty_run():
            mistake = isinstance(e, ConvlabError)  # the same command would fail the same way
            error = str(e) if mistake else f"{type(e).__name__}: {e}"
            resumable = not mistake and _resumable(run_dir)
            run_dir.record_failure("failed", error, _overrides(), resumable)
        raise
    finally:
        run_dir.release()


def _resumable(run_dir: RunDir) -> bool:
    return (run_dir.path / "checkpoints" / "last.ckpt").is_file()


class Tested(NamedTuple):
    """The weights the test evaluates, and how the record names them."""

    checkpoint: str | None  # a file, or None: the weights in memory
    what: str  # in words, for metrics.json and the run's last lines
    pruned: Pruned | None = None  # a search stopped the run: nothing is tested


def _run(cfg: DictConfig, run_dir: RunDir) -> RunRecord:
    """The run's stages, top to bottom."""
    validate(cfg)
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    L.seed_everything(cfg.seed, verbose=False)
    datamodule, classifier = _build_run(cfg)
    trainer = _trainer(cfg)
    started = time.perf_counter()
    tested = _fit(trainer, classifier, datamodule, cfg, run_dir) if cfg.train else _given(cfg)
    fit_s = time.perf_counter() - started
    # copied now: testing a checkpoint restores callback states, the history's included
    epochs = list(next(c for c in trainer.callbacks if isinstance(c, History)).epochs)
    test_metrics = _test(trainer, classifier, datamodule, cfg, tested)
    timing = {"fit_s": fit_s, "wall_s": time.perf_counter() - started}
    record = _record(cfg, classifier, epochs, test_metrics, tested, timing)
    _finish(trainer, cfg, run_dir.path, record)
    return record


def _build_run(cfg: DictConfig) -> tuple[L.LightningDataModule, Classifier]:
    """The configured run; with train=false, the checkpoint's own network and weights."""
    if cfg.train:
        return build(cfg)
    if not cfg.ckpt_path:
        raise ConvlabError("train=false needs a checkpoint to evaluate: add ckpt_path=<file>")
    saved, meta = read_meta(cfg.ckpt_path)
    evaluation_config(cfg, meta, _overrides(), cfg.ckpt_path)
    validate(cfg)
    datamodule, classifier = build(cfg, *build_from_meta(meta, cfg.ckpt_path))
    load_weights(classifier, saved, cfg.ckpt_path)
    return datamodule, classifier


def _given(cfg: DictConfig) -> Tested:
    return Tested(str(cfg.ckpt_path), "the given checkpoint")


def _fit(trainer: L.Trainer, classifier, datamodule, cfg: DictConfig, run_dir: RunDir) -> Tested:
    last = run_dir.path / "checkpoints" / "last.ckpt" if cfg.resume else None
    if last is not None:  # the checkpoint must be of this very config, whatever the record says
        _, meta = read_meta(last)
        check_resume_matches(cfg, meta, run_dir.path)
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


def log_hparams(logger: TensorBoardLogger, shown: dict, final: dict) -> None:
    """One run's row of TensorBoard's HPARAMS tab, without a per-run "experiment" summary (which
    Lightning's log_hyperparams writes): given one, TensorBoard takes its columns from the first
    run it finds, sorted by name; without, it builds them from all runs and puts the keys that
    differ between the runs (a sweep's swept keys) first."""
    _, session_start, session_end = hparams_summaries(shown, final)
    writer = logger.experiment._get_file_writer()
    writer.add_summary(session_start)
    writer.add_summary(session_end)
    logger.log_metrics(final, step=0)
    logger.save()


def _record(
    cfg: DictConfig, classifier: Classifier, epochs: list, test: dict, tested: Tested, timing: dict
) -> RunRecord:
    validated = [r for r in epochs if "val/acc" in r]  # check_val_every_n_epoch may skip some
    best = max(validated, key=lambda r: r["val/acc"]) if validated else {}
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
        environment=environment(REPO_DIR),
        timing=timing,
        paths={"run_dir": str(cfg.paths.output_dir), "checkpoint": tested.checkpoint},
    )


@rank_zero_only
def _finish(trainer: L.Trainer, cfg: DictConfig, run_dir: Path, record: RunRecord) -> None:
    """Rank 0 writes metrics.json, sends the final metrics to TensorBoard's HPARAMS tab, and says
    where everything is."""
    choices = HydraConfig.get().runtime.choices if HydraConfig.initialized() else {}
    shown = hyperparameters(cfg, record.overrides, dict(choices), swept_keys())
    final = {f"hp/{k.replace('/', '_')}": v for k, v in record.metrics.items()}
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            log_hparams(logger, shown, final)
        elif isinstance(logger, MLFlowLogger | WandbLogger):
            logger.log_hyperparams(shown)
            logger.log_metrics(final)
    finish(trainer.loggers)  # W&B writes its last files now, not after metrics.json exists
    record.write(run_dir / METRICS)  # last: metrics.json marks the run finished
    acc = record.test_acc
    if acc is not None:
        epoch = f", epoch {record.best_epoch}" if record.best_epoch is not None else ""
        print(f"test/acc {acc:.4f} ({record.tested}{epoch})")
    print(f"run directory: {shlex.quote(str(run_dir))}")
    if record.paths["checkpoint"]:  # as an override that pastes, whatever the path holds
        print(
            f"evaluate again: python train.py train=false "
            f"{paste_override('ckpt_path', record.paths['checkpoint'])}"
        )
    log_dir = Path(cfg.paths.log_dir).resolve()
    shown = log_dir if run_dir.resolve().is_relative_to(log_dir) else run_dir
    print(f"dashboards: tensorboard --logdir {shlex.quote(str(shown))}")
