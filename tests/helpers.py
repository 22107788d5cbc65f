"""Test-only callbacks, importable by runs the tests start (train.py runs from the repo root)."""

import os
import signal

import lightning as L


class KillAt(L.Callback):
    """SIGKILLs the process after a given optimizer step: a crash at a known point, not a race."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


class SignalAt(L.Callback):
    """Sends this process a signal after a given optimizer step, as SLURM or Ctrl+C would."""

    def __init__(self, step: int, signum: int = signal.SIGTERM):
        self.step, self.signum = step, signum

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), self.signum)
