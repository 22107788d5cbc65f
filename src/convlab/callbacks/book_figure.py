"""The book's training figure: train loss, held-out loss and held-out accuracy per epoch.

The book evaluates its test set after every epoch, because its recipes keep no validation split.
convlab does the same where there is none (``data.val_size=0``: the ``_book`` recipes), and
nothing is selected on those figures: the test of the final weights is still the one that counts.
Everywhere else the held-out set is the validation split, which Lightning evaluates anyway.
"""

from pathlib import Path
from typing import TYPE_CHECKING

import lightning as L
import torch
import torch.nn.functional as F

from convlab.safe_files import write_with

if TYPE_CHECKING:
    from matplotlib.figure import Figure

HELD_OUT = "held_out"  # the per-epoch test metrics' prefix, where the test set is the held-out set
FIGURE = "book_figure.png"


class BookFigure(L.Callback):
    """Evaluates the test set each epoch when there is no validation split, and draws the book's
    figure from the run's per-epoch history into the run directory when fitting ends (rank 0).

    The directory is the run's claimed one, given by ``convlab.train`` (``out_dir``), never a
    config value: a config key would be a place to write that a run directory could choose."""

    def __init__(self):
        self.out_dir: Path | None = None

    @staticmethod
    def on_test_set(trainer: L.Trainer) -> bool:
        return not trainer.datamodule.val_size

    @torch.no_grad()
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.on_test_set(trainer):
            return
        was_training = pl_module.training
        pl_module.eval()
        # summed on the device and read once: an .item() per batch would wait for the GPU each time
        totals, seen = torch.zeros(2, device=pl_module.device), 0  # (loss sum, correct)
        for images, labels in trainer.datamodule.test_dataloader():
            images, labels = images.to(pl_module.device), labels.to(pl_module.device)
            logits = pl_module(images)
            totals[0] += F.cross_entropy(logits.float(), labels, reduction="sum")
            totals[1] += (logits.argmax(1) == labels).sum()
            seen += len(labels)
        pl_module.train(was_training)
        loss_sum, correct = totals.tolist()
        pl_module.log(f"{HELD_OUT}/loss", loss_sum / seen, on_epoch=True)
        pl_module.log(f"{HELD_OUT}/acc", correct / seen, on_epoch=True)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        from convlab.callbacks.history import History

        history = next((c for c in trainer.callbacks if isinstance(c, History)), None)
        if not trainer.is_global_zero or self.out_dir is None or history is None:
            return
        if not history.epochs:
            return
        held_out = HELD_OUT if self.on_test_set(trainer) else "val"
        figure = draw(history.epochs, held_out)
        write_with(self.out_dir, FIGURE, lambda f: figure.savefig(f, format="png", dpi=100))


def draw(epochs: list[dict], held_out: str) -> "Figure":
    """d2l's ProgressBoard at the end of training: one axis, epochs along x, a legend."""
    # imported here, once a run draws: every process that records history imports this module
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    shown = {
        "train loss": "train/loss",
        f"{'test' if held_out == HELD_OUT else 'val'} loss": f"{held_out}/loss",
        f"{'test' if held_out == HELD_OUT else 'val'} acc": f"{held_out}/acc",
    }
    figure = Figure(figsize=(4.5, 3.2), layout="constrained")
    FigureCanvasAgg(figure)  # render with Agg whatever matplotlib's default backend is
    ax = figure.subplots()
    for (label, key), style in zip(shown.items(), ("-", "--", "-."), strict=True):
        points = [(row["epoch"] + 1, row[key]) for row in epochs if key in row]
        if points:
            ax.plot(*zip(*points, strict=True), style, label=label)
    ax.set_xlabel("epoch")
    ax.set_xlim(0.5, max(row["epoch"] for row in epochs) + 1.5)
    ax.grid(alpha=0.3)
    ax.legend()
    return figure
