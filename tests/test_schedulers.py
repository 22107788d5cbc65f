"""Schedulers stepped as their configs say (every batch or every epoch, on a metric): the learning
rate of every step follows each schedule's formula, a stopped run resumes each exactly, and
stepping that cannot work is refused in one line before training."""

import math
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator

from convlab.errors import ConvlabError
from convlab.paths import CONF_DIR
from convlab.record import RunRecord
from convlab.signals import Interrupted
from convlab.train import run
from tests.helpers import KILL, STOP, TINY, cli, comparable, one_line_error

LR, EPOCHS, STEPS = 0.01, 4, 3  # the optimizer's rate; 4 epochs of 3 steps
N = EPOCHS * STEPS
RUN = [
    *TINY,
    f"optimizer.lr={LR}",
    f"trainer.max_epochs={EPOCHS}",
    "trainer.log_every_n_steps=1",  # the learning rate of every step in TensorBoard
]
# SIGTERM after the first step of epoch 2: last.ckpt is epoch 1's, and the schedule changes after
STOPPED_AT = [STOP, "+callbacks.stop.step=7"]


def cosine(start: float, end: float, done: float) -> float:
    """From ``start`` to ``end`` along half a cosine, ``done`` of the way (0 to 1)."""
    return end + (start - end) * (1 + math.cos(math.pi * done)) / 2


def plateau_rates(history: list[dict], monitor: str, mode: str, factor: float) -> list[float]:
    """ReduceLROnPlateau's rule with patience 0 (torch's relative threshold 1e-4, no cooldown):
    the rate of each epoch, the rate times factor after every epoch that did not improve."""
    rates, best, lr = [], None, LR
    for row in history:
        rates.append(lr)
        value, sign = row[monitor], 1 if mode == "max" else -1
        if best is None or sign * value > sign * best * (1 + sign * 1e-4):
            best = value
        else:
            lr *= factor
    return rates


def one_cycle(k: int, peak: float) -> float:
    """OneCycleLR with torch's defaults: from lr / 25 up to lr at step ``peak`` (pct_start x
    steps - 1), then down to lr / 25 / 1e4 at the last step."""
    if k <= peak:
        return cosine(LR / 25, LR, k / peak)
    return cosine(LR, LR / 25 / 1e4, (k - peak) / (N - 1 - peak))


class Schedule(NamedTuple):
    overrides: list[str]
    rate: Callable[[int, RunRecord], float]  # a step's learning rate by the schedule's formula


def per_epoch(rate: Callable[[int], float]) -> Callable[[int, RunRecord], float]:
    return lambda k, record: rate(k // STEPS)


SCHEDULES = {
    "step": Schedule(
        ["scheduler=step", "scheduler.step_size=2", "scheduler.gamma=0.5"],
        per_epoch(lambda e: LR * 0.5 ** (e // 2)),
    ),
    "multistep": Schedule(
        ["scheduler=multistep", "scheduler.milestones=[1,3]", "scheduler.gamma=0.5"],
        per_epoch(lambda e: LR * 0.5 ** sum(e >= m for m in (1, 3))),
    ),
    "plateau": Schedule(
        ["scheduler=plateau", "scheduler.patience=0", "scheduler.factor=0.5"],
        lambda k, record: plateau_rates(record.history, "val/loss", "min", 0.5)[k // STEPS],
    ),
    "plateau_val_acc": Schedule(
        [
            "scheduler=plateau",
            "scheduler.patience=0",
            "scheduler.factor=0.5",
            "scheduler_step.monitor=val/acc",
            "scheduler_step.mode=max",
        ],
        lambda k, record: plateau_rates(record.history, "val/acc", "max", 0.5)[k // STEPS],
    ),
    "cosine": Schedule(
        ["scheduler=cosine", "scheduler.eta_min=0.001"],
        lambda k, record: cosine(LR, 0.001, k / N),
    ),
    "onecycle": Schedule(
        ["scheduler=onecycle", "scheduler.pct_start=0.25"],
        lambda k, record: one_cycle(k, peak=0.25 * N - 1),
    ),
    "warmup_cosine": Schedule(  # 3 steps of warm-up from 0.1 x lr, 9 of decay
        ["scheduler=warmup_cosine", "scheduler.warmup_fraction=0.25", "scheduler.start_factor=0.1"],
        lambda k, record: LR * (0.1 + 0.9 * k / 3) if k < 3 else cosine(LR, 0.0, (k - 3) / 9),
    ),
    # any scheduler, stepped as scheduler_step says: a cosine over epochs (its length then counts
    # epochs), a staircase stepped every other epoch, and a torch class no option ships
    "cosine_per_epoch": Schedule(
        ["scheduler=cosine", "scheduler_step.interval=epoch"],
        per_epoch(lambda e: cosine(LR, 0.0, e / EPOCHS)),
    ),
    "step_every_other_epoch": Schedule(
        [
            "scheduler=step",
            "scheduler.step_size=1",
            "scheduler.gamma=0.5",
            "scheduler_step.frequency=2",
        ],
        per_epoch(lambda e: LR * 0.5 ** (e // 2)),
    ),
    "exponential": Schedule(
        [
            "scheduler=step",
            "scheduler._target_=torch.optim.lr_scheduler.ExponentialLR",
            "~scheduler.step_size",
            "scheduler.gamma=0.5",
        ],
        per_epoch(lambda e: LR * 0.5**e),
    ),
}
SHIPPED = ["step", "multistep", "plateau", "cosine", "onecycle", "warmup_cosine"]


def logged_rates(run_dir: Path) -> list[float]:
    """The learning rate of each step as TensorBoard shows it (LearningRateMonitor's)."""
    accumulator = EventAccumulator(str(run_dir), size_guidance={SCALARS: 0})
    accumulator.Reload()
    points = accumulator.Scalars("train/lr")
    assert [p.step for p in points] == list(range(N))  # every step, once
    return [p.value for p in points]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """Each schedule's run to its end, made once for the tests that read it."""
    runs = {}

    def finished(name: str) -> tuple[RunRecord, Path]:
        if name not in runs:
            run_dir = tmp_path_factory.mktemp(name) / "run"
            record = run(overrides=[*RUN, *SCHEDULES[name].overrides, f"hydra.run.dir={run_dir}"])
            runs[name] = record, run_dir
        return runs[name]

    return finished


@pytest.mark.parametrize("option", sorted(p.stem for p in (CONF_DIR / "scheduler").glob("*.yaml")))
def test_every_scheduler_config_trains(option, run_dir):
    """Each conf/scheduler/ option, one a user adds included, through two epochs."""
    record = run(
        overrides=[*TINY, "trainer.max_epochs=2", f"scheduler={option}", f"hydra.run.dir={run_dir}"]
    )
    assert record.epochs_run == 2


@pytest.mark.parametrize("name", SCHEDULES)
def test_the_learning_rate_of_every_step_follows_the_schedules_formula(name, uninterrupted):
    record, run_dir = uninterrupted(name)
    expected = [SCHEDULES[name].rate(k, record) for k in range(N)]
    assert logged_rates(run_dir) == pytest.approx(expected, rel=1e-5)
    assert len(set(expected)) > 1  # the schedule acted within the run


@pytest.mark.parametrize("name", SHIPPED)
def test_a_stopped_run_resumes_each_schedule_exactly(name, uninterrupted, tmp_path):
    reference, reference_dir = uninterrupted(name)
    run_dir = tmp_path / "run"
    with pytest.raises(Interrupted):
        run(overrides=[*RUN, *SCHEDULES[name].overrides, *STOPPED_AT, f"hydra.run.dir={run_dir}"])
    record = run(overrides=[f"resume={run_dir}", *STOPPED_AT])
    assert comparable(record) == comparable(reference)  # metrics, history, epochs
    assert logged_rates(run_dir) == logged_rates(reference_dir)


def test_resuming_with_other_stepping_is_refused_naming_the_key(killed_copy):
    with pytest.raises(ConvlabError, match=r"config differs.*scheduler_step\.interval"):
        run(overrides=[f"resume={killed_copy}", KILL, "scheduler_step.interval=epoch"])


def test_a_run_saved_before_scheduler_step_existed_resumes(killed_copy):
    """Its checkpoint's config has no scheduler_step: it was stepped every batch, as one-cycle
    still is, so the default config matches it."""
    last = killed_copy / "checkpoints" / "last.ckpt"
    ckpt = torch.load(last, weights_only=True)
    del ckpt["convlab"]["config"]["scheduler_step"]
    torch.save(ckpt, last)
    record = run(overrides=[f"resume={killed_copy}", KILL])
    assert record.epochs_run == 2


def test_an_epoch_scheduler_stepped_every_batch_is_refused_in_one_line(tmp_path):
    run_dir = tmp_path / "run"
    out = cli(*TINY, "scheduler=step", "scheduler_step.interval=step", f"hydra.run.dir={run_dir}")
    assert one_line_error(out).endswith(
        "StepLR counts epochs in its arguments, and scheduler_step.interval=step would step it "
        "every batch; set scheduler_step.interval=epoch"
    )
    assert not run_dir.exists()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["scheduler=plateau", "scheduler_step.interval=step"],
            "ReduceLROnPlateau counts epochs.*set scheduler_step.interval=epoch",
        ),
        (
            ["scheduler=multistep", "scheduler_step.interval=step"],
            "MultiStepLR counts epochs",
        ),
        (
            [
                "scheduler=step",
                "scheduler._target_=torch.optim.lr_scheduler.ExponentialLR",
                "~scheduler.step_size",
                "scheduler_step.interval=step",
            ],
            "ExponentialLR counts epochs",
        ),
        (
            ["scheduler=plateau", "scheduler_step.monitor=null"],
            "ReduceLROnPlateau steps on a metric, and scheduler_step.monitor is null",
        ),
        (
            ["scheduler=step", "scheduler_step.monitor=val/loss", "scheduler_step.mode=min"],
            "monitor=val/loss is read only by ReduceLROnPlateau, and StepLR never reads it",
        ),
        (
            ["scheduler=plateau", "scheduler_step.monitor=val/f1"],
            "scheduler_step.monitor=val/f1 is not a metric convlab logs; monitor one of val/loss",
        ),
        (
            ["scheduler=plateau", "scheduler_step.monitor=val/acc"],
            "scheduler_step.mode=min is invalid for val/acc.*set scheduler_step.mode=max",
        ),
        (
            ["scheduler=plateau", "data.val_size=0"],
            "monitor=val/loss is measured by validation, and data.val_size=0 leaves no validation",
        ),
        (
            ["scheduler=plateau", "trainer.limit_val_batches=0"],
            "monitor=val/loss is measured by validation, and trainer.limit_val_batches=0 turns",
        ),
        (
            ["scheduler=plateau", "trainer.check_val_every_n_epoch=2"],
            "read every 1 epoch.*check_val_every_n_epoch=2.*set scheduler_step.frequency=2",
        ),
        (["scheduler=step", "scheduler_step.interval=batch"], "interval=batch is invalid"),
        (["scheduler=step", "scheduler_step.frequency=0"], "frequency=0 is invalid"),
        (["scheduler=step", "~scheduler_step.frequency"], "scheduler_step lacks frequency"),
        (
            ["scheduler=step", "scheduler._target_=torch.optim.lr_scheduler.Nope"],
            "scheduler._target_=torch.optim.lr_scheduler.Nope cannot be imported",
        ),
    ],
)
def test_stepping_that_cannot_work_is_refused_before_training(tmp_path, overrides, message):
    run_dir = tmp_path / "run"
    with pytest.raises(ConvlabError, match=message):
        run(overrides=[*TINY, *overrides, f"hydra.run.dir={run_dir}"])
    assert not run_dir.exists()


def test_a_monitored_scheduler_without_validation_may_follow_the_training_loss(tmp_path):
    record = run(
        overrides=[
            *RUN,
            "scheduler=plateau",
            "scheduler.patience=0",
            "scheduler.factor=0.5",
            "scheduler_step.monitor=train/loss",
            "data.val_size=0",
            f"hydra.run.dir={tmp_path / 'run'}",
        ]
    )
    expected = plateau_rates(record.history, "train/loss", "min", 0.5)
    assert logged_rates(tmp_path / "run")[::STEPS] == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["scheduler=cosine", "scheduler_step.interval=epoch", "scheduler_step.frequency=3"],
            r"steps the scheduler 0 times \(every 3 of its 2 epochs\)",
        ),
        (
            ["scheduler=warmup_cosine", "scheduler.warmup_fraction=0.05"],
            "warmup_fraction=0.05 of 6 scheduler steps leaves 0 for the warm-up and 6 for",
        ),
        (
            ["scheduler=cosine", "scheduler_step.interval=epoch", "trainer.max_epochs=-1"],
            r"length \(T_max\) from the run, and trainer.max_epochs=-1 has none; set "
            "trainer.max_epochs,",
        ),
    ],
)
def test_a_schedule_the_run_cannot_hold_is_refused_as_training_starts(run_dir, overrides, message):
    """Its length is the run's, known once Lightning has the data: refused before a step."""
    with pytest.raises(ConvlabError, match=message):
        run(overrides=[*TINY, "trainer.max_epochs=2", *overrides, f"hydra.run.dir={run_dir}"])
    assert not (run_dir / "checkpoints").exists()
