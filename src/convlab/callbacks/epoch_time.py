"""The run's length, predicted from its first steps: known before a long run is a minute old."""

import math
import time

import lightning as L
from lightning.pytorch.utilities import rank_zero_only

from convlab.runlog import say


class EpochTimeEstimate(L.Callback):
    """Times ``timed_steps`` training steps after ``warmup_steps`` (allocation, oneDNN's first
    calls) and prints the seconds per training epoch and for the run's remaining epochs.

    Validation and testing are not in the figure: their share differs too much between recipes
    (none in the book's, 5,000 images a cheap forward each in the default one) to guess from steps.
    """

    def __init__(self, warmup_steps: int = 30, timed_steps: int = 30):
        self.first, self.last = warmup_steps, warmup_steps + timed_steps
        self.started: float | None = None
        self.message: str | None = None  # kept for the tests and for callers that print it again

    @rank_zero_only
    def on_train_batch_start(self, trainer: L.Trainer, pl_module, batch, batch_idx: int) -> None:
        if self.message is not None or batch_idx not in (self.first, self.last):
            return
        if batch_idx == self.first:
            self.started = time.perf_counter()
            return
        if self.started is None:  # resumed mid-epoch past the first stamp: next epoch, or never
            return
        step_s = (time.perf_counter() - self.started) / (self.last - self.first)
        self.message = f"{step_s * 1000:.1f} ms a step"
        epoch_s = step_s * trainer.num_training_batches  # inf for a loader without a length
        if math.isfinite(epoch_s):
            self.message += f": {_duration(epoch_s)} a training epoch"
        if math.isfinite(epoch_s) and trainer.max_epochs and trainer.max_epochs > 0:
            remaining = trainer.max_epochs - trainer.current_epoch
            self.message += f", ~{_duration(epoch_s * remaining)} for the {remaining} left"
        self.message += " (validation and test not included)"
        bar = trainer.progress_bar_callback
        say(self.message, show=print if bar is None else bar.print)  # above a bar, intact

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module) -> None:
        self.started = None  # stamps never span two epochs


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.1f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
