"""A search that stops early (a signal, kill -9) loses no trial: the trial that never ended is
rerun with its parameters when the study continues; a study this search would misread (another
direction or metric, a changed search space, a queued value outside it) is refused in one line
before it gets a RUNNING trial."""

import hashlib
import shlex
import signal
import time
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from convlab.record import RunRecord
from tests.helpers import TINY, cli, one_line_error
from tests.test_optuna import SEARCH, db, trial_dirs, trials

optuna = pytest.importorskip("optuna")
State = optuna.trial.TrialState


def continue_command(stderr: str) -> list[str]:
    """The arguments of the command an interrupted search printed, as a shell splits them."""
    (line,) = [line for line in stderr.splitlines() if "; continue with: " in line]
    command = shlex.split(line.split("; continue with: ", 1)[1])
    assert command[:2] == ["python", "train.py"]
    return command[2:]


@pytest.mark.slow
def test_an_interrupted_trial_is_rerun_by_the_command_the_search_prints(tmp_path):
    url, sweep = db(tmp_path), tmp_path / "sweep"
    stopped = cli(
        *SEARCH,
        f"hydra.sweeper.storage={url}",
        f"hydra.sweep.dir={sweep}",
        "hydra.sweeper.n_trials=3",
        # SIGTERM after step ${hydra:job.num}: never in trial 0 (its first step is 1), in trial 1
        "+callbacks.stop._target_=tests.helpers.SignalAt",
        "+callbacks.stop.step=${hydra:job.num}",
    )
    assert stopped.returncode == 128 + signal.SIGTERM, stopped.stderr[-3000:]
    assert [t.state for t in trials(url)] == [State.COMPLETE, State.FAIL, State.WAITING]
    command = continue_command(stopped.stderr)
    assert f"hydra.sweeper.storage='{url}'" in command and "hydra.sweeper.study_name=s" in command

    again = cli(*command, "~callbacks.stop")
    assert again.returncode == 0, again.stderr[-3000:]
    study = trials(url)
    assert [t.state for t in study] == [State.COMPLETE, State.FAIL, State.COMPLETE, State.COMPLETE]
    interrupted, rerun = study[1], study[2]
    assert rerun.user_attrs["retry_of"] == 1 and rerun.params == interrupted.params
    best = max((t for t in study if t.state == State.COMPLETE), key=lambda t: t.value)
    results = OmegaConf.load(sweep / "optimization_results.yaml")
    assert (results.best_trial, results.best_value) == (best.number, best.value)
    assert results.trials == {"complete": 3, "fail": 1} and results.retried == 1
    record = RunRecord.read(sweep / f"trial_{best.number}" / "metrics.json")
    assert record.metrics["val/acc"] == pytest.approx(best.value)


def files(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
        for p in folder.rglob("*")
        if p.is_file()
    }


@pytest.mark.slow
def test_a_rerun_continues_the_interrupted_trials_checkpoint_to_an_uninterrupted_trials_numbers(
    tmp_path,
):
    url, sweep = db(tmp_path), tmp_path / "sweep"
    stopped = cli(
        *SEARCH,
        "trainer.max_epochs=2",
        f"hydra.sweeper.storage={url}",
        f"hydra.sweep.dir={sweep}",
        "hydra.sweeper.n_trials=1",
        "+callbacks.stop._target_=tests.helpers.SignalAt",
        "+callbacks.stop.step=4",  # in the second epoch: the first one's checkpoint is written
    )
    assert stopped.returncode == 128 + signal.SIGTERM, stopped.stderr[-3000:]
    before = files(sweep / "trial_0")

    again = cli(*continue_command(stopped.stderr))
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"continues the interrupted trial in {sweep / 'trial_0'}" in again.stdout
    interrupted, rerun = trials(url)
    assert (interrupted.state, rerun.state) == (State.FAIL, State.COMPLETE)
    # the pruner sees the whole curve: the interrupted trial's first epoch, then the rerun's
    assert sorted(rerun.intermediate_values) == [0, 1]
    assert rerun.intermediate_values[0] == interrupted.intermediate_values[0]

    # the trial as if never stopped: one run of its parameters
    params = [f"{key}={value}" for key, value in rerun.params.items()]
    single = cli(
        *TINY, "model=lenet", "trainer.max_epochs=2", *params, f"hydra.run.dir={tmp_path}/one"
    )
    assert single.returncode == 0, single.stderr[-3000:]
    continued = RunRecord.read(sweep / "trial_1" / "metrics.json")
    uninterrupted = RunRecord.read(tmp_path / "one" / "metrics.json")
    assert continued.history == uninterrupted.history
    assert continued.metrics == uninterrupted.metrics
    assert rerun.value == uninterrupted.metrics["val/acc"]
    assert files(sweep / "trial_0") == before  # the interrupted trial's files were only read


@pytest.mark.slow
def test_a_killed_process_trial_fails_after_its_grace_period_and_is_rerun(tmp_path):
    url, sweep = db(tmp_path), tmp_path / "sweep"
    common = [
        *SEARCH,
        f"hydra.sweeper.storage={url}",
        f"hydra.sweep.dir={sweep}",
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.heartbeat_interval=1",
    ]
    killed = cli(*common, "+callbacks.kill._target_=tests.helpers.KillAt", "+callbacks.kill.step=1")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert [t.state for t in trials(url)] == [State.RUNNING]
    time.sleep(2)  # the grace period: two heartbeat intervals since the last heartbeat

    again = cli(*common)
    assert again.returncode == 0, again.stderr[-3000:]
    study = trials(url)
    assert [t.state for t in study] == [State.FAIL, State.COMPLETE, State.COMPLETE]
    assert study[1].user_attrs["retry_of"] == 0 and study[1].params == study[0].params
    assert trial_dirs(sweep) == ["trial_0", "trial_1", "trial_2"]


def refused(tmp_path) -> tuple[str, list]:
    """A search on the study that the test set up: its one error line and the study's
    trials after it; the sweep directory was never created."""
    url, sweep = db(tmp_path), tmp_path / "sweep"
    out = cli(
        *SEARCH,
        f"hydra.sweeper.storage={url}",
        f"hydra.sweep.dir={sweep}",
        "hydra.sweeper.n_trials=1",
    )
    line = one_line_error(out)
    assert not sweep.exists()
    return line, trials(url)


@pytest.mark.parametrize(
    ("direction", "metric", "named"),
    [("minimize", None, "hydra.sweeper.direction"), ("maximize", "loss", "hydra.sweeper.metric")],
)
def test_a_study_of_another_direction_or_metric_is_refused(tmp_path, direction, metric, named):
    study = optuna.create_study(study_name="s", storage=db(tmp_path), direction=direction)
    if metric:
        study.set_user_attr("metric", metric)
    line, after = refused(tmp_path)
    assert named in line
    assert after == []


def test_a_changed_search_space_is_refused_before_any_trial(tmp_path):
    from optuna.distributions import CategoricalDistribution

    study = optuna.create_study(study_name="s", storage=db(tmp_path), direction="maximize")
    earlier = CategoricalDistribution(["avg", "max", "min"])  # the search now has (avg, max)
    study.add_trial(
        optuna.trial.create_trial(
            params={"model.pool": "min"}, distributions={"model.pool": earlier}, value=0.5
        )
    )
    line, after = refused(tmp_path)
    assert "model.pool" in line
    assert [t.state for t in after] == [State.COMPLETE]


def test_a_queued_value_outside_the_search_space_fails_its_trial_in_one_line(tmp_path):
    study = optuna.create_study(study_name="s", storage=db(tmp_path), direction="maximize")
    study.enqueue_trial({"model.pool": "min"})  # the search has choice(avg, max)
    line, after = refused(tmp_path)
    assert "model.pool" in line
    assert [t.state for t in after] == [State.FAIL]
