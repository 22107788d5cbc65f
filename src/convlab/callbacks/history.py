"""Per-epoch metric history, kept in checkpoints so a resumed run's metrics.json is complete."""

import lightning as L

from convlab.callbacks.book_figure import HELD_OUT
from convlab.schedulers import LEARNING_RATE


class History(L.Callback):
    """Records the epoch-level train/, val/ and held_out/ (the book's per-epoch test) metrics at
    the end of every training epoch; not the learning rate, a per-step chart."""

    def __init__(self):
        self.epochs: list[dict[str, float]] = []

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        row = {
            k: float(v)
            for k, v in trainer.callback_metrics.items()
            if k.startswith(("train/", "val/", f"{HELD_OUT}/")) and k != LEARNING_RATE
        }
        self.epochs.append({"epoch": trainer.current_epoch, **row})

    def state_dict(self) -> dict:
        return {"epochs": self.epochs}

    def load_state_dict(self, state_dict: dict) -> None:
        self.epochs = list(state_dict["epochs"])
