"""The search loop: ask the study for trials, launch them as Hydra jobs, tell it how each ended.

A trial's number is its ticket: the storage numbers a study's trials once, in order, across all
processes and restarts, so a process runs a trial only if fewer than n_trials places are held by
the trials numbered below it, and the job runs as Hydra job number ``trial.number`` (its
directory, e.g. ``trial_7``, is never reused). A trial that never ended (a signal stopped it, or
its process was killed) is retried: a new trial with its parameters takes its place, and its job
continues the stopped trial's training from its last checkpoint (convlab.trial_rerun).
"""

import inspect
import logging
import math
import shlex
import sys
import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

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
    check_distribution_compatibility,
)
from optuna.storages import RDBStorage, fail_stale_trials
from optuna.storages._heartbeat import is_heartbeat_enabled
from optuna.trial import FrozenTrial, Trial, TrialState

from convlab.rundir import paste_override
from convlab.signals import Interrupted

log = logging.getLogger(__name__)

# set on a trial by the job's pruning callback (convlab.callbacks.pruning) when it stops the job
PRUNED_AT = "pruned_at_epoch"
# set on a trial that reruns an unfinished one: the number of the trial whose place it takes
RETRY_OF = "retry_of"
# set on a study when it is created: the name of what its trials' values are (hydra.sweeper.metric)
METRIC = "metric"
# trials that hold a place of n_trials: running here or elsewhere, or ended (less those retried)
COUNTED = (TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
# the study that continues is the one the sweep's command names: these are always spelled out
STUDY_KEYS = ("hydra.sweeper.storage", "hydra.sweeper.study_name", "hydra.sweep.dir")
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


def refuse(message: str) -> NoReturn:
    """One line and exit 1: Hydra would print an exception raised by a sweeper with a traceback."""
    sys.exit(f"convlab: error: {message}")


def retry(study: optuna.Study, trial: FrozenTrial) -> None:
    """Queue a rerun of a trial that never ended (interrupted, or stale: its process was killed):
    the next trial asked takes its parameters and its place of n_trials."""
    study.enqueue_trial(trial.params, user_attrs={RETRY_OF: trial.number})


def rerun_of(trial: Trial) -> int | None:
    """The number of the trial that ``trial`` reruns, or None: the storage's value, a count."""
    old = trial.user_attrs.get(RETRY_OF)
    if isinstance(old, int) and not isinstance(old, bool) and 0 <= old < trial.number:
        return old
    return None


def rerun_reports(trial: Trial) -> dict[int, float]:
    """What the trial that ``trial`` reruns reported, by step (epoch); empty for no rerun."""
    old = rerun_of(trial)
    if old is None:
        return {}
    storage, study_id = trial.storage, trial.study._study_id
    found = storage.get_trial_id_from_study_id_trial_number(study_id, old)
    return storage.get_trial(found).intermediate_values


def holders(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    """The trials holding a place of n_trials: running or ended, less those a retry reruns."""
    retried = {t.user_attrs[RETRY_OF] for t in trials if RETRY_OF in t.user_attrs}
    return [t for t in trials if t.state in COUNTED and t.number not in retried]


# called by fail_stale_trials for each trial it fails; Optuna 4.9 renamed the argument
_STALE_CALLBACK = next(
    name
    for name in ("heartbeat_stale_trial_callback", "failed_trial_callback")
    if name in inspect.signature(RDBStorage).parameters
)


def make_storage(url: str | None, heartbeat_interval: int | None = None) -> RDBStorage | None:
    if url is None:
        return None
    # SQLite lets one process write at a time: wait for the others instead of failing
    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else None
    return RDBStorage(
        url,
        engine_kwargs=engine,
        heartbeat_interval=heartbeat_interval,
        **{_STALE_CALLBACK: retry},
    )


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
        metric: str | None,
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
        self.direction, self.metric = direction, metric
        self.study_name, self.storage = study_name, storage
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
        self._check(study, space)
        if self.metric and METRIC not in study.user_attrs:
            study.set_user_attr(METRIC, self.metric)
        done = len(holders(study.get_trials(deepcopy=False)))
        log.info(
            f"Study {study.study_name} ({self.storage or 'in memory'}): {done} of "
            f"{self.n_trials} trials started before, {self.direction} "
            f"{self.metric or 'the value'} over {sorted(space)}"
        )
        while batch := self._ask(study):
            self._run(study, batch, space, fixed)
            if self.failed / self.launched > self.max_failure_rate:
                raise RuntimeError(
                    f"{self.failed} of {self.launched} trials failed, more than "
                    f"max_failure_rate={self.max_failure_rate}; the search stops"
                )
        self._save(study)

    def _check(self, study: optuna.Study, space: dict[str, BaseDistribution]) -> None:
        """Refuse, before any trial is asked, a study this search would misread: one that ranks
        its values the other way (its best trial would be reported as the worst), of another
        metric, or whose trials drew a parameter from a distribution Optuna cannot continue."""
        name = f"study {study.study_name!r}"
        directions = [d.name.lower() for d in study.directions]
        if directions != [self.direction]:
            refuse(
                f"the {name} was created to {' and '.join(directions)}, and "
                f"hydra.sweeper.direction={self.direction} would name its worst trial best; "
                f"set hydra.sweeper.direction={directions[0]} or another hydra.sweeper.study_name"
            )
        recorded = study.user_attrs.get(METRIC)
        if self.metric and recorded and recorded != self.metric:
            refuse(
                f"the {name} ranks its trials by {recorded}, and this search returns "
                f"{self.metric} (hydra.sweeper.metric); set hydra.sweeper.metric={recorded} or "
                "another hydra.sweeper.study_name"
            )
        earlier: dict[str, tuple[int, BaseDistribution]] = {}
        for trial in study.get_trials(deepcopy=False):
            for key, drawn in trial.distributions.items():
                earlier.setdefault(key, (trial.number, drawn))
        for key, new in space.items():
            if key not in earlier:
                continue
            number, old = earlier[key]
            try:
                check_distribution_compatibility(old, new)
            except ValueError as e:
                refuse(
                    f"{key} is searched over {new}, but trial {number} of the {name} drew it from "
                    f"{old} ({str(e).rstrip('.')}); restore its search space or choose another "
                    "hydra.sweeper.study_name"
                )

    def _sampler(self, offset: int) -> optuna.samplers.BaseSampler:
        seed = self.sampler_conf.get("seed")
        return instantiate(
            self.sampler_conf, **({"seed": seed + offset} if seed is not None else {})
        )

    def _ask(self, study: optuna.Study) -> list[Trial]:
        """Up to n_jobs trials with a place of n_trials; queued retries come first. Another
        process may take the last place between the count and the ask: a trial whose lower
        numbered ones hold every place goes back to WAITING, where the next ask takes it first."""
        batch: list[Trial] = []
        try:
            with quiet():
                fail_stale_trials(study)  # left RUNNING by a killed process: failed, and retried
                while len(batch) < self.n_jobs:
                    if len(holders(study.get_trials(deepcopy=False))) >= self.n_trials:
                        break
                    batch.append(trial := study.ask())
                    before = holders(study.get_trials(deepcopy=False))
                    if sum(t.number < trial.number for t in before) >= self.n_trials:
                        trial.storage.set_trial_state_values(trial._trial_id, TrialState.WAITING)
                        batch.pop()
                        break
                    if not self.seeded:  # reseeded by this process's first trial: see config.py
                        study.sampler, self.seeded = self._sampler(trial.number), True
        except BaseException:  # a stop signal while asking
            self._end_unended(study, batch)
            raise
        return batch

    @staticmethod
    def _suggest(
        study: optuna.Study,
        trial: Trial,
        space: dict[str, BaseDistribution],
        fixed: dict[str, str],
    ) -> list[str]:
        values = {}
        for name, dist in space.items():
            try:
                values[name] = trial._suggest(name, dist)
            except ValueError as e:  # a value enqueued into the study outside the search space
                study.tell(trial, state=TrialState.FAIL)
                refuse(
                    f"trial {trial.number} of the study {study.study_name!r} cannot take its "
                    f"queued {name} ({str(e).rstrip('.')}); it is recorded as failed, and the "
                    "same command goes on with the next trial"
                )
        return [f"{k}={v}" for k, v in values.items()] + [f"{k}={v}" for k, v in fixed.items()]

    def _run(
        self,
        study: optuna.Study,
        batch: list[Trial],
        space: dict[str, BaseDistribution],
        fixed: dict[str, str],
    ) -> None:
        """Launch the batch and tell each trial's end; a trial left unended (a signal stopped
        the sweep, the launcher broke) is rerun by the study's next command."""
        stop = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(batch, stop), daemon=True)
        running.update({trial.number: trial for trial in batch})
        beat.start()
        try:
            overrides = [self._suggest(study, trial, space, fixed) for trial in batch]
            for trial, ret in zip(batch, self._launch(batch, overrides), strict=True):
                self._tell(study, trial, ret)
        except Interrupted as e:  # train.py prints how to continue: the study's, not the job's
            if self.storage is not None:
                e.study_command = self._command()
            raise
        finally:
            stop.set()
            beat.join()
            self._end_unended(study, batch)

    @staticmethod
    def _end_unended(study: optuna.Study, trials: list[Trial]) -> None:
        """Each trial still RUNNING is told FAIL and its rerun queued: no RUNNING trial outlives
        this process, and no place of n_trials is lost."""
        for trial in trials:
            running.pop(trial.number, None)
            frozen = trial.storage.get_trial(trial._trial_id)
            if frozen.state == TrialState.RUNNING:
                study.tell(trial, state=TrialState.FAIL)
                retry(study, frozen)

    def _command(self) -> str:
        """The command that continues the study: the sweep's own, with its storage, study name
        and sweep directory spelled out (a search config or its defaults may have set them)."""
        hydra = self.config.hydra
        # unresolved: an override may hold an interpolation that only a job resolves
        given = OmegaConf.to_container(hydra.overrides, resolve=False)
        given = [*given["task"], *given["hydra"]]
        kept = [o for o in given if o.split("=", 1)[0].lstrip("+~") not in STUDY_KEYS]
        values = (self.storage, self.study_name, Path(hydra.sweep.dir).resolve())
        spelled = [paste_override(k, v) for k, v in zip(STUDY_KEYS, values, strict=True)]
        # the others as typed: Hydra parses them again the same way
        return " ".join(["python train.py -m", *map(shlex.quote, kept), *spelled])

    def _heartbeat(self, batch: list[Trial], stop: threading.Event) -> None:
        """While the batch runs: a trial whose heartbeat stops (its process was killed) is
        failed and retried by the next process that asks the study for a trial."""
        storage = batch[0].storage
        if not is_heartbeat_enabled(storage):
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
            # reruns of trials that never ended (interrupted, killed; counted above as failed)
            "retried": sum(RETRY_OF in t.user_attrs for t in trials),
        }
        try:
            best = study.best_trial
            results.update(best_trial=best.number, best_params=best.params, best_value=best.value)
            log.info(f"Best trial {best.number}: {best.value} with {best.params}")
        except ValueError:  # no trial completed
            log.warning("No trial of the study completed")
        if counts["running"]:
            log.info(
                f"{counts['running']} trial(s) still running: in another process, or in one killed "
                "less than two heartbeat intervals ago, which the next command fails and reruns"
            )
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)  # not there when this command ran no trial
        OmegaConf.save(OmegaConf.create(results), sweep_dir / "optimization_results.yaml")
