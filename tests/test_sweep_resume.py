"""Every command convlab prints after a stop continues the stopped work when pasted verbatim: a
sweep's job, a whole sweep, a run stopped before its first checkpoint; and a sweep never reports
another sweep's jobs as its own."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from convlab.errors import ConvlabError
from convlab.record import RunRecord
from convlab.train import run
from tests.helpers import (
    KILL,
    KILLED,
    ROOT,
    STOP,
    TINY,
    cli,
    one_line_error,
    printed_command,
    tree_state,
)


def records(sweep: Path) -> dict[str, dict]:
    return {
        p.parent.name.split("_")[0]: RunRecord.read(p).metrics
        for p in sorted(sweep.glob("*/metrics.json"))
    }


@pytest.mark.slow
def test_a_sweep_job_continues_in_place_even_when_its_experiment_is_a_sweep(tmp_path):
    """experiment=lenet_ablation sets hydra.mode=MULTIRUN; its job's resume is still one run."""
    sweep = tmp_path / "sweep"
    stopped = cli(
        "-m",
        *TINY,
        "experiment=lenet_ablation",
        "trainer.max_epochs=2",
        STOP,
        "+callbacks.stop.step=4",
        f"hydra.sweep.dir={sweep}",
        f"paths.log_dir={tmp_path / 'logs'}",
    )
    assert stopped.returncode == 143, stopped.stderr
    (job,) = [p for p in sweep.iterdir() if p.is_dir()]
    resumed = cli(*printed_command(stopped.stderr, "continue with: "))
    assert resumed.returncode == 0, resumed.stderr
    assert RunRecord.read(job / "metrics.json").epochs_run == 2
    assert not (tmp_path / "logs").exists()  # no new sweep began


@pytest.mark.slow
def test_a_stopped_sweep_continues_as_a_whole_to_the_uninterrupted_table(tmp_path):
    common = [*TINY, "trainer.max_epochs=2", STOP]
    stopped = cli("-m", *common, "+callbacks.stop.step=4,999", f"hydra.sweep.dir={tmp_path / 's'}")
    assert stopped.returncode == 143, stopped.stderr
    assert "1 interrupted, 1 never started" in stopped.stderr
    continued = cli(*printed_command(stopped.stderr, "continue the whole sweep with: "))
    assert continued.returncode == 0, continued.stderr
    assert "2 finished" in continued.stdout
    # the same jobs, uninterrupted: steps no run reaches
    reference = cli(
        "-m", *common, "+callbacks.stop.step=998,999", f"hydra.sweep.dir={tmp_path / 'r'}"
    )
    assert reference.returncode == 0, reference.stderr
    assert records(tmp_path / "s") == records(tmp_path / "r")
    again = cli(*printed_command(stopped.stderr, "continue the whole sweep with: "))
    assert again.returncode == 0 and "kept: " in again.stdout  # finished jobs are kept as they are


def test_a_reused_sweep_directory_is_refused_before_any_job(finished, tmp_path):
    sweep = tmp_path / "sweep"
    (sweep / "0_seed=0").mkdir(parents=True)
    for name in ("metrics.json", ".hydra"):
        src = finished / name
        dst = sweep / "0_seed=0" / name
        dst.write_bytes(src.read_bytes()) if src.is_file() else dst.mkdir()
    (sweep / "0_seed=0" / ".hydra" / "overrides.yaml").write_text("- seed=0\n")
    (sweep / "multirun.yaml").write_text("hydra: {}\n")
    before = tree_state(sweep)
    out = cli("-m", *TINY, "seed=0,1", f"hydra.sweep.dir={sweep}")
    assert "already holds 1 job(s) of a sweep" in one_line_error(out)
    assert tree_state(sweep) == before


def test_a_run_stopped_before_its_first_checkpoint_starts_over_in_place(tmp_path):
    run_dir = tmp_path / "run"
    stopped = cli(*TINY, STOP, "+callbacks.stop.step=2", f"hydra.run.dir={run_dir}")
    assert stopped.returncode == 143 and not (run_dir / "checkpoints").exists(), stopped.stderr
    resumed = cli(*printed_command(stopped.stderr, "continue with: "))
    assert resumed.returncode == 0, resumed.stderr
    assert RunRecord.read(run_dir / "metrics.json").epochs_run == 1
    assert not (run_dir / "failure.json").exists()


def test_evaluate_again_evaluates_on_the_runs_own_data(tmp_path):
    trained = cli(*TINY, f"hydra.run.dir={tmp_path / 'run'}")
    assert trained.returncode == 0, trained.stderr
    again = printed_command(trained.stdout, "evaluate again: ")
    assert "data=synthetic" in again
    evaluated = cli(*again, f"hydra.run.dir={tmp_path / 'eval'}")
    assert evaluated.returncode == 0, evaluated.stderr
    recorded = RunRecord.read(tmp_path / "run" / "metrics.json").metrics["test/acc"]
    assert RunRecord.read(tmp_path / "eval" / "metrics.json").metrics["test/acc"] == pytest.approx(
        recorded, abs=1e-6
    )


def test_the_record_describes_the_checkpoint_that_was_tested_whatever_the_monitor(tmp_path):
    record = run(
        overrides=[
            *TINY,
            "trainer.max_epochs=3",
            "callbacks.model_checkpoint.monitor=val/loss",
            "callbacks.model_checkpoint.mode=min",
            f"hydra.run.dir={tmp_path / 'run'}",
        ]
    )
    best = min(record.history, key=lambda row: row["val/loss"])
    assert record.best_epoch == best["epoch"]
    assert record.metrics["val/loss"] == best["val/loss"]
    assert f"epoch{best['epoch']:02d}" in record.paths["checkpoint"]


def test_what_resume_may_change_leaves_the_numbers_as_they_were(killed_copy, tmp_path):
    """The keys resume lets differ (where things go, what is shown, which classes a checkpoint
    may build) are shown here not to change a resumed run's numbers: it ends as the same run
    uninterrupted."""
    reference = cli(*KILLED, f"hydra.run.dir={tmp_path / 'reference'}")
    assert reference.returncode == 0, reference.stderr
    shown_otherwise = [
        "trainer.enable_progress_bar=true",
        "trainer.log_every_n_steps=1",
        "logger=csv",
        "callbacks.lr_monitor=null",
        "callbacks.epoch_time=null",
        "claim_timeout=60",
        "allow=[convlab.models.lenet.LeNet]",  # which classes a checkpoint may build
    ]
    resumed = cli(f"resume={killed_copy}", KILL, *shown_otherwise)
    assert resumed.returncode == 0, resumed.stderr
    expected = RunRecord.read(tmp_path / "reference" / "metrics.json")
    got = RunRecord.read(killed_copy / "metrics.json")
    assert got.metrics == expected.metrics and got.history == expected.history


@pytest.mark.parametrize(
    "override",
    [
        "trainer.precision=bf16-mixed",
        "trainer.gradient_clip_val=0.5",
        "threads=1",
        "trainer.deterministic=false",
        "~callbacks.kill",
    ],
)
def test_resume_refuses_what_may_change_the_numbers(killed_copy, override):
    before = tree_state(killed_copy)
    extra = [] if override.startswith("~") else [KILL]
    with pytest.raises(ConvlabError, match="differs from the one its checkpoint was trained with"):
        run(overrides=[f"resume={killed_copy}", *extra, override])
    assert tree_state(killed_copy) == before


def test_a_sweep_whose_jobs_were_all_refused_fails(tmp_path):
    out = cli(
        "-m",
        *TINY,
        "seed=0,1",
        f"callbacks.model_checkpoint.dirpath={tmp_path / 'elsewhere'}",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
    )
    assert out.returncode == 1, out.stderr
    assert "2 job(s) of the sweep were refused" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.slow
def test_a_submitit_job_requeued_before_its_time_limit_continues_its_own_directory(tmp_path):
    """submitit answers its warning signal (SIGUSR2) by saving Hydra's job and requeueing it; its
    local executor starts the task again, as SLURM would, and the run continues in place."""
    sweep = tmp_path / "sweep"
    out = cli(
        "-m",
        "hydra/launcher=submitit_local",
        "seed=0",
        *KILLED,
        f"hydra.sweep.dir={sweep}",
        "hydra.sweep.subdir=${hydra.job.num}",
        STOP,
        "+callbacks.stop.step=4",  # in the second epoch: the first one's checkpoint is written
        f"+callbacks.stop.signum={int(signal.SIGUSR2)}",
    )
    assert out.returncode == 0, out.stderr[-3000:]
    logs = "".join(p.read_text() for p in (sweep / ".submitit").rglob("*_log.*"))
    assert "Requeued job" in logs  # the task was stopped and started again
    (job,) = [p.parent for p in sweep.glob("*/metrics.json")]
    assert [row["epoch"] for row in RunRecord.read(job / "metrics.json").history] == [0, 1]
    assert not (job / "failure.json").exists()


def test_a_requeued_cluster_job_continues_its_own_directory(killed_copy):
    """SLURM starts a requeued job again with the same command and directory, and counts the
    restart; the job then resumes what it stopped instead of refusing its own directory."""
    command = yaml.safe_load((killed_copy / ".hydra" / "overrides.yaml").read_text())
    out = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *command, f"hydra.run.dir={killed_copy}"],
        env={**os.environ, "SLURM_RESTART_COUNT": "1"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert [row["epoch"] for row in RunRecord.read(killed_copy / "metrics.json").history] == [0, 1]
