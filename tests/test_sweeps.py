"""Sweeps: the LeNet ablation, the Optuna search and the launchers (tests/test_compare.py: the
comparison of runs)."""

import csv
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from convlab.compare import group_by_configuration, summarize
from convlab.paths import CONF_DIR
from convlab.record import RunRecord
from tests.helpers import ROOT, TINY, cli

ABLATION = [(a, p) for a in ("sigmoid", "relu") for p in ("avg", "max")]


def test_slurm_preset_is_submitits_slurm_launcher_with_the_cluster_keys():
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            "train",
            [
                "hydra/launcher=slurm",
                "hydra.launcher.partition=gpu",
                "hydra.launcher.timeout_min=60",
            ],
            return_hydra_config=True,
        )
    launcher = cfg.hydra.launcher
    assert (
        launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    )
    assert (launcher.partition, launcher.gpus_per_node, launcher.timeout_min) == ("gpu", 1, 60)


def jobs_with_metrics(sweep: Path) -> list[Path]:
    return sorted(p.parent for p in sweep.glob("*/metrics.json"))


def hydra_overrides(job: Path) -> list[str]:
    return list(OmegaConf.load(job / ".hydra" / "overrides.yaml"))


@pytest.mark.slow
def test_lenet_ablation_runs_the_2x2_and_compare_tabulates_it(tmp_path):
    out = cli("-m", "experiment=lenet_ablation", *TINY, f"hydra.sweep.dir={tmp_path}")
    assert out.returncode == 0, out.stderr[-3000:]
    jobs = jobs_with_metrics(tmp_path)
    assert len(jobs) == 4
    for num, (job, (activation, pool)) in enumerate(zip(jobs, ABLATION, strict=True)):
        # readable names: the job number, then the overrides but experiment=
        assert job.name.startswith(f"{num}_") and "experiment=" not in job.name
        assert job.name == f"{num}_model.activation={activation},model.pool={pool}"
        assert list(job.glob("events.out.tfevents.*"))  # TensorBoard names the run by its dir
        record = RunRecord.read(job / "metrics.json")
        assert record.model["class"] == "LeNet" and record.epochs_run == 1

    shown = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "compare.py"), str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert shown.returncode == 0, shown.stderr
    rows = [line for line in shown.stdout.splitlines() if line.startswith("| model.")]
    assert sorted(r.split(" | ")[0] for r in rows) == sorted(
        f"| model.activation={a} model.pool={p}" for a, p in ABLATION
    )  # ranked by val/acc, best first
    assert (tmp_path / "comparison.md").read_text() == shown.stdout
    assert len(list(csv.DictReader((tmp_path / "comparison.csv").open()))) == 4
    assert (tmp_path / "val_acc.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.slow
def test_optuna_search_records_a_diverged_trial_as_failed_and_goes_on(tmp_path):
    out = cli(
        "-m",
        "hparams_search=lenet_optuna",
        "hydra.sweeper.n_trials=3",
        # on the command line a key's search space replaces the config's; with sampler seed 3
        # the three trials draw both values
        "optimizer.lr=choice(0.01,1e30)",
        "hydra.sweeper.sampler.seed=3",
        *TINY,
        f"hydra.sweep.dir={tmp_path}",
    )
    assert out.returncode == 0, out.stderr[-3000:]
    trials = sorted(tmp_path.glob("trial_*"))
    assert [t.name for t in trials] == ["trial_0", "trial_1", "trial_2"]
    diverged = [t for t in trials if "optimizer.lr=1e+30" in hydra_overrides(t)]
    assert diverged and len(diverged) < 3
    for trial in trials:
        assert (trial / "metrics.json").is_file() == (trial not in diverged)
    assert "training diverged" in out.stdout + out.stderr
    best = OmegaConf.load(tmp_path / "optimization_results.yaml")
    assert best["trials"] == {"complete": 3 - len(diverged), "fail": len(diverged)}
    assert best["best_params"]["optimizer.lr"] == 0.01
    assert {"model.activation", "model.pool", "module.label_smoothing"} <= set(best["best_params"])


@pytest.mark.slow
def test_submitit_local_launcher_runs_the_jobs(tmp_path):
    out = cli(
        "-m", "hydra/launcher=submitit_local", "seed=0,1", *TINY, f"hydra.sweep.dir={tmp_path}"
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert len(jobs_with_metrics(tmp_path)) == 2
    assert (tmp_path / ".submitit").is_dir()


@pytest.mark.slow
def test_seeded_ablation_on_joblib_runs_two_single_threaded_jobs_at_a_time(tmp_path):
    out = cli(
        "-m",
        "experiment=lenet_ablation",
        "model.activation=relu",  # the command line wins the experiment's key...
        "seed=0,1",  # ...and its sweeps cross the experiment's
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "threads=1",
        *TINY,
        f"hydra.sweep.dir={tmp_path}",
    )
    assert out.returncode == 0, out.stderr[-3000:]
    jobs = jobs_with_metrics(tmp_path)
    swept = [
        sorted(o for o in hydra_overrides(j) if o.startswith(("model.", "seed"))) for j in jobs
    ]
    assert swept == [
        ["model.activation=relu", f"model.pool={p}", f"seed={s}"]
        for p in ("avg", "max")
        for s in (0, 1)
    ]
    records = [RunRecord.read(j / "metrics.json") for j in jobs]
    assert [r.environment["hardware"]["torch_threads"] for r in records] == [1] * 4
    # event files are named events.out.tfevents.<time>.<host>.<pid>.<n>: two worker processes
    assert len({next(j.glob("events.out.tfevents.*")).name.split(".")[-2] for j in jobs}) == 2
    rows = summarize(group_by_configuration([r.to_json() for r in records]))
    assert [(r["configuration"], r["n"]) for r in rows] == [
        ("model.pool=avg", 2),
        ("model.pool=max", 2),
    ]
