"""Networks built from data (a checkpoint's saved config) without running anything it names.

A checkpoint may come from anyone. Its model config is therefore never handed to Hydra's
``instantiate`` (whose blocklist is best-effort, not a security boundary): the class must be one
that a config in ``conf/model/`` names or that the caller allows by name (``allow``), and every
argument a plain value. A user's own ``conf/model/<name>.yaml`` registers its class; there is no
second list to keep.
"""

import importlib
import math
from collections.abc import Collection
from contextlib import AbstractContextManager, nullcontext
from functools import cache
from typing import TYPE_CHECKING

from omegaconf import OmegaConf

from convlab.errors import ConvlabError
from convlab.paths import conf_dir

if TYPE_CHECKING:  # torch is imported only when a network is built: the CLI answers --help fast
    from torch import nn

# a key model configs carried before the classes computed their smallest input: checkpoints saved
# then still hold it, and it is no constructor argument
_CONVLAB_KEYS = ("min_input_size",)


@cache
def model_classes() -> frozenset[str]:
    """The ``_target_`` of every config in ``conf/model/``: the classes data may name unasked."""
    targets = set()
    for path in sorted((conf_dir() / "model").glob("*.yaml")):
        target = OmegaConf.load(path).get("_target_")  # configs with only `defaults:` inherit one
        if isinstance(target, str):
            targets.add(target)
    return frozenset(targets)


def is_plain(value) -> bool:
    """None, a bool, an int, a finite float, a string, or a list of plain values: data that
    cannot name code."""
    if value is None or isinstance(value, bool | int):
        return True
    if isinstance(value, str):  # an interpolation would be resolved, so it is not plain
        return "${" not in value
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list | tuple):
        return all(is_plain(v) for v in value)
    return False


def check_plain_dict(values, what: str) -> dict:
    """A dict of plain values with ordinary keys (no Hydra ``_..._`` keys), or a ConvlabError."""
    if not isinstance(values, dict):
        raise ConvlabError(f"{what} is not a mapping of plain values; it was not saved by convlab")
    for key, value in values.items():
        if not isinstance(key, str) or key.startswith("_") or not is_plain(value):
            raise ConvlabError(
                f"{what} holds {key!r}: {value!r}, which is not a plain value; refusing it "
                "(only checkpoints saved by convlab load)"
            )
    return values


def constructor_args(model_cfg: dict) -> dict:
    """The model config as constructor arguments: an old checkpoint's min_input_size is dropped."""
    return {k: v for k, v in model_cfg.items() if k not in _CONVLAB_KEYS}


def allowed(cfg) -> tuple[str, ...]:
    """The classes beyond ``conf/model/``'s that a run may build from a checkpoint: its ``allow``
    list and, in a run that trains, the model it names itself (``conf/`` and the command line are
    trusted; a resumed run's checkpoint must equal that config before it is built)."""
    allow = tuple(cfg.get("allow") or ())
    return (*allow, cfg.model.get("_target_")) if cfg.get("train", True) else allow


def _registered(model_cfg, what: str, allow: Collection[str] = ()):
    """The class a model config names and its keyword values, imported only if a config in
    ``conf/model/`` registers the class or ``allow`` names it, and every value is plain; a
    ConvlabError otherwise."""
    if not isinstance(model_cfg, dict):
        raise ConvlabError(f"{what} is not a mapping; it was not saved by convlab")
    target = model_cfg.get("_target_")
    # a list is unhashable, and equals no allowed name
    if not isinstance(target, str) or not (target in model_classes() or target in allow):
        raise ConvlabError(
            f"{what} names {target!r}, which no config in conf/model/ registers and nothing "
            "allows; refusing to build it (if it is your own class: allow=[pkg.Class] on the "
            "command line, load_classifier(path, allow=['pkg.Class']) in Python)"
        )
    kwargs = check_plain_dict({k: v for k, v in model_cfg.items() if k != "_target_"}, what)
    module, _, name = target.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as e:  # ValueError: no module part at all
        raise ConvlabError(
            f"{what} names {target!r}, which cannot be imported here ({e}); install the package "
            "that defines it or put it on the Python path"
        ) from None
    from torch import nn  # here: reading configs needs no torch

    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):  # os.system is allowed by name
        raise ConvlabError(f"{what} names {target!r}, which is not a torch.nn.Module class")
    return cls, constructor_args(kwargs)


def build_net(
    model_cfg,
    what: str = "the saved model config",
    within: AbstractContextManager | None = None,
    allow: Collection[str] = (),
) -> "nn.Module":
    """The network a saved model config describes, built only from a registered or allowed class
    and plain keyword values; anything else is refused before anything is imported or called.
    The constructor alone runs ``within`` the given context (``torch.device("meta")``: no
    memory)."""
    cls, kwargs = _registered(model_cfg, what, allow)
    try:
        with within or nullcontext():
            return cls(**kwargs)
    except Exception as e:  # whatever the constructor makes of untrusted values, it is data's fault
        raise ConvlabError(f"{what} does not build {cls.__name__}: {e}") from None


def min_input_size(model_cfg, what: str = "the model config", allow: Collection[str] = ()) -> int:
    """The smallest data.resize (each side) the configured network takes, as its class computes
    it from the same arguments (``min_input_size(**config)``); 1 for a class that does not say.
    Checked as build_net checks, since a checkpoint's config reaches it too."""
    cls, kwargs = _registered(model_cfg, what, allow)
    if not hasattr(cls, "min_input_size"):
        return 1
    try:
        return cls.min_input_size(**kwargs)
    except ConvlabError:
        raise
    except Exception as e:  # an unknown key, a value of the wrong type: the constructor's refusal
        raise ConvlabError(f"{what} does not build {cls.__name__}: {e}") from None
