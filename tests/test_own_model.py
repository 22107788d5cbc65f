"""A model of your own, as the README's "Add your own model" says: the model tests hold for it,
it trains when the command line names it, and its checkpoints load wherever its class imports, by
one rule: a checkpoint builds only a class that a config in conf/model/ names or that the caller
allows by name."""

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from convlab.classifier import Classifier
from convlab.errors import ConvlabError
from convlab.inference import load_classifier
from convlab.record import RunRecord
from convlab.registry import build_net
from convlab.train import run
from tests.helpers import ROOT, TINY, checkpoint_of, cli, printed_command

OWN = "ownnets.ScaledLeNet"  # a class outside convlab that no config in conf/model/ names
OWN_MODULE = '''
from convlab.models.lenet import LeNet


class ScaledLeNet(LeNet):
    """LeNet with doubled logits: LeNet's arguments, so model=lenet's keys build it."""

    def forward(self, x):
        return 2 * super().forward(x)
'''
NOT_REGISTERED = f"names '{OWN}', which no config in conf/model/ registers and nothing allows"


@pytest.fixture
def importable(tmp_path, monkeypatch) -> Iterator[None]:
    """``ownnets`` importable in this process and in the runs a test starts (PYTHONPATH)."""
    package = tmp_path / "own"
    package.mkdir()
    (package / "ownnets.py").write_text(OWN_MODULE)
    monkeypatch.syspath_prepend(str(package))
    paths = [str(package), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))
    yield
    sys.modules.pop("ownnets", None)


@pytest.fixture
def own_checkpoint(finished, tmp_path) -> Path:
    """A finished run's checkpoint whose model config names the own class (same weights)."""
    ckpt = torch.load(checkpoint_of(finished), weights_only=True)
    ckpt["convlab"]["config"]["model"]["_target_"] = OWN
    torch.save(ckpt, tmp_path / "own.ckpt")
    return tmp_path / "own.ckpt"


def test_a_class_named_on_the_command_line_trains_and_its_printed_commands_run(
    importable, tmp_path, monkeypatch
):
    """The command line is trusted: it trains the class it names. The commands the run prints
    then say what they need, resume the class and evaluate-again ``allow=[...]``, and pasted
    verbatim they finish the run and evaluate its checkpoint."""
    monkeypatch.setenv("CONVLAB_ROOT", str(tmp_path))  # where the evaluation's run directory goes
    run_dir = tmp_path / "run"
    with pytest.raises(RuntimeError, match="simulated"):
        run(
            overrides=[
                *TINY,
                "trainer.max_epochs=2",
                "model=lenet",
                f"model._target_={OWN}",
                "model.activation=relu",
                f"hydra.run.dir={run_dir}",
                "+callbacks.crash._target_=tests.helpers.CrashAt",
                "+callbacks.crash.epoch=1",
            ]
        )
    resume = json.loads((run_dir / "failure.json").read_text())["resume"]
    assert f"model._target_={OWN}" in resume  # it names code: never taken from the record
    resumed = cli(*printed_command(resume, prefix=""))
    assert resumed.returncode == 0, resumed.stderr
    evaluate = printed_command(resumed.stdout, "evaluate again: ")
    assert f"allow=[{OWN}]" in evaluate
    evaluated = cli(*evaluate)
    assert evaluated.returncode == 0, evaluated.stderr
    (evaluation,) = (tmp_path / "outputs" / "evals").glob("*/metrics.json")
    trained, again = RunRecord.read(run_dir / "metrics.json"), RunRecord.read(evaluation)
    assert trained.model["class"] == again.model["class"] == "ScaledLeNet"
    assert again.metrics["test/acc"] == pytest.approx(trained.metrics["test/acc"], abs=1e-6)


def test_its_checkpoint_builds_only_where_the_caller_allows_its_class(
    importable, own_checkpoint, tmp_path
):
    for allow in ((), ["ownnets.Other"]):  # unasked, or another class allowed: refused
        with pytest.raises(ConvlabError, match=NOT_REGISTERED):
            load_classifier(own_checkpoint, allow=allow)
    model = load_classifier(own_checkpoint, allow=[OWN])
    assert type(model.net).__name__ == "ScaledLeNet"
    assert len(model.predict(torch.zeros(2, 28, 28, dtype=torch.uint8))) == 2
    evaluate = [*TINY, "train=false", f"ckpt_path={own_checkpoint}"]
    with pytest.raises(ConvlabError, match=NOT_REGISTERED):
        run(overrides=[*evaluate, f"hydra.run.dir={tmp_path / 'refused'}"])
    record = run(overrides=[*evaluate, f"allow=[{OWN}]", f"hydra.run.dir={tmp_path / 'e'}"])
    assert record.model["class"] == "ScaledLeNet"


def test_where_its_class_does_not_import_the_checkpoint_says_so_in_one_line(
    own_checkpoint, monkeypatch
):
    """Loaded on a machine without the package: one line naming it, no ModuleNotFoundError."""
    monkeypatch.delitem(sys.modules, "ownnets", raising=False)
    with pytest.raises(ConvlabError) as no_module:
        load_classifier(own_checkpoint, allow=[OWN])
    gone = "convlab.models.lenet.Gone"
    with pytest.raises(ConvlabError) as no_class:
        build_net({"_target_": gone}, allow=[gone])
    missing, absent = str(no_module.value), str(no_class.value)
    assert f"names '{OWN}', which cannot be imported here (No module named 'ownnets')" in missing
    assert f"names '{gone}', which cannot be imported here (module " in absent
    assert "\n" not in missing + absent


def test_allowing_a_name_allows_only_a_network_class(tmp_path):
    """allow= names classes to build, never any callable: a config naming os.system with a
    command, allowed by name, is refused before anything is called."""
    touched = tmp_path / "touched"
    config = {"_target_": "os.system", "command": f"touch {touched}"}
    with pytest.raises(ConvlabError, match="names 'os.system', which is not a torch.nn.Module"):
        build_net(config, allow=["os.system"])
    assert not touched.exists()


def test_lightnings_load_from_checkpoint_points_to_load_classifier(finished):
    """What a Lightning user tries first: one line, never a TypeError from Classifier()."""
    with pytest.raises(ConvlabError, match=r"use convlab\.inference\.load_classifier\(path\)"):
        Classifier.load_from_checkpoint(checkpoint_of(finished))


# the README's two kinds of model, in a package of the user's own under src/: one takes any size
# (global pooling, no min_input_size), one says its smallest input and refuses less its own way
README_MODELS = """
from torch import nn


class MyNet(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, width: int = 8):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes),
        )

    def forward(self, x):
        return self.net(x)


class MyDenseNet(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, image_size, width: int = 8):
        super().__init__()
        h, w = (image_size, image_size) if isinstance(image_size, int) else image_size
        if min(h, w) < 5:
            raise ValueError(f"MyDenseNet needs 5x5 images, got {h}x{w}")
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, width, 5), nn.ReLU(), nn.Flatten(),
            nn.Linear(width * (h - 4) * (w - 4), num_classes),
        )

    @classmethod
    def min_input_size(cls, **config) -> int:
        return 5

    def forward(self, x):
        return self.net(x)
"""
README_CONFIGS = {
    "mynet": "_target_: mynets.mynet.MyNet\nwidth: 8\n",
    "mynet_dense": "_target_: mynets.mynet.MyDenseNet\nimage_size: ${data.resize}\nwidth: 8\n",
}


@pytest.mark.slow
def test_a_model_added_as_the_readme_says_passes_the_model_tests(tmp_path):
    """In a copy of the repository, with two models added there (a module of a package of the
    user's own, a config each): tests/models passes, and runs its generic tests on them."""
    copy = tmp_path / "repo"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for part in ("src/convlab", "conf", "tests"):
        shutil.copytree(ROOT / part, copy / part, ignore=ignore)
    for part in ("train.py", "pyproject.toml"):
        shutil.copy(ROOT / part, copy / part)
    (copy / "src" / "mynets").mkdir()
    (copy / "src" / "mynets" / "mynet.py").write_text(README_MODELS)
    head = "in_channels: ${data.channels}\nnum_classes: ${data.num_classes}\n"
    for name, body in README_CONFIGS.items():
        (copy / "conf" / "model" / f"{name}.yaml").write_text(head + body)
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "0", "-v", "tests/models"],
        cwd=copy,
        env={**os.environ, "PYTHONPATH": str(copy / "src")},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout[-3000:]
    for test in (
        "test_keys_are_the_constructor_arguments[mynet]",
        "test_trains_at_min_input_size[mynet-3ch-wide]",
        "test_trains_at_min_input_size[mynet_dense-1ch-square]",
        "test_refuses_one_pixel_less[mynet_dense]",
    ):
        assert f"{test} PASSED" in out.stdout, test
    assert "in_their_own_words[mynet" not in out.stdout  # convlab's wording: its own models only
