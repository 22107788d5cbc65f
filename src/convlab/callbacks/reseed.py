"""Per-epoch seeding, so that a resumed run draws the same random numbers as an unbroken one."""

import lightning as L
import torch

from convlab.data.batches import epoch_seed


class ReseedEachEpoch(L.Callback):
    """Seeds torch's generators from (seed, epoch) at every epoch start.

    Dropout and augmentation then draw the same numbers whether a run was resumed or not: Lightning
    checkpoints do not store RNG states, and the batch order is already seeded the same way.
    """

    def __init__(self, seed: int):
        self.seed = seed

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        torch.manual_seed(epoch_seed(self.seed, trainer.current_epoch, trainer.global_rank))
