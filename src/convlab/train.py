"""run(cfg): the one place that wires data, model, classifier and trainer together."""

import logging
import time
import warnings
from pathlib import Path

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.callbacks import ModelCheckpoint, ProgressBar
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from convlab.callbacks.history import History, ReseedEachEpoch
from convlab.checkpoint_io import AtomicCheckpointIO, load_checkpoint
from convlab.classifier import Classifier
from convlab.config import (
    CONF_DIR,
    compose_run,
    instantiate,
    model_choice,
    net_config,
    refuse_used_run_dir,
    validate,
)
from convlab.errors import ConvlabError
from convlab.record import environment, write_json

# Lightning advertises a cloud logger at every Trainer start, and its pytree helper trips a torch
# deprecation warning: noise in every run's output, nothing a user can act on.
logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(
    lambda record: "litlogger" not in record.getMessage()
)
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")


def build(cfg: DictConfig) -> tuple[L.LightningDataModule, Classifier]:
    """The DataModule and the Classifier around the configured network."""
    datamodule = instantiate(cfg.data)
    net = instantiate(net_config(cfg.model))
    classifier = Classifier(
        net,
        datamodule.preprocess,
        num_classes=cfg.data.num_classes,
        optimizer=instantiate(cfg.optimizer),
        scheduler=instantiate(cfg.scheduler) if cfg.get("scheduler") else None,
        label_smoothing=cfg.module.label_smoothing,
        channels_last=cfg.module.channels_last,
        record={
            "config": OmegaConf.to_container(cfg, resolve=True),
            "model_name": model_choice(),
            "class_names": datamodule.class_names,
        },
    )
    if cfg.module.compile:
        classifier.net.compile()  # in place: checkpoints keep the uncompiled parameter names
    return datamodule, classifier


def _load_weights(classifier: Classifier, path: str) -> None:
    """Load a checkpoint's weights for evaluation, refusing one made for another network."""
    ckpt = load_checkpoint(path)
    saved = ckpt.get("convlab", {})
    ours = classifier.state_dict()
    theirs = ckpt.get("state_dict", {})
    if set(ours) != set(theirs) or any(ours[k].shape != theirs[k].shape for k in ours):
        trained_with = saved.get("model_name") or saved.get("config", {}).get("model", {}).get(
            "_target_", "another model"
        )
        resize = saved.get("config", {}).get("data", {}).get("resize")
        same = f"model={trained_with}" + (f" data.resize={resize}" if resize is not None else "")
        raise ConvlabError(
            f"{path} holds weights for {same} that do not fit this config's "
            f"model={model_choice() or type(classifier.net).__name__}; pass {same}"
        )
    classifier.load_state_dict(theirs)


def _instantiate_all(group: DictConfig | None) -> list:
    """Callbacks and loggers are dicts of configs, so one can be dropped with `callbacks.x=null`."""
    return [instantiate(c) for c in (group or {}).values() if c is not None]


def _tested_checkpoint(trainer: L.Trainer) -> str | None:
    ckpt = trainer.checkpoint_callback
    return ckpt.best_model_path or None if isinstance(ckpt, ModelCheckpoint) else None


def run(cfg: DictConfig | None = None, overrides: list[str] | tuple[str, ...] = ()) -> dict:
    """Train, test and record one run; returns what it writes to metrics.json.

    From Python: ``run(overrides=["model=lenet", "trainer.max_epochs=2"])`` composes the config
    exactly as ``python train.py model=lenet trainer.max_epochs=2`` does.
    """
    cfg = cfg if cfg is not None else compose_run(overrides)
    validate(cfg)
    run_dir = Path(cfg.paths.output_dir)
    if not cfg.resume:
        refuse_used_run_dir(run_dir)
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    L.seed_everything(cfg.seed, verbose=False)
    datamodule, classifier = build(cfg)
    history = History()
    callbacks = _instantiate_all(cfg.get("callbacks"))
    if not cfg.trainer.get("enable_progress_bar", True):  # Lightning refuses a bar it cannot show
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    trainer: L.Trainer = instantiate(
        cfg.trainer,
        callbacks=[*callbacks, history, ReseedEachEpoch(cfg.seed)],
        logger=_instantiate_all(cfg.get("logger")),
        plugins=[AtomicCheckpointIO()],
    )
    started = time.perf_counter()
    tested = None
    if cfg.train:
        resume = str(Path(cfg.resume) / "checkpoints" / "last.ckpt") if cfg.resume else None
        if resume:
            load_checkpoint(resume)  # refuse an unsafe or truncated file with convlab's message
        trainer.fit(classifier, datamodule=datamodule, ckpt_path=resume, weights_only=True)
        tested = _tested_checkpoint(trainer)
    elif cfg.ckpt_path:
        _load_weights(classifier, cfg.ckpt_path)
        tested = str(cfg.ckpt_path)
    else:
        raise ConvlabError("train=false needs a checkpoint to evaluate: add ckpt_path=<file.ckpt>")
    fit_s = time.perf_counter() - started
    epochs = list(history.epochs)  # testing a checkpoint restores callback states, history included
    test_metrics = {}
    if cfg.test:
        ckpt = tested if cfg.train and tested else None
        (test_metrics,) = trainer.test(
            classifier, datamodule=datamodule, ckpt_path=ckpt, weights_only=True, verbose=False
        )
    record = _record(
        cfg,
        classifier,
        epochs,
        test_metrics,
        tested,
        timing={"fit_s": fit_s, "wall_s": time.perf_counter() - started},
    )
    log_dir = Path(cfg.paths.log_dir).resolve()
    _finish(
        trainer, run_dir, log_dir if run_dir.resolve().is_relative_to(log_dir) else run_dir, record
    )
    return record


def _record(cfg, classifier, epochs, test_metrics, tested, timing) -> dict:
    best = max(epochs, key=lambda r: r.get("val/acc", float("-inf"))) if epochs else {}
    metrics = {k: v for k, v in best.items() if k.startswith("val/")}
    metrics.update({k: float(v) for k, v in test_metrics.items()})
    overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    return {
        "metrics": metrics,
        "best_epoch": best.get("epoch"),
        "tested": "best-val checkpoint"
        if cfg.train and tested
        else ("the given checkpoint" if tested else "final weights"),
        "epochs_run": len(epochs),
        "history": epochs,
        "model": {
            "name": classifier.record["model_name"],
            "class": type(classifier.net).__name__,
            "params": sum(p.numel() for p in classifier.net.parameters()),
        },
        "overrides": overrides,
        "environment": environment(CONF_DIR.parent),
        "timing": timing,
        "paths": {"run_dir": str(cfg.paths.output_dir), "checkpoint": tested},
    }


@rank_zero_only
def _finish(trainer: L.Trainer, run_dir: Path, logdir: Path, record: dict) -> None:
    """Rank 0 writes metrics.json, sends the final metrics to TensorBoard's HPARAMS tab, and says
    where everything is."""
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / "metrics.json", record)
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            config = trainer.lightning_module.record.get("config", {})
            logger.log_hyperparams(
                _flatten(config),
                {f"hp/{k.replace('/', '_')}": v for k, v in record["metrics"].items()},
            )
            logger.save()
    acc = record["metrics"].get("test/acc")
    if acc is not None:
        epoch = f", epoch {record['best_epoch']}" if record["best_epoch"] is not None else ""
        print(f"test/acc {acc:.4f} ({record['tested']}{epoch})")
    print(f"run directory: {run_dir}")
    print(f"dashboards: tensorboard --logdir {logdir}")


def _flatten(tree: dict, prefix: str = "") -> dict:
    """{'a': {'b': 1}} -> {'a.b': 1}, lists as strings: the shape TensorBoard's HPARAMS wants.

    Lightning's own flattening joins with '/'; dots keep the HPARAMS columns equal to the
    command-line keys (model.activation), so a sweep reads the same in both places."""
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value if isinstance(value, int | float | str | bool) else str(value)
    return flat
