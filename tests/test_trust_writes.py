"""Where convlab writes: never through a link, never into another run or sweep (whatever a
setting, a record or Hydra says), only as rank 0 of a launch, and never resolving a name."""

import os
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir

from convlab import safe_files
from convlab.errors import ConvlabError
from convlab.paths import CONF_DIR
from convlab.rundir import CLAIM_TOKEN, RunDir
from convlab.train import run
from convlab.write_paths import WriteGuard
from tests.helpers import KILL, ROOT, STOP, TINY, cli, one_line_error, tree_state


@pytest.fixture
def sentinel(tmp_path) -> Path:
    path = tmp_path / "sentinel.txt"
    path.write_text("keep me\n")
    return path


def unchanged(*paths: Path) -> dict:
    return {str(p): tree_state(p) if p.is_dir() else p.read_bytes() for p in paths}


# ---- no write follows a link ----


@pytest.mark.parametrize(
    "planted",
    ["checkpoints/.last.ckpt.tmp", ".metrics.json.tmp", ".lock", "metrics.json", "events.out"],
)
def test_a_link_planted_in_a_run_directory_is_refused_and_its_target_untouched(
    killed_copy, sentinel, planted
):
    (killed_copy / planted).unlink(missing_ok=True)
    os.symlink(sentinel, killed_copy / planted)
    before = unchanged(sentinel)
    with pytest.raises(ConvlabError, match="symbolic link|cannot be opened|finished"):
        run(overrides=[f"resume={killed_copy}", KILL])
    assert unchanged(sentinel) == before


def test_a_linked_checkpoints_folder_is_refused(killed_copy, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    shutil.move(killed_copy / "checkpoints", elsewhere)
    os.symlink(elsewhere, killed_copy / "checkpoints")
    before = unchanged(elsewhere)
    out = cli(f"resume={killed_copy}", KILL)
    assert "is a symbolic link" in one_line_error(out)
    assert unchanged(elsewhere) == before


def test_safe_writes_refuse_links_at_every_level_and_leave_no_temporaries(tmp_path, sentinel):
    root = tmp_path / "root"
    root.mkdir()
    safe_files.write_text(root, "a/b/file.txt", "one")
    safe_files.write_text(root, "a/b/file.txt", "two")  # replaced, as a rename does
    assert (root / "a" / "b" / "file.txt").read_text() == "two"
    os.symlink(tmp_path, root / "linked_dir")
    os.symlink(sentinel, root / "linked_file")
    for relative in ("linked_dir/sentinel.txt", "linked_file", "a/b"):
        with pytest.raises(ConvlabError, match="is a symbolic link"):
            safe_files.write_text(root, relative, "x")
    assert sentinel.read_text() == "keep me\n"
    assert sorted(p.name for p in (root / "a" / "b").iterdir()) == ["file.txt"]


def test_stale_temporaries_are_removed_links_among_them_without_touching_targets(
    tmp_path, sentinel
):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / ".last.ckpt.123-abcd.tmp").write_bytes(b"half")
    os.symlink(sentinel, tmp_path / ".metrics.json.tmp")
    (tmp_path / "keep.txt").write_text("x")
    safe_files.remove_stale_temporaries(tmp_path)
    assert sorted(p.name for p in tmp_path.rglob("*")) == [
        "checkpoints",
        "keep.txt",
        "sentinel.txt",
    ]
    assert sentinel.read_text() == "keep me\n"


# ---- no setting writes into another run or sweep ----


@pytest.mark.parametrize(
    "override",
    [
        "callbacks.model_checkpoint.dirpath={finished}/checkpoints",
        "logger=csv logger.csv.save_dir={finished}",
        "trainer.default_root_dir={finished}",
        "paths.data_dir={finished}/data",
        "hydra.run.dir={finished}/nested",
        "logger=mlflow logger.mlflow.tracking_uri=sqlite:///{finished}/mlflow.db",
        "data=fashion_mnist data.download=true data.root={finished}/data",
        "callbacks.model_checkpoint.save_last=link",
    ],
)
def test_no_setting_writes_into_a_finished_run(finished, tmp_path, override):
    before = unchanged(finished)
    args = override.format(finished=finished).split()
    if not any(a.startswith("hydra.run.dir") for a in args):
        args.append(f"hydra.run.dir={tmp_path / 'new'}")
    with pytest.raises(ConvlabError, match=f"{finished}|save_last=link"):
        run(overrides=[*TINY, *args])
    assert unchanged(finished) == before


def hydra_config(overrides: list[str]):
    """The composed config with its hydra node, as Hydra hands it to its callbacks."""
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("train", overrides=overrides, return_hydra_config=True)


@pytest.mark.parametrize(
    "override, start",
    [
        ("hydra.output_subdir=.hydra hydra.run.dir={finished}", "run"),
        ("hydra/job_logging=default hydra.run.dir={finished}", "run"),
        ("hydra.sweep.dir={finished}/sweep", "multirun"),
        ("hydra.sweep.dir={finished}", "multirun"),
        (
            "hparams_search=lenet_optuna hydra.sweeper.storage=sqlite:///{finished}/optuna.db",
            "multirun",
        ),
    ],
)
def test_hydra_is_stopped_before_it_writes_into_a_finished_run(finished, override, start):
    """Hydra writes .hydra/, a log file and multirun.yaml before a job starts: its callback
    refuses first, in one line."""
    config = hydra_config([*TINY, *override.format(finished=finished).split()])
    guard = WriteGuard()
    with pytest.raises(SystemExit, match="^convlab: error: ") as stopped:
        getattr(guard, f"on_{start}_start")(config)
    assert "\n" not in str(stopped.value)


def test_the_guard_runs_before_hydra_writes(finished):
    before = unchanged(finished)
    out = cli(*TINY, "hydra.output_subdir=.hydra", f"hydra.run.dir={finished}")
    assert "hydra.output_subdir would make Hydra write" in one_line_error(out)
    assert unchanged(finished) == before


@pytest.mark.parametrize(
    "recorded",
    ["callbacks.model_checkpoint.dirpath={finished}/checkpoints", "paths.log_dir={finished}"],
)
def test_a_recorded_path_is_never_reapplied(killed_copy, finished, recorded):
    saved = killed_copy / ".hydra" / "overrides.yaml"
    text = recorded.format(finished=finished)
    saved.write_text(yaml.safe_dump([*yaml.safe_load(saved.read_text()), text]))
    before = unchanged(finished, killed_copy)
    out = cli(f"resume={killed_copy}", KILL)
    assert f"{text} names a path" in one_line_error(out)
    assert unchanged(finished, killed_copy) == before


def test_a_link_planted_in_a_sweep_directory_is_refused(tmp_path, sentinel):
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    os.symlink(sentinel, sweep / "multirun.yaml")  # Hydra would write the sweep's config there
    before = unchanged(sentinel)
    out = cli("-m", *TINY, "seed=0,1", f"hydra.sweep.dir={sweep}")
    assert "is a symbolic link" in one_line_error(out)
    assert unchanged(sentinel) == before and sorted(p.name for p in sweep.iterdir()) == [
        "multirun.yaml"
    ]


def test_the_printed_resume_command_repeats_the_runs_paths(tmp_path):
    """A path override is never taken from the record, so the command convlab prints after a
    stop carries it: pasted verbatim, it continues the run."""
    run_dir, data_dir = tmp_path / "run", tmp_path / "data dir"
    stopped = cli(
        *TINY,
        "trainer.max_epochs=2",
        f"paths.data_dir={data_dir}",
        f"hydra.run.dir={run_dir}",
        "+callbacks.stop._target_=tests.helpers.SignalAt",
        "+callbacks.stop.step=4",
    )
    assert stopped.returncode == 143, stopped.stderr
    command = stopped.stderr.strip().splitlines()[-1].split("continue with: ", 1)[1]
    assert "paths.data_dir=" in command
    args = shlex.split(command)
    assert args[:2] == ["python", "train.py"]
    resumed = cli(*args[2:])
    assert resumed.returncode == 0, resumed.stderr
    assert (run_dir / "metrics.json").is_file()


# ---- ranks ----


def rank_cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("RANK", "NODE_RANK", "WORLD_SIZE")}
    return subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *TINY, *args],
        env={**clean, **env, "PYTHONWARNINGS": "ignore"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("variable", ["RANK", "NODE_RANK", "LOCAL_RANK", "SLURM_PROCID"])
def test_a_rank_without_a_world_is_refused(finished, variable, monkeypatch):
    for name in ("RANK", "NODE_RANK", "LOCAL_RANK", "SLURM_PROCID", "WORLD_SIZE", "SLURM_NTASKS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, "1")
    with pytest.raises(ConvlabError, match=f"{variable}=1 makes this process rank 1"):
        RunDir(finished, resuming=False)


def test_the_cli_refuses_a_rank_without_a_world_before_anything(finished):
    before = unchanged(finished)
    out = rank_cli({"NODE_RANK": "1"}, f"hydra.run.dir={finished}")
    assert "NODE_RANK=1 makes this process rank 1" in one_line_error(out)
    assert unchanged(finished) == before


def test_another_rank_waits_for_its_launchs_claim(tmp_path, monkeypatch):
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", "29999")
    owner = RunDir(tmp_path / "run", resuming=False).claim()
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv(CLAIM_TOKEN, raising=False)
    with pytest.raises(ConvlabError, match=r"did not claim .* within 0.5 s \(claim_timeout\)"):
        RunDir(tmp_path / "run", resuming=False, claim_timeout=0.5).claim()
    owner.publish_claim()  # rank 0's checks passed
    inherited = os.environ.pop(CLAIM_TOKEN)  # what ranks Lightning starts itself see
    assert not RunDir(tmp_path / "run", resuming=False, claim_timeout=0.5).claim().owner
    monkeypatch.setenv("MASTER_PORT", "30000")  # another launch on the same directory
    with pytest.raises(ConvlabError, match="did not claim"):
        RunDir(tmp_path / "run", resuming=False, claim_timeout=0.5).claim()
    monkeypatch.delenv("MASTER_ADDR")
    monkeypatch.setenv(CLAIM_TOKEN, inherited)
    assert not RunDir(tmp_path / "run", resuming=False, claim_timeout=0.5).claim().owner
    owner.release()
    assert not (tmp_path / "run" / "metrics.json").exists()


# ---- resume is training; names are never resolved ----


@pytest.mark.parametrize("extra", [["train=false"], ["ckpt_path={other}"]])
def test_resume_cannot_evaluate(killed_copy, finished, extra):
    other = next((finished / "checkpoints").glob("epoch*.ckpt"))
    before = unchanged(killed_copy)
    out = cli(f"resume={killed_copy}", *[e.format(other=other) for e in extra])
    assert "resume= continues training" in one_line_error(out)
    assert unchanged(killed_copy) == before
    with pytest.raises(ConvlabError, match="resume= continues training"):
        run(overrides=[f"resume={killed_copy}", *[e.format(other=other) for e in extra]])


def test_a_directory_name_is_never_resolved(killed_run, tmp_path, monkeypatch):
    monkeypatch.setenv("CONVLAB_TEST_SECRET", "hunter2")
    named = tmp_path / "run_${oc.env:CONVLAB_TEST_SECRET}"
    shutil.copytree(killed_run, named)
    out = cli(f"resume={named}")
    assert "${oc.env:CONVLAB_TEST_SECRET}" in one_line_error(out)
    assert "hunter2" not in out.stdout + out.stderr
    root = tmp_path / "root_${oc.env:HOME}"
    out = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *TINY],
        env={**os.environ, "CONVLAB_ROOT": str(root)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "CONVLAB_ROOT=" in one_line_error(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == [named.name]  # nothing created


@pytest.mark.slow
def test_an_interrupted_run_keeps_its_record_when_a_resume_is_refused(tmp_path):
    run_dir = tmp_path / "run"
    stopped = cli(
        *TINY,
        "trainer.max_epochs=2",
        f"hydra.run.dir={run_dir}",
        "+callbacks.stop._target_=tests.helpers.SignalAt",
        f"+callbacks.stop.signum={int(signal.SIGTERM)}",
        "+callbacks.stop.step=4",
    )
    assert stopped.returncode == 143
    before = unchanged(run_dir)
    refused = cli(f"resume={run_dir}", "optimizer.lr=0.5", STOP)
    assert "differs from the one its checkpoint was trained with" in one_line_error(refused)
    assert unchanged(run_dir) == before
