"""Learning-rate schedules: when each is stepped, what is refused, and a warm-up before a cosine.

A schedule is two configs chosen together (one ``conf/scheduler/`` option): ``scheduler``, the
constructor's arguments (``_partial_``, finished in ``Classifier.configure_optimizers``), and
``scheduler_step``, how Lightning steps it: every batch or every epoch (``interval``), every
``frequency`` of them, and for a scheduler that follows a metric, which one (``monitor``) and
which way it improves (``mode``). docs/schedulers.md says how to name any torch scheduler.
"""

import importlib
import typing

from omegaconf import DictConfig
from torch.optim import Optimizer
from torch.optim.lr_scheduler import (
    CosineAnnealingLR,
    ExponentialLR,
    LinearLR,
    LRScheduler,
    MultiplicativeLR,
    MultiStepLR,
    ReduceLROnPlateau,
    SequentialLR,
    StepLR,
)

from convlab.errors import ConvlabError

# What a monitored scheduler may follow: the Classifier's epoch-level metrics (the test comes after
# training), and which way each improves
MONITORABLE = {"val/loss": "min", "val/acc": "max", "train/loss": "min", "train/acc": "max"}

# Schedulers whose arguments count epochs: a decay every step_size epochs, at milestones, by a
# factor each epoch, after patience epochs without improvement. Stepped every batch, they act as
# many times an epoch as it has batches (StepLR(step_size=1, gamma=0.1) leaves no rate after a
# few batches). The others span a length (left null, it is the run's) or are per batch by design.
PER_EPOCH = (StepLR, MultiStepLR, ExponentialLR, MultiplicativeLR, ReduceLROnPlateau)

# Arguments that mean "the length of the schedule"; left null in a config, they are filled with
# the number of times the run steps the scheduler
LENGTH_ARGS = ("total_steps", "T_max", "total_iters")

STEP_KEYS = ("interval", "frequency", "monitor", "mode")  # scheduler_step's, each set by its option

# How convlab stepped every scheduler before scheduler_step existed: what a checkpoint saved then
# was trained with
STEPPED_EVERY_BATCH = {"interval": "step", "frequency": 1, "monitor": None, "mode": None}


LEARNING_RATE = "train/lr"  # the chart of the scheduled learning rate


def with_stepping(saved: dict) -> dict:
    """A checkpoint's config with its scheduler's stepping, which configs from before
    scheduler_step leave out: their runs resume, compared with today's keys."""
    if isinstance(saved.get("scheduler"), dict) and "scheduler_step" not in saved:
        return {**saved, "scheduler_step": STEPPED_EVERY_BATCH}
    return saved


def check_stepping(cfg: DictConfig) -> None:
    """``scheduler_step`` values that cannot work, refused before anything is built."""
    if not cfg.get("scheduler"):
        return
    step = cfg.get("scheduler_step") or {}
    if missing := [key for key in STEP_KEYS if key not in step]:
        raise ConvlabError(
            f"scheduler_step lacks {', '.join(missing)}: a conf/scheduler/ option sets "
            f"scheduler_step ({', '.join(STEP_KEYS)}) beside scheduler, see docs/schedulers.md"
        )
    if step.interval not in ("step", "epoch"):
        raise ConvlabError(
            f"scheduler_step.interval={step.interval} is invalid: expected step (every batch) or "
            "epoch, e.g. scheduler_step.interval=epoch"
        )
    if not (type(step.frequency) is int and step.frequency > 0):
        raise ConvlabError(
            f"scheduler_step.frequency={step.frequency} is invalid: expected a positive integer "
            "(the scheduler steps every frequency intervals), e.g. scheduler_step.frequency=1"
        )
    if step.monitor is not None and step.monitor not in MONITORABLE:
        raise ConvlabError(
            f"scheduler_step.monitor={step.monitor} is not a metric convlab logs; monitor one of "
            f"{', '.join(MONITORABLE)}, e.g. scheduler_step.monitor=val/loss"
        )
    if step.monitor is not None and step.mode != MONITORABLE[step.monitor]:
        raise ConvlabError(
            f"scheduler_step.mode={step.mode} is invalid for {step.monitor}, which improves "
            f"towards its {MONITORABLE[step.monitor]}; set "
            f"scheduler_step.mode={MONITORABLE[step.monitor]}"
        )
    made = _made_class(cfg.scheduler._target_)
    if made is not None and (problem := stepping_problem(made, step)):
        raise ConvlabError(problem)
    every = cfg.trainer.get("check_val_every_n_epoch") or 1
    if str(step.monitor).startswith("val/") and step.interval == "epoch" and step.frequency % every:
        raise ConvlabError(
            f"scheduler_step.monitor={step.monitor} is read every {step.frequency} epoch(s), and "
            f"trainer.check_val_every_n_epoch={every} validates less often; set "
            f"scheduler_step.frequency={every}"
        )


def _made_class(target: str) -> type | None:
    """The class of the scheduler a ``_target_`` makes: the class itself, or the class a function
    is annotated to return (None: known only once the function has made it)."""
    module, _, name = target.rpartition(".")
    try:
        made = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as e:
        raise ConvlabError(f"scheduler._target_={target} cannot be imported ({e})") from None
    if not isinstance(made, type):
        made = typing.get_type_hints(made).get("return")
    return made if isinstance(made, type) else None


def stepping_problem(made: type, step) -> str | None:
    """Why a scheduler of this class cannot be stepped as ``step`` says, or None."""
    name = made.__name__
    if step["interval"] == "step" and issubclass(made, PER_EPOCH):
        return (
            f"{name} counts epochs in its arguments, and scheduler_step.interval=step would step "
            "it every batch; set scheduler_step.interval=epoch"
        )
    follows_metric = issubclass(made, ReduceLROnPlateau)
    if follows_metric and step["monitor"] is None:
        return (
            f"{name} steps on a metric, and scheduler_step.monitor is null; set "
            "scheduler_step.monitor=val/loss (or another logged metric, with its mode)"
        )
    if step["monitor"] is not None and not follows_metric:
        return (
            f"scheduler_step.monitor={step['monitor']} is read only by ReduceLROnPlateau, and "
            f"{name} never reads it; set scheduler_step.monitor=null"
        )
    return None


def lightning_config(scheduler: LRScheduler | ReduceLROnPlateau, step: dict) -> dict:
    """Lightning's ``lr_scheduler`` dict for a made scheduler, its stepping checked on the class
    it has: before the run, a function's scheduler is known only by its return annotation."""
    if problem := stepping_problem(type(scheduler), step):
        raise ConvlabError(problem)
    return {
        "scheduler": scheduler,
        "interval": step["interval"],
        "frequency": step["frequency"],
        "monitor": step["monitor"],
        "name": LEARNING_RATE,  # TensorBoard's train group, not a group of its own (lr-AdamW)
    }


def warmup_cosine(
    optimizer: Optimizer,
    total_steps: int,
    warmup_fraction: float,
    start_factor: float,
    eta_min: float,
) -> SequentialLR:
    """A linear warm-up from ``start_factor`` x lr to lr over the first ``warmup_fraction`` of the
    schedule, then cosine decay to ``eta_min`` over the rest: a fresh network's first updates,
    taken at the full rate, can throw it far from where the decay would have led it. Torch has no
    class for the pair; this function names it in a config (``_partial_``, total_steps null)."""
    warmup = round(warmup_fraction * total_steps)
    if not 0 < warmup < total_steps:
        raise ConvlabError(
            f"scheduler.warmup_fraction={warmup_fraction} of {total_steps} scheduler steps leaves "
            f"{warmup} for the warm-up and {total_steps - warmup} for the decay; each needs at "
            "least one: change the fraction or train longer"
        )
    return SequentialLR(
        optimizer,
        [
            LinearLR(optimizer, start_factor=start_factor, total_iters=warmup),
            CosineAnnealingLR(optimizer, T_max=total_steps - warmup, eta_min=eta_min),
        ],
        milestones=[warmup],
    )
