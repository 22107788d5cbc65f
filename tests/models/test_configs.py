"""Every conf/model config, built the way convlab builds it: its keys are the constructor's
arguments, and its min_input_size is the honest smallest data.resize."""

from functools import cache
from inspect import signature
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from convlab.errors import ConvlabError

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
CONFIGS = sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml"))
NUM_CLASSES = 7  # not 10, so a hard-coded class count shows


@cache
def model_config(name: str) -> DictConfig:
    with initialize_config_dir(str(CONF_DIR), version_base=None):
        return compose(overrides=[f"+model={name}"]).model


def build(name: str, channels: int, resize: int | list[int]) -> nn.Module:
    """data.* filled in, min_input_size popped (it is convlab's, not the model's), then Hydra."""
    data = {"channels": channels, "num_classes": NUM_CLASSES, "resize": resize}
    cfg = OmegaConf.merge({"data": data, "model": model_config(name)})
    kwargs = OmegaConf.to_container(cfg.model, resolve=True)
    del kwargs["min_input_size"]
    return instantiate(kwargs)


@pytest.mark.parametrize("name", CONFIGS)
def test_keys_are_the_constructor_arguments(name):
    cfg = model_config(name)
    assert isinstance(cfg.min_input_size, int) and cfg.min_input_size >= 1
    arguments = set(signature(get_class(cfg._target_)).parameters)
    assert set(cfg) - {"_target_", "min_input_size"} == arguments
    assert {"in_channels", "num_classes"} <= arguments


@pytest.mark.parametrize(("channels", "extra"), [(1, 0), (3, 5)], ids=["1ch-square", "3ch-wide"])
@pytest.mark.parametrize("name", CONFIGS)
def test_trains_at_min_input_size(name, channels, extra):
    size = model_config(name).min_input_size
    net = build(name, channels, [size, size + extra])
    # a batch of two: BatchNorm in training mode needs more than one value per channel
    logits = net(torch.randn(2, channels, size, size + extra))
    assert logits.shape == (2, NUM_CLASSES)
    F.cross_entropy(logits, torch.tensor([0, NUM_CLASSES - 1])).backward()
    assert all(p.grad is not None for p in net.parameters())


@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors")  # LeNet's Linear(0, 120)
@pytest.mark.parametrize("name", CONFIGS)
def test_refuses_one_pixel_less(name):
    size = model_config(name).min_input_size
    if size == 1:
        pytest.skip("no dense layer and no size shrinks to zero: every input size works")
    for h, w in [(size - 1, size), (size, size - 1)]:
        # models that size a dense layer refuse at construction (Hydra wraps the error), the
        # others in the forward pass
        with pytest.raises((InstantiationException, RuntimeError)) as refused, torch.no_grad():
            build(name, 1, [h, w]).eval()(torch.zeros(1, 1, h, w))
        error = refused.value
        if isinstance(error, InstantiationException):
            assert isinstance(error.__cause__, ConvlabError)
