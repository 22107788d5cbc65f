"""The command line as a user meets it: multiruns, and one-line errors with a non-zero exit."""

import contextlib
import json
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser

from convlab.resume import expand_resume
from tests.helpers import TINY, cli


@pytest.mark.slow
def test_four_run_multirun_through_the_cli(tmp_path):
    out = cli(
        "-m",
        *TINY,
        "model=lenet",
        "model.activation=sigmoid,relu",
        "model.pool=avg,max",
        f"hydra.sweep.dir={tmp_path}",
    )
    assert out.returncode == 0, out.stderr
    jobs = sorted(p.parent.name for p in tmp_path.glob("*/metrics.json"))
    assert len(jobs) == 4
    # job directories (and so TensorBoard run names) say the overrides that vary, nothing else
    assert jobs == [
        f"{n}_model.activation={a},model.pool={p}"
        for n, (a, p) in enumerate((a, p) for a in ("sigmoid", "relu") for p in ("avg", "max"))
    ]
    # the end of the sweep: its table, the best job's checkpoint, where to look
    assert "Sweep " in out.stdout and "4 finished" in out.stdout
    assert "its checkpoint: \"ckpt_path='" in out.stdout and "tensorboard --logdir" in out.stdout
    # HPARAMS: the swept keys first, a short list of columns
    columns = hparams_columns(tmp_path)
    assert columns[:2] == ["model.activation", "model.pool"] and len(columns) <= 20
    records = [json.loads(p.read_text()) for p in tmp_path.glob("*/metrics.json")]
    assert {tuple(o for o in r["overrides"] if o.startswith("model.")) for r in records} == {
        (f"model.activation={a}", f"model.pool={p}")
        for a in ("sigmoid", "relu")
        for p in ("avg", "max")
    }


def hparams_columns(logdir) -> list[str]:
    """The HPARAMS tab's columns, in order, from TensorBoard's own data route (as the browser
    asks for them), on a free local port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    board = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tensorboard.main",
            "--logdir",
            str(logdir),
            "--port",
            str(port),
            "--host",
            "127.0.0.1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/data/plugin/hparams/experiment",
        data=json.dumps({"experimentName": ""}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        for _ in range(120):  # it takes a few seconds to start and load the runs
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(request, timeout=5) as response:
                    infos = json.loads(response.read()).get("hparamInfos", [])
                if infos:
                    return [info["name"] for info in infos]
            time.sleep(0.5)
        raise AssertionError("TensorBoard served no HPARAMS experiment")
    finally:
        board.terminate()
        board.wait(timeout=30)


def one_line_error(out) -> str:
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    lines = [line for line in out.stderr.strip().splitlines() if line.startswith("convlab: error:")]
    assert len(lines) == 1, out.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["data.batch_size=0"], "data.batch_size=0 is invalid"),
        (["data.batch_size=abc"], "data.batch_size=abc is invalid"),
        (["optimizer.lr=-1"], "optimizer.lr=-1 is invalid"),
        (["data.resize=0"], "data.resize=0 is invalid"),
        (["model.activation=swish"], "model.activation=swish is unknown"),
        (["model.lr=0.1"], "model.lr is not a key of any model config; did you mean optimizer.lr"),
        (["model=vgg11"], "data.resize=28 is too small for model VGG"),
        (
            ["data=fashion_mnist", "data.root=/nonexistent", "data.system_dir=null"],
            "FashionMNIST not found",
        ),
        (["resume=/nonexistent/run"], "not a convlab run directory"),
        (
            ["train=false", "ckpt_path=/nonexistent.ckpt"],
            "checkpoint /nonexistent.ckpt does not exist",
        ),
    ],
)
def test_user_errors_are_one_line(tmp_path, args, message):
    out = cli(*TINY, f"hydra.run.dir={tmp_path / 'run'}", *args)
    assert message in one_line_error(out)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_unwritable_output_directory(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    out = cli(*TINY, f"hydra.run.dir={tmp_path / 'file' / 'run'}")
    assert "is not a directory" in one_line_error(out)
    assert (tmp_path / "file").read_text() == "not a directory"


def test_unknown_model_lists_the_choices():
    out = cli("model=resnet1000")
    assert out.returncode != 0
    assert "Could not find 'model/resnet1000'" in out.stderr
    assert "lenet_modern" in out.stderr and "resnet18" in out.stderr


def test_a_directory_holding_a_run_is_refused_before_hydra_writes_into_it(tmp_path):
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "config.yaml").write_text("the earlier run's record")
    (run / "metrics.json").write_text("{}")
    out = cli(*TINY, f"hydra.run.dir={run}")
    assert "holds a finished run, which is never changed" in one_line_error(out)
    assert (run / ".hydra" / "config.yaml").read_text() == "the earlier run's record"
    assert sorted(p.name for p in run.iterdir()) == [".hydra", "metrics.json"]


def test_resume_reads_the_saved_overrides_whatever_the_spelling(tmp_path):
    run = tmp_path / "lr=0.1,seed=1 it's"  # '=', ',' and a quote: unquoted, Hydra would misread it
    (run / ".hydra").mkdir(parents=True)
    # what Hydra records for a run that was itself resumed once
    saved = ["model=lenet", "hydra.run.dir='" + str(run).replace("'", "\\'") + "'"]
    (run / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(saved))
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "last.ckpt").write_bytes(b"")
    expanded = expand_resume([f'resume="{run}"', "trainer.max_epochs=5"])
    assert expanded[:2] == ["model=lenet", "trainer.max_epochs=5"]
    parsed = OverridesParser.create().parse_overrides(expanded[2:])
    assert [(o.key_or_group, o.value()) for o in parsed] == [
        ("hydra.mode", "RUN"),  # a sweep's job continues as one run
        ("hydra.run.dir", str(run)),
        ("resume", str(run)),
    ]
