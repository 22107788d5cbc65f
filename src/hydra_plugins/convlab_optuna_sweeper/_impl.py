"""The search loop: ask the study for trials, launch them as Hydra jobs, tell it how each ended.

A trial's number is its ticket: the storage numbers a study's trials once, in order, across all
processes and restarts, so a process runs a trial only if its number is below n_trials, and the
job runs as Hydra job number ``trial.number`` (its directory, e.g. ``trial_7``, is never reused).
"""

import logging
import math
import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import optuna
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, Transformer
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus
from hydra.types import HydraContext, TaskFunction
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.storages import RDBStorage, fail_stale_trials
from optuna.trial import Trial, TrialState

log = logging.getLogger(__name__)

# set on a trial by the job's pruning callback (convlab.callbacks.pruning) when it stops the job
PRUNED_AT = "pruned_at_epoch"
# trials that hold a place of n_trials: running here or elsewhere, or ended
COUNTED = (TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
# the trials this process is running, by number: a job the basic launcher runs in this process
# finds its trial here; jobs in other processes load it from the storage
running: dict[int, Trial] = {}


def distribution(override: Override) -> BaseDistribution | None:
    """The Optuna distribution of a sweep override; None for a plain value (a fixed key)."""
    if not override.is_sweep_override():
        return None
    if override.is_interval_sweep():
        value = override.value()
        log_scale = "log" in value.tags
        if isinstance(value.start, int) and isinstance(value.end, int):
            return IntDistribution(value.start, value.end, log=log_scale)
        return FloatDistribution(value.start, value.end, log=log_scale)
    values = list(override.sweep_iterator(transformer=Transformer.encode))
    if override.is_choice_sweep() or (override.is_range_sweep() and override.value().shuffle):
        return CategoricalDistribution(values)
    if override.is_range_sweep():
        step = override.value().step
        if all(isinstance(v, int) for v in values) and step > 0:
            return IntDistribution(values[0], values[-1], step=step)
        if step > 0:
            return FloatDistribution(values[0], values[-1], step=step)
        return CategoricalDistribution(values)
    raise ValueError(f"{override.input_line}: not a search space the sweeper knows")


def search_space(arguments: Sequence[str]) -> tuple[dict[str, BaseDistribution], dict[str, str]]:
    """Distributions and fixed values by key; a later argument for a key replaces an earlier."""
    space: dict[str, BaseDistribution] = {}
    fixed: dict[str, str] = {}
    for override in OverridesParser.create().parse_overrides(list(arguments)):
        key = override.get_key_element()
        space.pop(key, None)
        fixed.pop(key, None)
        if (found := distribution(override)) is not None:
            space[key] = found
        else:
            fixed[key] = override.get_value_element_as_str()
    return space, fixed


def make_storage(url: str | None, heartbeat_interval: int | None = None) -> RDBStorage | None:
    if url is None:
        return None
    # SQLite lets one process write at a time: wait for the others instead of failing
    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else None
    return RDBStorage(url, engine_kwargs=engine, heartbeat_interval=heartbeat_interval)


@contextmanager
def quiet() -> Iterator[None]:
    """Optuna warns that ask() with a heartbeat is not optimize() (the heartbeat here is
    written by the sweeper itself), and that heartbeats and stale-trial checks are
    experimental."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Hh]eartbeat.*")
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        yield


def job_trial(hydra: DictConfig) -> Trial | None:
    """The trial a job runs (its Hydra job number is the trial's number): this process's own, or
    loaded from the study's storage; None for an in-memory study run in another process."""
    number = int(hydra.job.num)
    if number in running:
        return running[number]
    sweeper = hydra.sweeper
    if sweeper.storage is None:
        return None
    study = optuna.load_study(
        study_name=sweeper.study_name,
        storage=make_storage(sweeper.storage),
        sampler=optuna.samplers.RandomSampler(),  # never asked to sample here
        pruner=instantiate(sweeper.pruner),
    )
    trial_id = study._storage.get_trial_id_from_study_id_trial_number(study._study_id, number)
    return Trial(study, trial_id)


class Search:
    def __init__(
        self,
        sampler: DictConfig,
        pruner: DictConfig,
        direction: str,
        study_name: str | None,
        storage: str | None,
        n_trials: int,
        n_jobs: int,
        max_failure_rate: float,
        heartbeat_interval: int,
        params: DictConfig | None,
    ) -> None:
        if not 0.0 <= max_failure_rate <= 1.0:
            raise ValueError(f"max_failure_rate={max_failure_rate}: must be within [0, 1]")
        if storage is not None and study_name is None:
            raise ValueError("a study kept in a storage needs a study_name to be found again")
        self.sampler_conf, self.pruner_conf = sampler, pruner
        self.direction, self.study_name, self.storage = direction, study_name, storage
        self.n_trials, self.n_jobs = n_trials, max(1, n_jobs)
        self.max_failure_rate, self.heartbeat_interval = max_failure_rate, heartbeat_interval
        self.params = params or {}
        self.launched = self.failed = 0
        self.seeded = False

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            config=config, hydra_context=hydra_context, task_function=task_function
        )

    def sweep(self, arguments: list[str]) -> None:
        space, fixed = search_space([f"{k}={v}" for k, v in self.params.items()] + arguments)
        with quiet():
            storage = make_storage(self.storage, self.heartbeat_interval)
        study = optuna.create_study(
            study_name=self.study_name,
            storage=storage,
            sampler=self._sampler(0),
            pruner=instantiate(self.pruner_conf),
            direction=self.direction,
            load_if_exists=True,
        )
        done = len(study.get_trials(deepcopy=False, states=COUNTED))
        log.info(
            f"Study {study.study_name} ({self.storage or 'in memory'}): {done} of "
            f"{self.n_trials} trials started before, {self.direction} over {sorted(space)}"
        )
        while batch := self._ask(study):
            overrides = [self._suggest(trial, space, fixed) for trial in batch]
            self._run(study, batch, overrides)
            if self.failed / self.launched > self.max_failure_rate:
                raise RuntimeError(
                    f"{self.failed} of {self.launched} trials failed, more than "
                    f"max_failure_rate={self.max_failure_rate}; the search stops"
                )
        self._save(study)

    def _sampler(self, offset: int) -> optuna.samplers.BaseSampler:
        seed = self.sampler_conf.get("seed")
        return instantiate(
            self.sampler_conf, **({"seed": seed + offset} if seed is not None else {})
        )

    def _ask(self, study: optuna.Study) -> list[Trial]:
        """Up to n_jobs trials whose numbers are below n_trials. Another process may take the
        last place between the count and the ask: a trial numbered beyond n_trials goes back to
        WAITING, where the next continuation of the study takes it first."""
        batch: list[Trial] = []
        with quiet():
            fail_stale_trials(study)  # left RUNNING by a killed process: they count as failed
            while len(batch) < self.n_jobs:
                if len(study.get_trials(deepcopy=False, states=COUNTED)) >= self.n_trials:
                    break
                trial = study.ask()
                if trial.number >= self.n_trials:
                    trial.storage.set_trial_state_values(trial._trial_id, TrialState.WAITING)
                    break
                if not self.seeded:  # reseeded by this process's first trial: see config.py
                    study.sampler, self.seeded = self._sampler(trial.number), True
                batch.append(trial)
        return batch

    @staticmethod
    def _suggest(
        trial: Trial, space: dict[str, BaseDistribution], fixed: dict[str, str]
    ) -> list[str]:
        values = {name: trial._suggest(name, dist) for name, dist in space.items()}
        return [f"{k}={v}" for k, v in values.items()] + [f"{k}={v}" for k, v in fixed.items()]

    def _run(self, study: optuna.Study, batch: list[Trial], overrides: list[list[str]]) -> None:
        """Launch the batch and tell each trial's end; a trial left unended (a signal stopped
        the sweep, the launcher broke) is told FAIL, so no RUNNING trial outlives this process."""
        stop = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(batch, stop), daemon=True)
        running.update({trial.number: trial for trial in batch})
        beat.start()
        try:
            for trial, ret in zip(batch, self._launch(batch, overrides), strict=True):
                self._tell(study, trial, ret)
        finally:
            stop.set()
            beat.join()
            for trial in batch:
                running.pop(trial.number, None)
                if trial.storage.get_trial(trial._trial_id).state == TrialState.RUNNING:
                    study.tell(trial, state=TrialState.FAIL)

    def _heartbeat(self, batch: list[Trial], stop: threading.Event) -> None:
        storage = batch[0].storage
        if not isinstance(storage, RDBStorage):
            return
        while True:
            for trial in batch:
                storage.record_heartbeat(trial._trial_id)
            if stop.wait(self.heartbeat_interval):
                return

    def _launch(self, batch: list[Trial], overrides: list[list[str]]) -> list[JobReturn]:
        """Jobs numbered by their trials: consecutive numbers go to the launcher together
        (another process sharing the study may have taken the numbers in between)."""
        returns: list[JobReturn] = []
        start = 0
        for end in range(1, len(batch) + 1):
            if end == len(batch) or batch[end].number != batch[end - 1].number + 1:
                returns += self.launcher.launch(
                    overrides[start:end], initial_job_idx=batch[start].number
                )
                start = end
        return returns

    def _tell(self, study: optuna.Study, trial: Trial, ret: JobReturn) -> None:
        self.launched += 1
        if PRUNED_AT in trial.storage.get_trial(trial._trial_id).user_attrs:
            study.tell(trial, state=TrialState.PRUNED)
            log.info(f"Trial {trial.number} pruned")
            return
        if ret.status == JobStatus.FAILED:
            why = f"{type(ret._return_value).__name__}: {ret._return_value}"
        else:
            value: Any = ret.return_value
            if value is None:
                why = "the job failed (its failure.json says why)"
            elif isinstance(value, int | float) and math.isfinite(value):
                study.tell(trial, float(value))
                log.info(f"Trial {trial.number}: {float(value)}")
                return
            else:
                why = f"the job returned {value!r}, not a finite number"
        self.failed += 1
        study.tell(trial, state=TrialState.FAIL)
        log.warning(f"Trial {trial.number} failed: {why}")

    def _save(self, study: optuna.Study) -> None:
        """optimization_results.yaml in the sweep directory: the study's best trial so far."""
        trials = study.get_trials(deepcopy=False)
        counts = {s.name.lower(): sum(t.state == s for t in trials) for s in TrialState}
        results: dict[str, Any] = {
            "name": "convlab_optuna",
            "study_name": study.study_name,
            "storage": self.storage,
            "trials": {k: v for k, v in counts.items() if v},
        }
        try:
            best = study.best_trial
            results.update(best_trial=best.number, best_params=best.params, best_value=best.value)
            log.info(f"Best trial {best.number}: {best.value} with {best.params}")
        except ValueError:  # no trial completed
            log.warning("No trial of the study completed")
        OmegaConf.save(
            OmegaConf.create(results), f"{self.config.hydra.sweep.dir}/optimization_results.yaml"
        )
