"""The sweeper's config (``hydra/sweeper=convlab_optuna``) and its sampler and pruner options
(``hydra/sweeper/sampler=tpe|random``, ``hydra/sweeper/pruner=median|threshold|nop``)."""

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore

SWEEPER = "hydra_plugins.convlab_optuna_sweeper.sweeper.ConvlabOptunaSweeper"


@dataclass
class TPESamplerConf:
    _target_: str = "optuna.samplers.TPESampler"
    # a process's sampler is seeded with seed + the number of its first trial: one process
    # repeats its search exactly, processes sharing a study do not draw the same values
    seed: int | None = None
    n_startup_trials: int = 10  # random trials before TPE models the results
    multivariate: bool = False


@dataclass
class RandomSamplerConf:
    _target_: str = "optuna.samplers.RandomSampler"
    seed: int | None = None


@dataclass
class MedianPrunerConf:
    """Stops a trial whose value at an epoch is below the median of earlier trials there."""

    _target_: str = "optuna.pruners.MedianPruner"
    n_startup_trials: int = 5  # trials that always run to the end, to have a median
    n_warmup_steps: int = 2  # epochs (counted from 0) before a trial may be stopped
    interval_steps: int = 1


@dataclass
class ThresholdPrunerConf:
    """Stops a trial whose value leaves [lower, upper]."""

    _target_: str = "optuna.pruners.ThresholdPruner"
    lower: float | None = None
    upper: float | None = None
    n_warmup_steps: int = 0


@dataclass
class NopPrunerConf:
    """Never stops a trial."""

    _target_: str = "optuna.pruners.NopPruner"


@dataclass
class ConvlabOptunaSweeperConf:
    _target_: str = SWEEPER
    _recursive_: bool = False  # the sampler and pruner are built by the search, when it starts
    defaults: list[Any] = field(
        default_factory=lambda: ["_self_", {"sampler": "tpe"}, {"pruner": "median"}]
    )
    sampler: Any = None
    pruner: Any = None
    direction: str = "minimize"  # or maximize
    # what the task function returns (train.py's main: val/acc); recorded in a new study, and a
    # study recorded with another metric is refused, as is one of the other direction
    metric: str | None = None
    study_name: str | None = None  # needed to continue or share a study kept in a storage
    # null: in memory, gone at the end; an SQLAlchemy URL (sqlite:///search.db,
    # postgresql://...) keeps the study: the same command continues it, other processes share it
    storage: str | None = None
    # the study's total: a continued or shared study runs only what is left; a trial that never
    # ended (interrupted, killed) is rerun with its parameters, and only the rerun counts
    n_trials: int = 20
    n_jobs: int = 1  # trials asked per batch, launched together (in parallel by e.g. joblib)
    # the search stops once more than this fraction of this process's trials failed
    max_failure_rate: float = 1.0
    # with a storage, a trial left RUNNING by a killed process is marked FAIL (and rerun) once its
    # heartbeat (written every heartbeat_interval seconds while it runs) is twice this old
    heartbeat_interval: int = 60
    # the search space, in Hydra's override syntax: choice(a, b), interval(0, 1),
    # tag(log, interval(1e-4, 1e-1)), range(1, 10); a plain value fixes a key
    params: dict[str, str] | None = None


_store = ConfigStore.instance()
_store.store(group="hydra/sweeper", name="convlab_optuna", node=ConvlabOptunaSweeperConf)
for _name, _node in (("tpe", TPESamplerConf), ("random", RandomSamplerConf)):
    _store.store(group="hydra/sweeper/sampler", name=_name, node=_node)
for _name, _node in (
    ("median", MedianPrunerConf),
    ("threshold", ThresholdPrunerConf),
    ("nop", NopPrunerConf),
):
    _store.store(group="hydra/sweeper/pruner", name=_name, node=_node)
