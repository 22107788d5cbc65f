"""What convlab promises about data it did not write: checkpoints never run code, evaluation equals
the run, a finished run is never changed, and signals never report success."""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convlab.checkpoint_io import CheckpointMeta, load_checkpoint
from convlab.errors import ConvlabError
from convlab.inference import load_classifier
from convlab.record import RunRecord
from convlab.registry import build_net, model_classes
from convlab.train import run
from tests.helpers import (
    MODEL_CONFIGS,
    ROOT,
    SIZES,
    TINY,
    checkpoint_of,
    cli,
    needs_real_data,
    one_line_error,
    tree_state,
    unfinished_copy,
)

MARKER_CODE = "import pathlib; pathlib.Path('{marker}').write_text('ran')\n"


def crafted(ckpt_path: Path, out: Path, marker: Path) -> Path:
    """A copy of a real checkpoint whose model config would, if instantiated by Hydra, write a
    file of Python code: the attack a weights_only load alone does not stop."""
    ckpt = torch.load(ckpt_path, weights_only=True)
    ckpt["convlab"]["config"]["model"] = {
        "_target_": "shutil.copyfileobj",
        "_args_": [
            {"_target_": "io.StringIO", "_args_": [MARKER_CODE.format(marker=marker)]},
            {"_target_": "builtins.open", "_args_": [str(marker), "w", 1]},
        ],
    }
    torch.save(ckpt, out)
    return out


def test_a_crafted_checkpoint_runs_nothing_anywhere(finished, tmp_path):
    marker = tmp_path / "marker.py"
    evil = crafted(checkpoint_of(finished), tmp_path / "evil.ckpt", marker)
    with pytest.raises(ConvlabError, match="names 'shutil.copyfileobj', which no config"):
        load_classifier(evil)
    # every class it names allowed: its Hydra keys and nested targets are still not plain values
    with pytest.raises(ConvlabError, match="holds '_args_'.*which is not a plain value"):
        load_classifier(evil, allow=["shutil.copyfileobj", "io.StringIO", "builtins.open"])
    out = cli(*TINY, "train=false", f"ckpt_path={evil}", f"hydra.run.dir={tmp_path / 'eval'}")
    assert "which no config in conf/model/ registers" in one_line_error(out)
    # resume: the crafted file as an unfinished run's last.ckpt
    unfinished = tmp_path / "unfinished"
    shutil.copytree(finished, unfinished)
    (unfinished / "metrics.json").unlink()
    shutil.copy(evil, unfinished / "checkpoints" / "last.ckpt")
    with pytest.raises(ConvlabError, match="differs from the one its checkpoint was trained"):
        run(overrides=[f"resume={unfinished}"])
    assert not marker.exists()


# model configs as an attacker might write them: registry classes and others, nested targets,
# Hydra's special keys, non-plain values
_names = st.sampled_from(
    [*sorted(model_classes()), "builtins.open", "os.system", "shutil.rmtree", "io.StringIO"]
)
_plain = st.one_of(st.none(), st.booleans(), st.integers(-3, 300), st.floats(), st.text(max_size=8))
_values = st.recursive(
    _plain,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.fixed_dictionaries(
            {"_target_": _names}, optional={"_args_": st.lists(inner, max_size=2)}
        ),
    ),
    max_leaves=6,
)
_keys = st.sampled_from(
    [
        "in_channels",
        "num_classes",
        "image_size",
        "channels",
        "hidden",
        "activation",
        "pool",
        "_args_",
        "_partial_",
        "_call_",
        "_recursive_",
        "arch",
        "groups",
        "dropout",
    ]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(target=_names, kwargs=st.dictionaries(_keys, _values, max_size=4))
def test_fuzzed_model_configs_build_registry_classes_or_are_refused(target, kwargs):
    with tempfile.TemporaryDirectory() as cwd, pytest.MonkeyPatch.context() as mp:
        mp.chdir(cwd)  # a relative file written by anything called would land here, and be seen
        try:
            net = build_net({"_target_": target, **kwargs})
        except ConvlabError:
            pass
        else:
            assert f"{type(net).__module__}.{type(net).__name__}" in model_classes()
        assert not os.listdir(cwd)


@pytest.mark.parametrize("seed", range(5))
def test_files_that_are_not_checkpoints_are_named_as_such(tmp_path, seed):
    """Never "holds pickled Python objects": that would send the user hunting for code."""
    path = tmp_path / "x.ckpt"
    for content in (b"hello, not a checkpoint\n", random.Random(seed).randbytes(2000)):
        path.write_bytes(content)
        with pytest.raises(ConvlabError, match=r"is not a (PyTorch|readable) checkpoint"):
            load_checkpoint(path)


def test_checkpoint_metadata_is_checked(finished, tmp_path):
    ckpt = torch.load(checkpoint_of(finished), weights_only=True)
    assert CheckpointMeta.from_checkpoint(ckpt, "x").model_name == "lenet"
    with pytest.raises(ConvlabError, match="has checkpoint format 99, this convlab reads 1"):
        CheckpointMeta.from_checkpoint({**ckpt, "convlab": {**ckpt["convlab"], "version": 99}}, "x")
    with pytest.raises(ConvlabError, match="was not saved by convlab"):
        CheckpointMeta.from_checkpoint({"state_dict": ckpt["state_dict"]}, "x")
    augment = {**ckpt["convlab"]["preprocess"], "augment": {"_target_": "os.system"}}
    with pytest.raises(ConvlabError, match="not a plain value"):
        CheckpointMeta.from_checkpoint(
            {**ckpt, "convlab": {**ckpt["convlab"], "preprocess": augment}}, "x"
        )


def test_predict_takes_stored_bytes_only(finished):
    model = load_classifier(checkpoint_of(finished))
    images = torch.randint(0, 256, (4, 28, 28), dtype=torch.uint8)
    assert len(model.predict(images)) == 4
    with pytest.raises(ConvlabError, match="takes uint8 images"):
        model.predict(images.float() / 255)


@pytest.mark.parametrize("model", MODEL_CONFIGS)
def test_evaluating_a_checkpoint_gives_its_runs_test_accuracy(model, tmp_path):
    """Evaluated with the default command line, whatever the network it was trained as."""
    size = SIZES.get(model, 28)
    batches = ["data.batch_size=8", "data.eval_batch_size=16", "trainer.limit_train_batches=2"]
    trained = run(
        overrides=[
            *TINY,
            *batches,
            f"model={model}",
            f"data.resize={size}",
            f"hydra.run.dir={tmp_path / 'train'}",
        ]
    )
    evaluated = run(
        overrides=[
            *TINY,
            "data.eval_batch_size=16",
            "train=false",
            f"ckpt_path={trained.paths['checkpoint']}",
            f"hydra.run.dir={tmp_path / 'eval'}",
        ]
    )
    assert evaluated.model["params"] == trained.model["params"]
    for key in ("test/acc", "test/loss"):
        assert evaluated.metrics[key] == pytest.approx(trained.metrics[key], abs=1e-6)


def test_evaluation_refuses_overrides_that_change_the_network(finished, tmp_path):
    ckpt = checkpoint_of(finished)
    base = [*TINY, "train=false", f"ckpt_path={ckpt}", f"hydra.run.dir={tmp_path / 'e'}"]
    with pytest.raises(ConvlabError, match="trained as model=lenet, not model=lenet_modern"):
        run(overrides=[*base, "model=lenet_modern"])
    with pytest.raises(ConvlabError, match=r"model.activation \('relu' here, 'sigmoid' in the"):
        run(overrides=[*base, "model=lenet", "model.activation=relu"])
    with pytest.raises(ConvlabError, match=r"data.resize \(32 here, 28 in the checkpoint\)"):
        run(overrides=[*base, "data.resize=32"])
    same = run(overrides=[*base[:-1], "model=lenet", f"hydra.run.dir={tmp_path / 'same'}"])
    assert same.model["name"] == "lenet"


@pytest.mark.slow
@needs_real_data
def test_a_sigmoid_lenet_evaluates_on_the_real_data_as_its_run_recorded(tmp_path):
    common = ["trainer.enable_progress_bar=false", "callbacks.dashboards=null"]
    trained = run(
        overrides=[
            *common,
            "model=lenet",
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=60",
            f"hydra.run.dir={tmp_path / 't'}",
        ]
    )
    out = cli(
        *common,
        "train=false",
        f"ckpt_path={trained.paths['checkpoint']}",
        f"hydra.run.dir={tmp_path / 'e'}",
    )
    assert out.returncode == 0, out.stderr
    evaluated = RunRecord.read(tmp_path / "e" / "metrics.json")
    assert evaluated.metrics["test/acc"] == pytest.approx(trained.metrics["test/acc"], abs=1e-6)
    assert 0.1 < evaluated.metrics["test/acc"] < 1.0


def test_nothing_changes_a_finished_run(finished, tmp_path, monkeypatch):
    before = tree_state(finished)
    link = tmp_path / "link"
    link.symlink_to(finished)
    monkeypatch.chdir(finished.parent)
    for spelling in (
        f"hydra.run.dir={finished}",
        f"++hydra.run.dir='{finished}'",
        f"hydra.run.dir={link}",
        "hydra.run.dir=run",  # relative
        f"paths.log_dir={finished.parent}",  # with an interpolated run dir below:
    ):
        extra = ["hydra.run.dir=${paths.log_dir}/run"] if spelling.startswith("paths.") else []
        with pytest.raises(ConvlabError, match="holds a finished run, which is never changed"):
            run(overrides=[*TINY, "model=lenet", spelling, *extra])
    with pytest.raises(ConvlabError, match="is finished"):
        run(overrides=[f"resume={finished}"])
    with pytest.raises(ConvlabError, match="is finished and is never changed"):
        run(overrides=[f"resume={finished}", "trainer.max_epochs=2"])
    assert tree_state(finished) == before


def test_the_cli_refuses_a_finished_run_before_hydra_writes(finished):
    before = tree_state(finished)
    out = cli(*TINY, f"hydra.run.dir={finished}")
    assert "holds a finished run" in one_line_error(out)
    resumed = cli(f"resume={finished}")
    assert resumed.returncode == 0 and "nothing to resume" in resumed.stdout
    assert tree_state(finished) == before


def test_resume_trusts_only_plain_recorded_overrides(finished, tmp_path):
    edited = unfinished_copy(finished, tmp_path / "edited")
    saved = edited / ".hydra" / "overrides.yaml"
    recorded = yaml.safe_load(saved.read_text())
    saved.write_text(yaml.safe_dump([*recorded, "optimizer._target_=torch.optim.RMSprop"]))
    with pytest.raises(ConvlabError, match="optimizer._target_=torch.optim.RMSprop names code"):
        run(overrides=[f"resume={edited}"])
    saved.write_text(yaml.safe_dump([*recorded, "allow=[os.system]"]))  # classes to build
    with pytest.raises(ConvlabError, match=r"allow=\[os.system\] names code"):
        run(overrides=[f"resume={edited}"])
    saved.write_text(yaml.safe_dump([*recorded, "hydra.job.chdir=true"]))
    with pytest.raises(ConvlabError, match="sets Hydra itself"):
        run(overrides=[f"resume={edited}"])
    saved.write_text(yaml.safe_dump([*recorded, "model=../../etc"]))
    with pytest.raises(ConvlabError, match="conf/model/ does not have"):
        run(overrides=[f"resume={edited}"])
    saved.write_text("{not: [a list")
    with pytest.raises(ConvlabError, match="overrides.yaml is unreadable"):
        run(overrides=[f"resume={edited}"])
    # a rewritten record that composes another run is caught against the checkpoint's config
    saved.write_text(yaml.safe_dump([o for o in recorded if o != "model=lenet"]))
    with pytest.raises(ConvlabError, match=r"model.activation \('relu' here, 'sigmoid'"):
        run(overrides=[f"resume={edited}"])


def test_resume_refuses_another_run_length(finished, tmp_path):
    """A one-cycle schedule's saved state holds the run's length: more epochs would step past it."""
    unfinished = unfinished_copy(finished, tmp_path / "unfinished")
    with pytest.raises(ConvlabError, match=r"trainer.max_epochs \(3 here, 1 in the checkpoint\)"):
        run(overrides=[f"resume={unfinished}", "trainer.max_epochs=3"])
    with pytest.raises(ConvlabError, match=r"trainer.limit_train_batches \(5 here, 3 in"):
        run(overrides=[f"resume={unfinished}", "trainer.limit_train_batches=5"])


def test_accepted_values_that_cannot_work_are_refused_before_training(idx_dir, tmp_path):
    cases = {
        "data.channels=2": "data.channels=2 is invalid: expected 1 or 3",
        "optimizer.lr=inf": "optimizer.lr=inf is invalid",
        "data.std=inf": "data.std=inf is invalid",
        "data.mean=nan": "data.mean=nan is invalid",
        "seed=-1": "seed=-1 is invalid",
        f"seed={2**32}": f"seed={2**32} is invalid",
        "trainer.limit_train_batches=0": "trainer.limit_train_batches=0 is invalid",
    }
    for override, message in cases.items():
        with pytest.raises(ConvlabError, match=message):
            run(overrides=[*TINY, override, f"hydra.run.dir={tmp_path / 'r'}"])
        assert not (tmp_path / "r").exists()  # a single run that never started leaves nothing
    for classes in (20, 201):
        with pytest.raises(ConvlabError, match=f"num_classes={classes} does not match Fashion"):
            run(
                overrides=[
                    *TINY,
                    "data=fashion_mnist",
                    f"data.root={idx_dir}",
                    f"data.num_classes={classes}",
                    f"hydra.run.dir={tmp_path / 'r'}",
                ]
            )


def test_unwritable_roots_are_one_line(tmp_path):
    (tmp_path / "file").write_text("x")
    env = {"CONVLAB_ROOT": str(tmp_path / "file" / "root")}
    out = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *TINY],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert "paths.root_dir=" in one_line_error(out) and "or CONVLAB_ROOT" in out.stderr


def test_a_read_only_filesystem_is_one_line(tmp_path, monkeypatch):
    from convlab import rundir

    monkeypatch.setattr(rundir.os, "access", lambda path, mode: False)  # as EROFS answers
    with pytest.raises(ConvlabError, match="is not writable; choose another hydra.run.dir"):
        rundir.check_output_dirs([f"hydra.run.dir={tmp_path / 'x'}"])


@pytest.mark.slow
def test_two_processes_on_one_run_directory_one_runs(tmp_path):
    run_dir = tmp_path / "run"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "train.py"),
                *TINY,
                f"seed={seed}",
                f"hydra.run.dir={run_dir}",
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in (1, 2)
    ]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    assert sorted(code == 0 for code, _ in results) == [False, True], results
    winner = [seed for seed, (code, _) in zip((1, 2), results, strict=True) if code == 0][0]
    loser_error = [err for code, err in results if code != 0][0]
    assert "in use by another running convlab process" in loser_error or "holds" in loser_error
    record = RunRecord.read(run_dir / "metrics.json")
    assert f"seed={winner}" in record.overrides
    assert f"seed={winner}" in yaml.safe_load((run_dir / ".hydra" / "overrides.yaml").read_text())
    assert not (run_dir / "failure.json").exists()


@pytest.mark.slow
def test_sigint_exits_130_and_a_sweep_stops_at_the_interrupted_job(tmp_path):
    sweep = tmp_path / "sweep"
    out = cli(
        "-m",
        *TINY,
        "seed=0,1,2",
        "+callbacks.stop._target_=tests.helpers.SignalAt",
        f"+callbacks.stop.signum={int(signal.SIGINT)}",
        "+callbacks.stop.step=2",
        "trainer.max_epochs=1",
        f"hydra.sweep.dir={sweep}",
    )
    assert out.returncode == 130, out.stderr
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir())
    assert len(jobs) == 1 and jobs[0].startswith("0_")  # jobs 1 and 2 never started
    failure = json.loads((sweep / jobs[0] / "failure.json").read_text())
    assert failure["status"] == "interrupted" and failure["error"] == "interrupted by SIGINT"
    assert "1 interrupted, 2 never started" in out.stderr  # the sweep's table, as it stopped


@pytest.mark.slow
def test_a_failed_sweep_job_keeps_its_failure_record(tmp_path):
    sweep = tmp_path / "sweep"
    out = cli("-m", *TINY, "optimizer.lr=-1,0.001", f"hydra.sweep.dir={sweep}")
    assert out.returncode == 1 and "1 job(s) of the sweep failed" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr
    assert "Sweep " in out.stdout and "| failed (optimizer.lr=-1 is invalid" in out.stdout
    failed = [p for p in sweep.glob("*/failure.json")]
    assert len(failed) == 1 and "optimizer.lr=-1 is invalid" in failed[0].read_text()
    assert len(list(sweep.glob("*/metrics.json"))) == 1
    # the same sweep directory again: refused before any job, nothing rewritten
    before = tree_state(sweep)
    again = cli("-m", *TINY, "optimizer.lr=-1,0.001", f"hydra.sweep.dir={sweep}")
    assert "already holds 2 job(s) of a sweep" in one_line_error(again)
    assert tree_state(sweep) == before


@pytest.mark.slow
def test_two_nodes_share_one_run_directory_and_match_one_node(tmp_path):
    """Two processes as two nodes of one GPU-less cluster (gloo on 127.0.0.1), NODE_RANK 0 and 1,
    as SLURM or torchrun would start them, sharing hydra.run.dir."""
    common = [*TINY, "trainer=ddp_cpu"]
    single = cli(*common, f"hydra.run.dir={tmp_path / 'one_node'}")
    assert single.returncode == 0, single.stderr
    env = {
        **os.environ,
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": "29517",
        "WORLD_SIZE": "2",
        "PYTHONWARNINGS": "ignore",
    }
    nodes = [
        subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "train.py"),
                *common,
                "trainer.num_nodes=2",
                "trainer.devices=1",
                f"hydra.run.dir={tmp_path / 'two_nodes'}",
            ],
            cwd=ROOT,
            env={**env, "NODE_RANK": str(rank)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in (0, 1)
    ]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in nodes]
    assert [code for code, _ in results] == [0, 0], results
    a, b = (RunRecord.read(tmp_path / d / "metrics.json") for d in ("one_node", "two_nodes"))
    for key, value in a.metrics.items():
        assert b.metrics[key] == pytest.approx(value, abs=1e-6), key

    def files(d: Path) -> list[str]:  # event files are named by time and process: by kind here
        return sorted(p.name.split(".")[0] if "tfevents" in p.name else p.name for p in d.iterdir())

    assert files(tmp_path / "two_nodes") == files(tmp_path / "one_node")  # rank 1 wrote nothing


def test_an_unfinished_run_is_resumed_never_trained_over(finished, tmp_path):
    unfinished = unfinished_copy(finished, tmp_path / "unfinished")
    before = tree_state(unfinished)
    with pytest.raises(ConvlabError, match="already holds a run; continue it with python train"):
        run(overrides=[*TINY, f"hydra.run.dir={unfinished}"])
    assert tree_state(unfinished) == before
