"""Crashes, signals, full disks, DDP and reproducibility."""

import json

import pytest

from convlab.record import RunRecord
from tests.helpers import KILL, TINY, cli, comparable, printed_command, run_to_the_end

# 3 epochs of 3 steps; the kill lands in the middle of the third epoch (after step 7 of 9)
RESUMABLE = [*TINY, "trainer.max_epochs=3", "augment=erase", "model=vgg_small", "data.resize=32"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> RunRecord:
    """The record of the run the stopped-and-resumed ones must end equal to (trained once)."""
    return run_to_the_end(tmp_path_factory.mktemp("uninterrupted") / "run", *RESUMABLE)


@pytest.mark.slow
def test_kill_9_mid_epoch_then_resume_ends_like_an_uninterrupted_run(tmp_path, uninterrupted):
    # vgg_small has dropout and the run augments: the RNG streams must survive the restart too
    killed = cli(
        *RESUMABLE,
        f"hydra.run.dir={tmp_path / 'killed'}",
        "+callbacks.kill._target_=tests.helpers.KillAt",
        "+callbacks.kill.step=7",
    )
    assert killed.returncode == -9 and not (tmp_path / "killed" / "metrics.json").exists()
    resumed = cli(f"resume={tmp_path / 'killed'}", KILL)
    assert resumed.returncode == 0, resumed.stderr
    resumed_record = RunRecord.read(tmp_path / "killed" / "metrics.json")
    assert [r["epoch"] for r in resumed_record.history] == [0, 1, 2]
    assert comparable(uninterrupted) == comparable(resumed_record)


@pytest.mark.slow
def test_sigterm_mid_epoch_exits_143_and_resumes_to_the_uninterrupted_run(tmp_path, uninterrupted):
    stopped = cli(
        *RESUMABLE,
        f"hydra.run.dir={tmp_path / 'stopped'}",
        "+callbacks.stop._target_=tests.helpers.SignalAt",
        "+callbacks.stop.step=7",
    )
    assert stopped.returncode == 143, stopped.stderr
    assert f"continue with: python train.py resume={tmp_path / 'stopped'}" in stopped.stderr
    assert not (tmp_path / "stopped" / "metrics.json").exists()
    failure = json.loads((tmp_path / "stopped" / "failure.json").read_text())
    assert failure["status"] == "interrupted" and failure["error"] == "interrupted by SIGTERM"
    assert not list((tmp_path / "stopped" / "checkpoints").glob(".*.tmp"))
    resumed = cli(*printed_command(stopped.stderr))
    assert resumed.returncode == 0, resumed.stderr
    record = RunRecord.read(tmp_path / "stopped" / "metrics.json")
    assert comparable(uninterrupted) == comparable(record)
    assert not (tmp_path / "stopped" / "failure.json").exists()


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_trains_and_evaluates_like_one_process(tmp_path):
    trained = cli(*TINY, "trainer=ddp_cpu", f"hydra.run.dir={tmp_path / 'ddp'}")
    assert trained.returncode == 0, trained.stderr
    run_dirs = [p.parent for p in tmp_path.rglob("metrics.json")]
    assert run_dirs == [tmp_path / "ddp"]  # one directory per run, not per rank
    ckpt = RunRecord.read(tmp_path / "ddp" / "metrics.json").paths["checkpoint"]
    accs = {}
    for name, trainer in (("one", "trainer=cpu"), ("two", "trainer=ddp_cpu")):
        out = cli(
            *TINY,
            trainer,
            "train=false",
            f"ckpt_path={ckpt}",
            "trainer.limit_test_batches=null",
            "data.eval_batch_size=64",
            f"hydra.run.dir={tmp_path / name}",
        )
        assert out.returncode == 0, out.stderr
        accs[name] = RunRecord.read(tmp_path / name / "metrics.json").metrics
    assert 0.0 < accs["one"]["test/acc"] < 1.0  # a real measurement, not a saturated one
    assert accs["two"]["test/acc"] == pytest.approx(accs["one"]["test/acc"], abs=1e-6)
    assert accs["two"]["test/loss"] == pytest.approx(accs["one"]["test/loss"], abs=1e-5)


@pytest.mark.slow
def test_a_ddp_multirun_writes_one_directory_per_job(tmp_path):
    out = cli(
        "-m",
        *TINY,
        "trainer=ddp_cpu",
        "seed=0,1",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        f"paths.log_dir={tmp_path / 'logs'}",
    )
    assert out.returncode == 0, out.stderr
    jobs = sorted(p.parent for p in tmp_path.rglob("metrics.json"))
    assert [j.name.split("_")[0] for j in jobs] == ["0", "1"]
    assert all(j.parent == tmp_path / "sweep" for j in jobs)
    assert not (tmp_path / "logs").exists()  # the ranks re-ran the job, not a second sweep
    seeds = [RunRecord.read(j / "metrics.json").overrides for j in jobs]
    assert ["seed=0" in s for s in seeds] == [True, False]
