"""Checkpoints and run directories from someone else: nothing read from them is resolved by
OmegaConf, builds a network that their weights do not vouch for, or expands into gigabytes; each
is refused in one line."""

import subprocess
import sys
from functools import reduce
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from convlab.checkpoint_io import META_KEY, CheckpointMeta
from convlab.data.preprocess import Preprocess
from convlab.errors import ConvlabError
from convlab.inference import build_from_meta, load_classifier
from convlab.paths import CONF_DIR
from convlab.registry import build_net
from convlab.safe_yaml import MAX_BYTES
from convlab.train import run
from tests.helpers import (
    MODEL_CONFIGS,
    ROOT,
    SIZES,
    TINY,
    checkpoint_of,
    cli,
    one_line_error,
    unfinished_copy,
)

SECRET = "hunter2"
LEAKY = "${oc.env:CONVLAB_TEST_SECRET}"
SPY = "convlab_test_spy"
# each runs a resolver if OmegaConf ever meets it: reads the environment, fails on an unset
# variable, asks Hydra, decodes a value, calls the test's own resolver
INTERPOLATIONS = [
    LEAKY,
    "${oc.env:CONVLAB_TEST_UNSET}",
    "${hydra:runtime.cwd}",
    '${oc.decode:"[300000, 300]"}',
    f"${{{SPY}:}}",
]
# ten lols, nine levels: a billion of them, from a few hundred bytes
BILLION_LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{b}: &{b} [{', '.join([f'*{a}'] * 10)}]\n"
    for a, b in zip("abcdefgh", "bcdefghi", strict=True)
)


@pytest.fixture
def spy():
    """The calls of a resolver that only a checkpoint's strings name."""
    calls = []
    OmegaConf.register_new_resolver(SPY, lambda *args: calls.append(args) or 1)
    yield calls
    OmegaConf.clear_resolver(SPY)


def edited(finished: Path, out: Path, edit) -> Path:
    """A copy of the run's checkpoint with ``edit`` applied to its convlab metadata."""
    ckpt = torch.load(checkpoint_of(finished), weights_only=True)
    edit(ckpt[META_KEY])
    torch.save(ckpt, out)
    return out


def model(meta: dict) -> dict:
    return meta["config"]["model"]


def evaluated(ckpt: Path, run_dir: Path) -> str:
    """The one-line refusal of ``train=false ckpt_path=<ckpt>``, run in-process."""
    with pytest.raises(ConvlabError) as refused:
        run(overrides=[*TINY, "train=false", f"ckpt_path={ckpt}", f"hydra.run.dir={run_dir}"])
    return str(refused.value)


@pytest.mark.parametrize(
    "edit",
    [
        lambda m: model(m).update(hidden=[LEAKY, 84]),
        lambda m: model(m).update({LEAKY: 1}),  # a key
        lambda m: m["config"]["data"].update(mean=LEAKY),
        lambda m: m["config"].update(seed=LEAKY),
        lambda m: m["class_names"].__setitem__(0, LEAKY),
        lambda m: m["preprocess"].update(mean=LEAKY),
        lambda m: m.update(model_name=LEAKY),
    ],
    ids=["model value", "model key", "data", "seed", "class names", "preprocess", "model name"],
)
def test_an_interpolation_anywhere_in_a_checkpoint_is_shown_never_resolved(
    edit, finished, tmp_path, monkeypatch
):
    monkeypatch.setenv("CONVLAB_TEST_SECRET", SECRET)
    evil = edited(finished, tmp_path / "evil.ckpt", edit)
    for message in (
        str(pytest.raises(ConvlabError, load_classifier, evil).value),
        evaluated(evil, tmp_path / "eval"),
    ):
        assert repr(LEAKY) in message and SECRET not in message and "\n" not in message


@pytest.mark.parametrize("value", INTERPOLATIONS)
def test_train_false_and_resume_run_no_resolver_on_a_checkpoint(value, finished, tmp_path, spy):
    evil = edited(finished, tmp_path / "evil.ckpt", lambda m: model(m).update(hidden=[value]))
    assert repr(value) in evaluated(evil, tmp_path / "eval")
    unfinished = unfinished_copy(finished, tmp_path / "unfinished")
    (unfinished / "checkpoints" / "last.ckpt").write_bytes(evil.read_bytes())
    with pytest.raises(ConvlabError, match="OmegaConf would resolve") as refused:
        run(overrides=[f"resume={unfinished}"])
    assert repr(value) in str(refused.value)
    assert spy == []


def test_the_cli_shows_a_secret_reading_checkpoint_unresolved_in_one_line(
    finished, tmp_path, monkeypatch
):
    monkeypatch.setenv("CONVLAB_TEST_SECRET", SECRET)
    evil = edited(finished, tmp_path / "evil.ckpt", lambda m: model(m).update(hidden=[LEAKY]))
    out = cli(*TINY, "train=false", f"ckpt_path={evil}", f"hydra.run.dir={tmp_path / 'eval'}")
    assert repr(LEAKY) in one_line_error(out)
    assert SECRET not in out.stdout + out.stderr
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]


def test_resume_refuses_a_yaml_alias_bomb_unexpanded(finished, tmp_path):
    unfinished = unfinished_copy(finished, tmp_path / "unfinished")
    saved = unfinished / ".hydra" / "overrides.yaml"
    saved.write_text(BILLION_LAUGHS)
    with pytest.raises(
        ConvlabError, match=r"overrides.yaml is unreadable \(a YAML anchor or alias"
    ):
        run(overrides=[f"resume={unfinished}"])
    saved.write_text("".join(f"- seed={i}\n" for i in range(MAX_BYTES // 8)))
    with pytest.raises(ConvlabError, match=r"overrides.yaml is unreadable \(over 1024 KiB"):
        run(overrides=[f"resume={unfinished}"])


# what crafted metadata cannot do, and the refusal that says so
REFUSED = {
    "dense layers of 300000": (
        lambda m: model(m).update(hidden=[300000, 300]),
        r"weights do not fit its own model \(net.net.7.weight is \(120, 400\) in the file",
    ),
    "thousands of blocks": (
        lambda m: m["config"].update(
            model={"_target_": "convlab.models.resnet.ResNet", "arch": [[20000, 64]]}
        ),
        "does not build ResNet: it has more tensors than the checkpoint's 10 weights",
    ),
    "a list as _target_": (
        lambda m: model(m).update(_target_=["os.system"]),
        r"names \['os.system'\], which no config in conf/model/ registers",
    ),
    "a list as data": (
        lambda m: m["config"].update(data=[1]),
        "its saved config is not a mapping with model and data sections",
    ),
    "fewer class names than data.num_classes": (
        lambda m: m.update(class_names=["a", "b"]),
        "it names 2 classes and its data.num_classes is 10",
    ),
    "fewer class names than outputs": (
        lambda m: (m.update(class_names=["a", "b"]), m["config"]["data"].update(num_classes=2)),
        r"its network gives \(10,\) scores per image for its 2 class names",
    ),
    "7 channels": (
        lambda m: m["preprocess"].update(channels=7),
        "its preprocessing channels=7 is invalid",
    ),
    "std 0": (lambda m: m["preprocess"].update(std=0), "its preprocessing std=0 is invalid"),
    "two means for one channel": (
        lambda m: m["preprocess"].update(mean=[0.2, 0.2]),
        r"its preprocessing data.mean=\[0.2, 0.2\] has 2 numbers, one per channel, and data.ch",
    ),
    "no grey_to_rgb in version 2": (
        lambda m: m["preprocess"].pop("grey_to_rgb"),
        "its preprocessing grey_to_rgb=None is invalid",
    ),
    "a size of 0": (
        lambda m: m["preprocess"].update(size=[0, 28]),
        r"its preprocessing size=\[0, 28\] is invalid",
    ),
    "a size too small": (
        lambda m: m["preprocess"].update(size=[8, 8]),
        "its network does not take its 8x8 preprocessed images",
    ),
    "a missing value": (
        lambda m: m["config"]["data"].update(resize="???"),
        r"holds '\?\?\?', which OmegaConf would read as a missing value",
    ),
    "a tensor": (
        lambda m: model(m).update(hidden=torch.ones(2)),
        "at 'config.model.hidden' holds a Tensor, not plain data",
    ),
    "deep nesting": (
        lambda m: model(m).update(hidden=reduce(lambda inner, _: [inner], range(100), 1)),
        "its metadata nests over 32 deep",
    ),
}


@pytest.mark.parametrize("case", REFUSED)
def test_crafted_metadata_is_refused_in_one_line_before_anything_large_is_built(
    case, finished, tmp_path
):
    edit, message = REFUSED[case]
    evil = edited(finished, tmp_path / "evil.ckpt", edit)
    with pytest.raises(ConvlabError, match=message) as refused:
        load_classifier(evil)
    assert "\n" not in str(refused.value)
    assert "\n" not in evaluated(evil, tmp_path / "eval")


# measured in a fresh process, whose peak memory is its own
MEASURED_LOAD = """
import resource, sys
from convlab.errors import ConvlabError
from convlab.inference import load_classifier
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    load_classifier(sys.argv[1])
except ConvlabError as e:
    print(e)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
"""


def test_a_small_checkpoint_for_a_huge_network_is_refused_without_building_it(finished, tmp_path):
    """Built for real, ``hidden=[300000, 300]`` takes 1.5 GB before its weights are compared."""
    evil = edited(finished, tmp_path / "evil.ckpt", lambda m: model(m).update(hidden=[300000, 300]))
    out = subprocess.run(
        [sys.executable, "-c", MEASURED_LOAD, str(evil)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    message, grown_kib = out.stdout.strip().splitlines()[-2:]
    assert "weights do not fit its own model" in message, out.stderr
    assert int(grown_kib) < 500 * 1024


@pytest.mark.parametrize("name", MODEL_CONFIGS)
def test_every_model_config_is_checked_on_meta_and_built_as_saved(name):
    size = SIZES.get(name, 28)
    with initialize_config_dir(str(CONF_DIR), version_base=None):
        cfg = compose("train", overrides=["data=synthetic", f"model={name}", f"data.resize={size}"])
    saved = OmegaConf.to_container(cfg.model, resolve=True)
    net = build_net(saved)
    meta = CheckpointMeta(
        config={"model": saved, "data": {"num_classes": cfg.data.num_classes}},
        model_name=name,
        class_names=[str(i) for i in range(cfg.data.num_classes)],
        preprocess=Preprocess(size, 0.2, 0.35, cfg.data.channels).config,
    )
    weights = {f"net.{k}": v for k, v in net.state_dict().items()}
    ckpt = {META_KEY: meta.to_checkpoint(), "state_dict": weights}
    rebuilt, _ = build_from_meta(CheckpointMeta.from_checkpoint(ckpt, name), ckpt, name)
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {
        k: v.shape for k, v in net.state_dict().items()
    }
    assert all(p.device.type == "cpu" for p in rebuilt.parameters())
