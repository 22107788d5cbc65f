"""convlab's Optuna sweeper (hydra/sweeper=convlab_optuna): studies kept in a database continue
and are shared without running a trial twice or reusing a directory; failed and pruned trials are
recorded as such; Optuna is imported only when a search starts."""

import math
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

from convlab.record import RunRecord
from tests.helpers import ROOT, TINY, cli

optuna = pytest.importorskip("optuna")
SEARCH = ["hparams_search=lenet_optuna", "hydra.sweeper.study_name=s", *TINY]


def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'study.db'}"


def trials(url: str) -> list:
    return optuna.load_study(study_name="s", storage=url).get_trials()


def trial_dirs(sweep: Path) -> list[str]:
    return sorted(p.name for p in sweep.glob("trial_*"))


def test_optuna_is_imported_only_when_a_search_starts():
    # Hydra scans (imports) every plugin module at every start, --help included
    probe = (
        "import runpy, sys\n"
        "sys.argv = ['train.py', '--help']\n"
        "try:\n    runpy.run_path(sys.argv[0], run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if 'optuna' in m))\n"
    )
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", probe], cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-2000:]
    loaded = out.stdout.strip().splitlines()[-1]
    assert "hydra_plugins.convlab_optuna_sweeper.config" in loaded  # the plugin was scanned...
    assert "'optuna" not in loaded  # ...and Optuna not imported
    imported = [line for line in out.stderr.splitlines() if line.startswith("import time:")]
    assert not [line for line in imported if line.split("|")[-1].strip().startswith("optuna")]


def test_search_space_reads_hydras_sweep_syntax():
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    from hydra_plugins.convlab_optuna_sweeper._impl import search_space

    space, fixed = search_space(
        [
            "optimizer.lr=tag(log, interval(1e-4, 1e-1))",
            "model.pool=choice(avg, max)",
            "data.batch_size=range(32, 129, 32)",
            "seed=1",
            "model.pool=max",  # a later value for a key replaces its search space
        ]
    )
    assert space == {
        "optimizer.lr": FloatDistribution(1e-4, 1e-1, log=True),
        "data.batch_size": IntDistribution(32, 128, step=32),
    }
    assert fixed == {"seed": "1", "model.pool": "max"}
    assert search_space(["a=choice(1,2)"])[0]["a"] == CategoricalDistribution([1, 2])


@pytest.mark.slow
def test_a_search_kept_in_a_database_continues_where_it_stopped(tmp_path):
    url, sweep = db(tmp_path), tmp_path / "sweep"
    common = [*SEARCH, f"hydra.sweeper.storage={url}", f"hydra.sweep.dir={sweep}"]
    first = cli(*common, "hydra.sweeper.n_trials=2")
    assert first.returncode == 0, first.stderr[-3000:]
    assert trial_dirs(sweep) == ["trial_0", "trial_1"]
    # n_trials is the study's total: the same command with 4 runs the two that are left
    again = cli(*common, "hydra.sweeper.n_trials=4")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "2 of 4 trials started before" in again.stdout + again.stderr
    study = trials(url)
    assert [t.number for t in study] == [0, 1, 2, 3]
    assert {t.state for t in study} == {optuna.trial.TrialState.COMPLETE}
    assert trial_dirs(sweep) == ["trial_0", "trial_1", "trial_2", "trial_3"]
    for t in study:  # each directory holds its own trial, run once
        record = RunRecord.read(sweep / f"trial_{t.number}" / "metrics.json")
        assert record.metrics["val/acc"] == pytest.approx(t.value)
    done = cli(*common, "hydra.sweeper.n_trials=4")  # nothing left to run
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(trials(url)) == 4


@pytest.mark.slow
def test_two_processes_share_a_study_and_together_run_n_trials(tmp_path):
    url, sweep = db(tmp_path), tmp_path / "sweep"
    command = [
        sys.executable,
        str(ROOT / "train.py"),
        *SEARCH,
        f"hydra.sweeper.storage={url}",
        f"hydra.sweep.dir={sweep}",
        "hydra.sweeper.n_trials=5",
    ]
    # the study exists before they start: two processes creating one study race on its name
    optuna.create_study(study_name="s", storage=url, direction="maximize")
    procs = [
        subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=600)[0].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    ended = [t for t in trials(url) if t.state.is_finished()]
    assert sorted(t.number for t in ended) == [0, 1, 2, 3, 4]
    assert trial_dirs(sweep) == [f"trial_{n}" for n in range(5)]
    assert all((sweep / f"trial_{n}" / "metrics.json").is_file() for n in range(5))
    # both took part (each starts with a trial of its own)
    assert all("Trial " in out for out in outputs)


@pytest.fixture(scope="module")
def pruned_search(tmp_path_factory) -> tuple[str, Path]:
    """A 2-trial search whose pruner stops every trial after its first epoch (of 2)."""
    tmp_path = tmp_path_factory.mktemp("pruned")
    url, sweep = db(tmp_path), tmp_path / "sweep"
    out = cli(
        *SEARCH,
        f"hydra.sweeper.storage={url}",
        f"hydra.sweep.dir={sweep}",
        "hydra.sweeper.n_trials=2",
        "hydra/sweeper/pruner=threshold",
        "hydra.sweeper.pruner.lower=1.1",  # no accuracy reaches it: every trial is pruned
        "trainer.max_epochs=2",
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return url, sweep


@pytest.mark.slow
def test_a_pruned_trial_stops_after_its_epoch_and_is_recorded_pruned(pruned_search):
    url, sweep = pruned_search
    study = trials(url)
    assert [t.state for t in study] == [optuna.trial.TrialState.PRUNED] * 2
    for t in study:
        assert list(t.intermediate_values) == [0]  # reported after epoch 0, stopped there
        assert t.user_attrs["pruned_at_epoch"] == 0
    results = OmegaConf.load(sweep / "optimization_results.yaml")
    assert results["trials"] == {"pruned": 2}


@pytest.mark.slow
def test_a_pruned_job_records_itself_pruned(pruned_search):
    _, sweep = pruned_search
    for job in ("trial_0", "trial_1"):
        record = RunRecord.read(sweep / job / "metrics.json")
        assert record.status == "pruned" and record.epochs_run == 1
        assert "test/acc" not in record.metrics  # a stopped trial is never tested
        # HPARAMS shows it too, with the validation of the epochs it ran
        hparams = EventAccumulator(str(sweep / job))
        hparams.Reload()
        info = hparams.PluginTagToContent("hparams")["_hparams_/session_start_info"]
        shown = HParamsPluginData.FromString(info).session_start_info.hparams
        # the lr is sampled on a log scale: a log10 column beside it spreads it out in HPARAMS
        lr = shown["optimizer.lr"].number_value
        assert shown["log10(optimizer.lr)"].number_value == pytest.approx(math.log10(lr))
        (final,) = hparams.Scalars("val/best_acc")
        assert final.value == pytest.approx(record.metrics["val/acc"])


@pytest.mark.slow
def test_a_stale_running_trial_of_a_killed_process_counts_as_failed(tmp_path):
    url, sweep = db(tmp_path), tmp_path / "sweep"
    from optuna.storages import RDBStorage

    storage = RDBStorage(url, heartbeat_interval=1)
    study = optuna.create_study(study_name="s", storage=storage, direction="maximize")
    killed = study.ask()  # as a process killed mid-trial leaves it: RUNNING, heartbeat stopped
    storage.record_heartbeat(killed._trial_id)
    out = cli(
        *SEARCH,
        f"hydra.sweeper.storage={url}",
        f"hydra.sweep.dir={sweep}",
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.heartbeat_interval=1",
    )
    assert out.returncode == 0, out.stderr[-3000:]
    states = [t.state for t in trials(url)]
    assert states == [optuna.trial.TrialState.FAIL] + [optuna.trial.TrialState.COMPLETE] * 2
    # failed at the first ask after its grace period, and rerun: its place goes to the rerun
    assert 0 in [t.user_attrs.get("retry_of") for t in trials(url)]
    assert trial_dirs(sweep) == ["trial_1", "trial_2"]


def test_a_log_sampled_key_gets_its_log10_column_beside_it():
    from convlab.config import compose_run
    from convlab.hparams import hyperparameters

    cfg = compose_run(["optimizer.lr=0.001"])
    shown = hyperparameters(cfg, ["optimizer.lr=0.001"], {}, {"optimizer.lr"}, {"optimizer.lr"})
    assert list(shown)[:2] == ["optimizer.lr", "log10(optimizer.lr)"]
    assert shown["log10(optimizer.lr)"] == pytest.approx(-3.0)
    assert "log10(optimizer.lr)" not in hyperparameters(cfg, ["optimizer.lr=0.001"], {})
