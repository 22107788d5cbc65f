"""The one LightningModule: any image-classification nn.Module plus loss, metrics and optimizer.

Optimizer and scheduler arrive as ``functools.partial`` objects built from ``_partial_`` configs and
are finished in ``configure_optimizers``, the scheduler stepped as its ``scheduler_step`` config
says (``convlab.schedulers``); nothing model-specific lives here.
"""

import inspect
import math
from collections.abc import Callable
from typing import NamedTuple

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.lr_scheduler import ReduceLROnPlateau
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix

from convlab.checkpoint_io import META_KEY, CheckpointMeta
from convlab.errors import ConvlabError
from convlab.schedulers import LENGTH_ARGS, lightning_config


class StageMetrics(NamedTuple):
    loss: MeanMetric
    acc: MetricCollection
    confusion: MulticlassConfusionMatrix | None  # counted for the dashboards; none in training


class Classifier(L.LightningModule):
    """Cross-entropy classifier: ``forward`` takes raw uint8 images, preprocessing included.

    Metrics are torchmetrics objects logged at epoch level, so nothing syncs per step and DDP ranks
    are reduced once, correctly, at the end of each epoch.
    """

    def __init__(
        self,
        net: nn.Module,
        preprocess: nn.Module,
        num_classes: int,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None = None,
        scheduler_step: dict | None = None,
        label_smoothing: float = 0.0,
        channels_last: bool = False,
        checkpoint_meta: dict | None = None,
    ):
        super().__init__()
        self.net, self.preprocess = net, preprocess
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        # how the scheduler is stepped (interval, frequency, monitor, mode); given with a scheduler
        self.scheduler_step = scheduler_step
        self.label_smoothing = label_smoothing
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        # CheckpointMeta's fields but the preprocessing (the resolved config, the model's option
        # name, the class names): plain containers saved in checkpoints to rebuild the run
        self.checkpoint_meta = checkpoint_meta or {}
        if channels_last:
            self.net.to(memory_format=torch.channels_last)
        # one metric object per stage (nn.Module attributes, so they follow the model's device);
        # NaN must propagate into the epoch loss, not be dropped with a warning
        self.train_loss = MeanMetric(nan_strategy="disable")
        self.val_loss = MeanMetric(nan_strategy="disable")
        self.test_loss = MeanMetric(nan_strategy="disable")
        # train/acc is the running accuracy over the epoch's batches, as the book plots it
        accuracy = MetricCollection({"acc": MulticlassAccuracy(num_classes, average="micro")})
        self.train_acc = accuracy.clone(prefix="train/")
        self.val_acc = accuracy.clone(prefix="val/")
        self.test_acc = accuracy.clone(prefix="test/")
        # for the dashboards' pictures, never logged (not a scalar); reset each epoch below
        self.val_confusion = MulticlassConfusionMatrix(num_classes)
        self.test_confusion = MulticlassConfusionMatrix(num_classes)

    def stage_metrics(self, stage: str) -> StageMetrics:
        """The metric objects that one stage ("train", "val" or "test") updates."""
        return {
            "train": StageMetrics(self.train_loss, self.train_acc, None),
            "val": StageMetrics(self.val_loss, self.val_acc, self.val_confusion),
            "test": StageMetrics(self.test_loss, self.test_acc, self.test_confusion),
        }[stage]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images (N, H, W) or (N, C, H, W) -> logits (N, num_classes)."""
        return self.net(self.preprocess(images).contiguous(memory_format=self.memory_format))

    def _step(self, batch, batch_idx: int, stage: str) -> torch.Tensor:
        images, labels = batch
        logits = self(images)
        smoothing = self.label_smoothing if stage == "train" else 0.0
        losses = F.cross_entropy(logits, labels, label_smoothing=smoothing, reduction="none")
        mean_loss, accuracy, confusion = self.stage_metrics(stage)
        # per-sample losses, not a weighted batch mean: MeanMetric ignores `weight` when
        # nan_strategy="disable" (torchmetrics 1.9), and uneven batches would skew the epoch mean
        mean_loss.update(losses.detach())
        # Lightning keeps a logged metric object and computes it at epoch end, so registering it
        # once per epoch is enough; logging every step cost ~1 ms a step (~8% of LeNet's step)
        log = batch_idx == 0
        if log:
            self.log(
                f"{stage}/loss", mean_loss, on_step=False, on_epoch=True, prog_bar=stage != "test"
            )
        accuracy.update(logits.detach(), labels)
        if log:
            self.log_dict(accuracy, on_step=False, on_epoch=True, prog_bar=stage != "train")
        if confusion is not None:
            confusion.update(logits.argmax(1), labels)
        return losses.mean()

    def training_step(self, batch, batch_idx):
        return self._step(batch, batch_idx, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, batch_idx, "val")

    def test_step(self, batch, batch_idx):
        self._step(batch, batch_idx, "test")

    # Lightning resets only the metrics it logs: the confusion matrices are emptied here, so each
    # holds one evaluation epoch (never the sanity check's or the previous epoch's batches)
    def on_validation_epoch_start(self) -> None:
        self.val_confusion.reset()

    def on_test_epoch_start(self) -> None:
        self.test_confusion.reset()

    def _stop_if_diverged(self) -> None:
        """Raise before the epoch's checkpoint is saved (callbacks run after this hook)."""
        loss = self.train_loss
        if loss.update_called and not math.isfinite(value := float(loss.compute())):
            lr = self.trainer.optimizers[0].param_groups[0]["lr"]
            raise ConvlabError(
                f"training diverged: train/loss became {value} in epoch {self.current_epoch} "
                f"(lr {lr:g}); lower optimizer.lr. The last good checkpoint is kept"
            )

    def on_train_epoch_end(self) -> None:
        self._stop_if_diverged()
        self._step_on_metric()

    def _step_on_metric(self) -> None:
        """A scheduler that follows a metric (ReduceLROnPlateau) takes its epoch's step here,
        before the epoch's checkpoint is written (callbacks that monitor run after this hook).
        Lightning would step it after the checkpoint, and a run resumed from that checkpoint would
        never take the step: Lightning skips it on a restart."""
        for config in self.trainer.lr_scheduler_configs:
            if config.reduce_on_plateau and (self.current_epoch + 1) % config.frequency == 0:
                config.scheduler.step(self.trainer.callback_metrics[config.monitor])

    def lr_scheduler_step(self, scheduler, metric) -> None:
        if not isinstance(scheduler, ReduceLROnPlateau):  # that one steps in on_train_epoch_end
            super().lr_scheduler_step(scheduler, metric)

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        accepted = inspect.signature(self.scheduler_factory.func).parameters
        given = self.scheduler_factory.keywords
        unset = [a for a in LENGTH_ARGS if a in accepted and given.get(a) is None]
        calls = self._scheduler_calls(unset[0]) if unset else None
        try:
            scheduler = self.scheduler_factory(optimizer, **dict.fromkeys(unset, calls))
        except ZeroDivisionError:  # OneCycleLR when pct_start x its length is exactly 1
            if calls is None:
                raise
            raise ConvlabError(
                f"the run steps the scheduler {calls} times, too few for its phases; train "
                "longer or use scheduler=none"
            ) from None
        return {
            "optimizer": optimizer,
            "lr_scheduler": lightning_config(scheduler, self.scheduler_step),
        }

    def _scheduler_calls(self, length: str) -> int:
        """How many times the run steps the scheduler, a length its config left null: the run's
        optimizer steps or epochs (scheduler_step.interval), over scheduler_step.frequency."""
        interval, frequency = self.scheduler_step["interval"], self.scheduler_step["frequency"]
        if interval == "step":
            runs = self.trainer.estimated_stepping_batches
            fix = "trainer.max_epochs or trainer.max_steps"
        else:
            runs, fix = self.trainer.max_epochs, "trainer.max_epochs"
        if math.isinf(runs) or runs < 0:
            raise ConvlabError(
                f"the scheduler takes its length ({length}) from the run, and "
                f"trainer.max_epochs={self.trainer.max_epochs} has none; set {fix}, or use "
                "scheduler=none"
            )
        calls = int(runs) // frequency
        if calls < 1:
            raise ConvlabError(
                f"the run steps the scheduler {calls} times (every {frequency} of its {int(runs)} "
                f"{interval}s); lower scheduler_step.frequency or train longer"
            )
        return calls

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        meta = CheckpointMeta(**self.checkpoint_meta, preprocess=self.preprocess.config)
        checkpoint[META_KEY] = meta.to_checkpoint()

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path, *args, **kwargs):
        """Refused in one line: Lightning's would call Classifier(**hparams), and a checkpoint
        holds no hyperparameters to call it with (its optimizer and scheduler are code, which
        data never names). load_classifier rebuilds the network by the safe path."""
        raise ConvlabError(
            f"Classifier.load_from_checkpoint cannot rebuild {checkpoint_path}: use "
            "convlab.inference.load_classifier(path) for its network and preprocessing, or "
            "python train.py train=false ckpt_path=<file> to evaluate it"
        )
