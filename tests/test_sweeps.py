"""Sweeps: the LeNet ablation, the Optuna search, the launchers, and the comparison of runs."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from convlab.compare import compare, group_by_configuration, load_jobs, summarize
from convlab.config import CONF_DIR
from convlab.errors import ConvlabError
from tests.conftest import ROOT, TINY, cli

ABLATION = [(a, p) for a in ("sigmoid", "relu") for p in ("avg", "max")]


def write_job(sweep: Path, name: str, overrides: list[str], val_acc: float, **extra) -> Path:
    """A job directory as a finished run leaves it, with a hand-written metrics.json."""
    job = sweep / name
    (job / ".hydra").mkdir(parents=True)
    record = {
        "metrics": {"val/acc": val_acc, "val/loss": 1.0, "test/acc": val_acc - 0.01},
        "best_epoch": 1,
        "history": [
            {"epoch": 0, "train/loss": 2.0, "val/loss": 1.5, "val/acc": val_acc / 2},
            {"epoch": 1, "train/loss": 1.0, "val/loss": 1.0, "val/acc": val_acc},
        ],
        "model": {"params": 61706},
        "overrides": overrides,
        "timing": {"wall_s": 10.0},
    }
    record.update(extra)
    (job / "metrics.json").write_text(json.dumps(record))
    return job


def failed_job(sweep: Path, name: str) -> Path:
    """Hydra writes .hydra before the job runs; a failed job never writes metrics.json."""
    (sweep / name / ".hydra").mkdir(parents=True)
    return sweep / name


def test_seeds_of_one_configuration_give_mean_and_sample_std(tmp_path):
    for seed, acc in enumerate([0.80, 0.85, 0.90]):
        write_job(tmp_path, f"{seed}_seed={seed}", ["model=lenet", f"seed={seed}"], acc)
    write_job(tmp_path, "3_model=vgg", ["model=vgg", "seed=0"], 0.5)
    text = compare(tmp_path)
    lenet = next(line for line in text.splitlines() if line.startswith("| model=lenet"))
    assert lenet.split(" | ")[1:3] == ["3", "0.8500 ± 0.0500"]
    assert "| model=vgg | 1 | 0.5000 | 0.4900 |" in text  # no ± for a single run
    rows = list(csv.DictReader((tmp_path / "comparison.csv").open()))
    assert [(r["configuration"], r["n"]) for r in rows] == [
        ("model=lenet", "3"),
        ("model=vgg", "1"),
    ]
    assert float(rows[0]["val_acc_std"]) == pytest.approx(0.05) and rows[1]["val_acc_std"] == ""
    assert (tmp_path / "val_acc.png").stat().st_size > 0


def test_configurations_group_in_sweep_order_and_name_only_what_varies(tmp_path):
    shared = ["experiment=lenet_ablation", "trainer.max_epochs=10"]
    for num, (seed, pool) in enumerate([(0, "avg"), (0, "max"), (1, "avg"), (1, "max")]):
        write_job(tmp_path, f"{num}", [f"model.pool={pool}", *shared, f"seed={seed}"], 0.1 * num)
    records, skipped = load_jobs(tmp_path)
    configurations = group_by_configuration(records)
    assert [len(c.runs) for c in configurations] == [2, 2] and skipped == []
    rows = summarize(configurations)
    assert [r["configuration"] for r in rows] == ["model.pool=avg", "model.pool=max"]
    assert rows[1]["val/acc"][0] == pytest.approx(0.2)  # jobs 1 and 3: (0.1 + 0.3) / 2
    assert rows[0]["overrides"] == "model.pool=avg experiment=lenet_ablation trainer.max_epochs=10"
    assert "shared overrides: experiment=lenet_ablation trainer.max_epochs=10" in compare(tmp_path)


def test_sampled_floats_are_shortened_in_names_but_kept_in_full(tmp_path):
    for num, lr in enumerate(["0.004430375245218269", "1e+30"]):
        write_job(tmp_path, f"trial_{num}", [f"optimizer.lr={lr}", "trainer.max_epochs=10"], 0.5)
    rows = summarize(group_by_configuration(load_jobs(tmp_path)[0]))
    assert [r["configuration"] for r in rows] == ["optimizer.lr=0.00443", "optimizer.lr=1e+30"]
    assert rows[0]["overrides"] == "optimizer.lr=0.004430375245218269 trainer.max_epochs=10"


def test_failed_jobs_are_skipped_and_listed_in_job_order(tmp_path):
    write_job(tmp_path, "10_lr=0.01", ["optimizer.lr=0.01"], 0.8)
    write_job(tmp_path, "2_lr=0.1", ["optimizer.lr=0.1"], 0.7, metrics={"val/acc": 0.7})
    failed_job(tmp_path, "3_lr=1e30")
    (tmp_path / ".submitit" / "1234").mkdir(parents=True)  # a launcher's folder, not a job
    records, skipped = load_jobs(tmp_path)
    assert [r["overrides"] for r in records] == [["optimizer.lr=0.1"], ["optimizer.lr=0.01"]]
    assert skipped == [tmp_path / "3_lr=1e30"]
    text = compare(tmp_path, tmp_path / "report")
    assert "Skipped 1 job(s) without metrics.json (failed?):\n- 3_lr=1e30" in text
    assert "| optimizer.lr=0.1 | 1 | 0.7000 | – |" in text  # a run without test/acc
    assert {p.name for p in (tmp_path / "report").iterdir()} == {
        "comparison.md",
        "comparison.csv",
        "val_acc.png",
    }


def test_a_directory_without_finished_runs_is_refused(tmp_path):
    failed_job(tmp_path, "0_model=lenet")
    with pytest.raises(ConvlabError, match="no metrics.json under"):
        compare(tmp_path)
    with pytest.raises(ConvlabError, match="not a directory"):
        compare(tmp_path / "missing")


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
        assert f"model.activation={activation},model.pool={pool}," in job.name
        assert list(job.glob("events.out.tfevents.*"))  # TensorBoard names the run by its dir
        record = json.loads((job / "metrics.json").read_text())
        assert record["model"]["class"] == "LeNet" and record["epochs_run"] == 1

    shown = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "compare.py"), str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert shown.returncode == 0, shown.stderr
    rows = [line for line in shown.stdout.splitlines() if line.startswith("| model.")]
    assert [r.split(" | ")[0] for r in rows] == [
        f"| model.activation={a} model.pool={p}" for a, p in ABLATION
    ]
    assert (tmp_path / "comparison.md").read_text() == shown.stdout
    assert len(list(csv.DictReader((tmp_path / "comparison.csv").open()))) == 4
    assert (tmp_path / "val_acc.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.slow
def test_optuna_search_records_a_diverged_trial_as_failed_and_goes_on(tmp_path):
    out = cli(
        "-m",
        "hparams_search=lenet_optuna",
        "hydra.sweeper.n_trials=3",
        # on the command line a key's search space replaces the config's; with sampler seed 0
        # the three trials draw both values
        "optimizer.lr=choice(0.01,1e30)",
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
    records = [json.loads((j / "metrics.json").read_text()) for j in jobs]
    assert [r["environment"]["hardware"]["torch_threads"] for r in records] == [1] * 4
    # event files are named events.out.tfevents.<time>.<host>.<pid>.<n>: two worker processes
    assert len({next(j.glob("events.out.tfevents.*")).name.split(".")[-2] for j in jobs}) == 2
    rows = summarize(group_by_configuration(records))
    assert [(r["configuration"], r["n"]) for r in rows] == [
        ("model.pool=avg", 2),
        ("model.pool=max", 2),
    ]
