"""Every conf/model config, built the way convlab builds it: its keys are the constructor's
arguments, and its class's min_input_size (1 where it has none) is the honest smallest
data.resize. A user's own model is held to that alone; convlab's own (``convlab.models.*``) also
refuse in convlab's words, and only the two with global pooling and no shrinking take any size
(tests/test_own_model.py runs these tests on a model written as the README says)."""

from functools import cache
from inspect import signature

import pytest
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf
from torch import nn

from convlab.models.layers import ModelConfigError
from convlab.paths import CONF_DIR
from convlab.registry import min_input_size as registry_min_input_size
from tests.helpers import MODEL_CONFIGS as CONFIGS

NUM_CLASSES = 7  # not 10, so a hard-coded class count shows
# the minima the configs carried by hand before the classes computed them
HAND_DERIVED = {
    "alexnet": 65,  # the 11x11 stride-4 conv and three 3x3 stride-2 pools leave one pixel
    "lenet": 12,
    "lenet_modern": 12,
    "nin": 67,  # as AlexNet, but its first conv is unpadded
    "resnet18": 1,  # padded strides and global average pooling
    "resnext": 1,
    "small_cnn": 18,  # three unpadded 3x3 convs and two 2x2 pools
    "vgg11": 32,  # five blocks, each halving
    "vgg_small": 32,
}


@cache
def model_config(name: str) -> DictConfig:
    with initialize_config_dir(str(CONF_DIR), version_base=None):
        return compose(overrides=[f"+model={name}"]).model


def arguments(name: str, channels: int, resize: int | list[int]) -> dict:
    """The config's constructor arguments with data.* filled in."""
    data = dict(channels=channels, grey_to_rgb=False, num_classes=NUM_CLASSES, resize=resize)
    cfg = OmegaConf.merge({"data": data, "model": model_config(name)})
    return OmegaConf.to_container(cfg.model, resolve=True)


def build(name: str, channels: int, resize: int | list[int]) -> nn.Module:
    """The class called with the config's keys, as convlab's registry builds a saved config."""
    kwargs = arguments(name, channels, resize)
    return get_class(kwargs.pop("_target_"))(**kwargs)


@cache
def min_input_size(name: str) -> int:
    return registry_min_input_size(arguments(name, 1, 28))


SHRINKING = [name for name in CONFIGS if min_input_size(name) > 1]
CONVLABS = [name for name in CONFIGS if model_config(name)._target_.startswith("convlab.models.")]


@pytest.mark.parametrize("name", CONFIGS)
def test_keys_are_the_constructor_arguments(name):
    cfg = model_config(name)
    arguments = set(signature(get_class(cfg._target_)).parameters)
    assert set(cfg) - {"_target_"} == arguments  # min_input_size is the class's, not a key
    assert {"in_channels", "num_classes"} <= arguments


def test_min_input_sizes_are_the_hand_derived_ones():
    assert {name: min_input_size(name) for name in HAND_DERIVED} == HAND_DERIVED


def test_only_global_pooling_without_shrinking_takes_any_size():
    """Of convlab's own: a new family that forgot its min_input_size shows here."""
    assert set(CONVLABS) - set(SHRINKING) == {"resnet18", "resnext"}


@pytest.mark.parametrize(("channels", "extra"), [(1, 0), (3, 5)], ids=["1ch-square", "3ch-wide"])
@pytest.mark.parametrize("name", CONFIGS)
def test_trains_at_min_input_size(name, channels, extra):
    size = min_input_size(name)
    net = build(name, channels, [size, size + extra])
    # a batch of two: BatchNorm in training mode needs more than one value per channel
    logits = net(torch.randn(2, channels, size, size + extra))
    assert logits.shape == (2, NUM_CLASSES)
    F.cross_entropy(logits, torch.tensor([0, NUM_CLASSES - 1])).backward()
    assert all(p.grad is not None for p in net.parameters())


def refusals(name: str) -> dict[tuple[int, int], Exception | None]:
    """What the network raises, if anything, for an input one pixel under its min_input_size in
    height and in width: models that size a dense layer refuse at construction, NiN in the
    forward pass."""
    size, raised = min_input_size(name), {}
    for h, w in [(size - 1, size), (size, size - 1)]:
        try:
            with torch.no_grad():
                build(name, 1, [h, w]).eval()(torch.zeros(1, 1, h, w))
        except Exception as e:  # the model's own exception, whatever its type
            raised[h, w] = e
        else:
            raised[h, w] = None
    return raised


@pytest.mark.parametrize("name", SHRINKING)
def test_refuses_one_pixel_less(name):
    """Else min_input_size is not the smallest size it takes, and validate refuses good ones."""
    assert None not in refusals(name).values()


@pytest.mark.parametrize("name", sorted(set(SHRINKING) & set(CONVLABS)))
def test_convlabs_own_refuse_one_pixel_less_in_their_own_words(name):
    size = min_input_size(name)
    for (h, w), refused in refusals(name).items():
        message = str(refused)
        assert isinstance(refused, ModelConfigError), message
        assert f"input {h}x{w} is too small" in message
        assert f"set data.resize={size} or more" in message and "\n" not in message


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"group_width": 16},
            "model.groups=16 and model.group_width=16: set exactly one of model.groups and "
            "model.group_width, the other null",
        ),
        ({"groups": None}, "model.groups=null and model.group_width=null: set exactly one of"),
        ({"groups": 3}, "model.groups=3 does not divide a bottleneck of 64 channels"),
        ({"groups": None, "group_width": 0}, "model.group_width=0 is invalid"),
    ],
    ids=["both", "neither", "groups-not-a-divisor", "zero"],
)
def test_resnext_takes_exactly_one_of_groups_and_group_width(overrides, message):
    kwargs = arguments("resnext", 1, 32)
    cls = get_class(kwargs.pop("_target_"))
    with pytest.raises(ModelConfigError) as refused:
        cls(**{**kwargs, **overrides})
    assert message in str(refused.value)


def test_resnext_group_width_counts_channels_per_group():
    kwargs = arguments("resnext", 1, 32)
    cls = get_class(kwargs.pop("_target_"))
    assert (kwargs["groups"], kwargs["group_width"]) == (16, None)  # the config: 16 groups

    def groups(net: nn.Module) -> list[int]:
        return [m.groups for m in net.modules() if isinstance(m, nn.Conv2d) and m.groups > 1]

    with torch.device("meta"):
        assert groups(cls(**kwargs)) == [16] * 8  # the 3x3 conv of each of the 8 blocks
        # 16 channels per group: 64 // 16 = 4 groups in the first stage, 512 // 16 = 32 in the last
        by_width = cls(**{**kwargs, "groups": None, "group_width": 16})
        assert groups(by_width) == [4, 4, 8, 8, 16, 16, 32, 32]
