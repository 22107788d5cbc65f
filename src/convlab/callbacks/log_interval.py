"""Step-level logs at least once an epoch, whatever the data's size."""

import lightning as L


class AtLeastOncePerEpoch(L.Callback):
    """``trainer.log_every_n_steps`` lowered to an epoch's steps where an epoch has fewer: on small
    data (a debug limit, the synthetic set) the step-level curves (the learning rate) would stay
    empty, and Lightning warns on every run. A larger epoch keeps the configured interval."""

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        """After the data's setup, before the optimizers' (a schedule's length reads the loader
        and would warn first)."""
        datamodule = trainer.datamodule
        if stage != "fit" or datamodule is None:
            return
        batches, limit = len(datamodule.train_dataloader()), trainer.limit_train_batches
        steps = min(batches, limit) if isinstance(limit, int) else int(batches * (limit or 1.0))
        if 0 < steps < trainer.log_every_n_steps:
            trainer.log_every_n_steps = steps
