"""Stop a search's unpromising trials early: each validation epoch's metric goes to the trial's
Optuna study, whose pruner may end the job.

Active only in a job of convlab's Optuna sweeper (``hydra/sweeper=convlab_optuna``); anywhere else
it does nothing, and Optuna is never imported. The job finds its trial by its Hydra job number
(the trial's number): in the sweeper's own process (Hydra's basic launcher), or through the
study's storage (joblib, submitit: any launcher, when the storage is a database the jobs reach).
"""

import logging
import math

import lightning as L
from hydra.core.hydra_config import HydraConfig

log = logging.getLogger(__name__)
SWEEPER = "hydra_plugins.convlab_optuna_sweeper.sweeper.ConvlabOptunaSweeper"


class Pruned(Exception):
    """Raised out of ``trainer.fit`` when the pruner stopped the trial: the run records itself as
    pruned (metrics.json ``"status": "pruned"``), never as failed."""

    def __init__(self, epoch: int, monitor: str, value: float):
        super().__init__(f"pruned by the search after epoch {epoch} ({monitor} {value:.4f})")
        self.epoch, self.monitor, self.value = epoch, monitor, value

    def __reduce__(self):  # rebuilt from its fields when a launcher sends it between processes
        return type(self), (self.epoch, self.monitor, self.value)


def search_trial(why_none: str | None = None):
    """The Optuna trial this job runs, or None outside a convlab_optuna sweep and for an
    in-memory study's job in another process (which ``why_none`` then tells the user)."""
    if not HydraConfig.initialized() or HydraConfig.get().sweeper.get("_target_") != SWEEPER:
        return None
    from hydra_plugins.convlab_optuna_sweeper._impl import job_trial

    trial = job_trial(HydraConfig.get())
    if trial is None and why_none:
        log.warning(f"{why_none}: an in-memory study is out of reach of a job in another process")
    return trial


class OptunaPruning(L.Callback):
    """Reports ``monitor`` to the trial after every validation; when the pruner says stop, the
    next epoch does not start (the finished epoch is in the run's history and checkpoint)."""

    def __init__(self, monitor: str = "val/acc"):
        self.monitor = monitor
        self.trial = None
        self.active = False
        self.stop: Pruned | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        self.trial = search_trial("no pruning") if trainer.is_global_zero else None
        self.active = trainer.strategy.broadcast(self.trial is not None)  # rank 0 decides

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """A rerun that continues an interrupted trial's checkpoint (convlab.trial_rerun) reports
        that trial's earlier epochs again: the pruner compares whole curves."""
        if not (self.active and trainer.is_global_zero and trainer.ckpt_path):
            return
        from hydra_plugins.convlab_optuna_sweeper._impl import rerun_reports

        for step, value in sorted(rerun_reports(self.trial).items()):
            if step < trainer.current_epoch:  # the epochs its checkpoint holds
                self.trial.report(value, step=step)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.active or trainer.sanity_checking:
            return
        stop = None
        value = trainer.callback_metrics.get(self.monitor)
        if trainer.is_global_zero and value is not None and math.isfinite(float(value)):
            self.trial.report(float(value), step=trainer.current_epoch)
            if self.trial.should_prune():
                stop = Pruned(trainer.current_epoch, self.monitor, float(value))
        self.stop = trainer.strategy.broadcast(stop)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.stop is None:
            return
        if trainer.is_global_zero:  # how the sweeper tells a pruned job from a failed one
            from hydra_plugins.convlab_optuna_sweeper._impl import PRUNED_AT

            self.trial.set_user_attr(PRUNED_AT, self.stop.epoch)
        raise self.stop
