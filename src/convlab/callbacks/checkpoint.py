"""Checkpoints that leave a resumable state at every epoch's end, whatever stops the run."""

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint as LightningModelCheckpoint

from convlab.signals import held


class ModelCheckpoint(LightningModelCheckpoint):
    """Lightning's, with last.ckpt after every epoch and each epoch's files written as one.

    Lightning writes last.ckpt only in an epoch that saved a top-k checkpoint, so a run stopped
    after an epoch whose val/acc did not improve resumed from an older epoch and trained the rest
    again. Here last.ckpt follows every epoch. An epoch's new best checkpoint and last.ckpt (which
    names it) are written as one: a stop signal waits until both are written, a failed write
    (a full disk) removes the other's new file, and the best file they replace is removed only
    once both are written, so the folder always holds one complete epoch.

    The name stays Lightning's: a checkpoint keys this callback's state by it
    (``ModelCheckpoint{...}``), which resuming restores and ``convlab.restored_state`` checks.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._epoch_files: tuple[list[str], list[str]] | None = None  # (written, replaced)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        written, replaced = self._epoch_files = [], []
        try:
            with held():
                try:
                    super().on_train_epoch_end(trainer, pl_module)
                    if self.save_last and not self._should_skip_saving_checkpoint(trainer):
                        self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
                except BaseException:
                    if self.last_model_path not in written:  # the epoch is incomplete: undone
                        for path in written:
                            super()._remove_checkpoint(trainer, path)
                    raise
                for path in replaced:
                    super()._remove_checkpoint(trainer, path)
        finally:
            self._epoch_files = None

    def _save_checkpoint(self, trainer: L.Trainer, filepath: str) -> None:
        super()._save_checkpoint(trainer, filepath)
        if self._epoch_files is not None:
            self._epoch_files[0].append(filepath)

    def _remove_checkpoint(self, trainer: L.Trainer, filepath: str) -> None:
        if self._epoch_files is None:
            super()._remove_checkpoint(trainer, filepath)
        else:
            self._epoch_files[1].append(filepath)
