"""Per-epoch metric history, kept in checkpoints so a resumed run's metrics.json is complete."""

import lightning as L
import torch

from convlab.data.batches import epoch_seed


class History(L.Callback):
    """Records the epoch-level train/ and val/ metrics at the end of every training epoch."""

    def __init__(self):
        self.epochs: list[dict[str, float]] = []

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        row = {
            k: float(v)
            for k, v in trainer.callback_metrics.items()
            if k.startswith(("train/", "val/"))
        }
        self.epochs.append({"epoch": trainer.current_epoch, **row})

    def state_dict(self) -> dict:
        return {"epochs": self.epochs}

    def load_state_dict(self, state_dict: dict) -> None:
        self.epochs = list(state_dict["epochs"])


class ReseedEachEpoch(L.Callback):
    """Seeds torch's generators from (seed, epoch) at every epoch start.

    Dropout and augmentation then draw the same numbers whether a run was resumed or not: Lightning
    checkpoints do not store RNG states, and the batch order is already seeded the same way.
    """

    def __init__(self, seed: int):
        self.seed = seed

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        torch.manual_seed(epoch_seed(self.seed, trainer.current_epoch, trainer.global_rank))
