"""A checkpoint alone as a classifier of raw images: no config files, DataModule or Lightning."""

from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn
from torch.nn.modules.module import (
    register_module_buffer_registration_hook,
    register_module_parameter_registration_hook,
)

from convlab.checkpoint_io import NOT_CONVLAB, CheckpointMeta, read_meta
from convlab.data.preprocess import Preprocess
from convlab.errors import ConvlabError
from convlab.registry import build_net


class ImageClassifier(nn.Sequential):
    """Preprocessing and network from a convlab checkpoint: uint8 (N, H, W) or (N, C, H, W)
    images, as the dataset stores them -> logits."""

    def __init__(self, preprocess: Preprocess, net: nn.Module, class_names: list[str]):
        super().__init__()
        # the same submodule names as the Classifier, so its state_dict loads unchanged
        self.add_module("preprocess", preprocess)
        self.add_module("net", net)
        self.class_names = class_names

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> list[str]:
        """Class names for a batch of raw images, as stored: uint8 pixels in 0-255."""
        if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8:
            got = images.dtype if isinstance(images, torch.Tensor) else type(images).__name__
            raise ConvlabError(
                f"predict() takes uint8 images (0-255, as stored), got {got}; for floats in "
                "[0, 1] pass (images * 255).round().to(torch.uint8)"
            )
        return [self.class_names[i] for i in self.eval()(images).argmax(1).tolist()]


def build_preprocess(meta: CheckpointMeta, where: str | Path) -> Preprocess:
    """The checkpoint's preprocessing module, from its checked plain arguments."""
    try:
        return Preprocess(**meta.preprocess)
    except (TypeError, ValueError) as e:
        raise ConvlabError(f"{where}: its preprocessing settings do not build: {e}") from None


@contextmanager
def _on_meta(tensors: int) -> Iterator[None]:
    """Construction on the meta device (shapes, no memory) that stops at more parameters and
    buffers than ``tensors``: a few bytes of config (ResNet's ``arch=[[20000, 64]]``) would
    otherwise make thousands of modules, which cost memory and time even there."""
    count = 0

    def counted(module, name, tensor) -> None:
        nonlocal count
        count += tensor is not None
        if count > tensors:
            raise ConvlabError(f"it has more tensors than the checkpoint's {tensors} weights")

    hooks = [
        register_module_parameter_registration_hook(counted),
        register_module_buffer_registration_hook(counted),
    ]
    try:
        with torch.device("meta"):
            yield
    finally:
        for hook in hooks:
            hook.remove()


def _check_weights_fit(model: nn.Module, weights: dict, where) -> None:
    """The checkpoint's tensors must be the model's parameters and buffers, by name and shape."""
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got = {k: tuple(v.shape) if isinstance(v, torch.Tensor) else None for k, v in weights.items()}
    if want == got:
        return
    missing, extra = sorted(want.keys() - got.keys()), sorted(got.keys() - want.keys(), key=str)
    if missing:
        why = f"no weights for {missing[0]}"
    elif extra:
        why = f"weights for {extra[0]!r}, which it does not have"
    else:
        key = next(k for k in want if want[k] != got[k])
        why = f"{key} is {got[key]} in the file, {want[key]} in the model"
    raise ConvlabError(f"{where}: its weights do not fit its own model ({why})")


def _check_outputs(net: nn.Module, preprocess: Preprocess, meta: CheckpointMeta, where) -> None:
    """One score per class name for an image as the preprocessing gives it, worked out on the meta
    device: with fewer, predict would index past the names; with more, name no class."""
    h, w = preprocess.size
    try:
        with torch.no_grad():
            out = net.eval()(torch.empty(1, preprocess.out_channels, h, w, device="meta"))
    except Exception as e:  # what the network makes of the saved sizes: the checkpoint's fault
        raise ConvlabError(
            f"{where}: its network does not take its {h}x{w} preprocessed images "
            f"({_first_line(e)}); {NOT_CONVLAB}"
        ) from None
    if tuple(out.shape) != (1, len(meta.class_names)):
        raise ConvlabError(
            f"{where}: its network gives {tuple(out.shape)[1:]} scores per image for its "
            f"{len(meta.class_names)} class names; {NOT_CONVLAB}"
        )


def check_fits(
    meta: CheckpointMeta, saved: dict, where: str | Path, allow: Collection[str] = ()
) -> Preprocess:
    """The checkpoint's network, built on the meta device, checked against its weights and class
    names; its preprocessing. A small file's config (``hidden=[300000, 300]``) would otherwise
    allocate gigabytes before its weights were found not to fit. Its class must be registered
    or in ``allow`` (``convlab.registry``)."""
    preprocess = build_preprocess(meta, where)
    weights = saved["state_dict"]
    shaped = build_net(meta.config["model"], _what(where), _on_meta(len(weights)), allow)
    _check_weights_fit(ImageClassifier(preprocess, shaped, meta.class_names), weights, where)
    _check_outputs(shaped, preprocess, meta, where)
    return preprocess


def _what(where) -> str:
    return f"{where}'s model config"


def build_from_meta(
    meta: CheckpointMeta, saved: dict, where: str | Path, allow: Collection[str] = ()
) -> tuple[nn.Module, Preprocess]:
    """Network and preprocessing as the run that saved ``meta`` built them, by the safe path:
    checked on the meta device first (``check_fits``), only then built for real."""
    preprocess = check_fits(meta, saved, where, allow)
    return build_net(meta.config["model"], _what(where), allow=allow), preprocess


def load_classifier(path: str | Path, allow: Collection[str] = ()) -> ImageClassifier:
    """Rebuild the network a checkpoint was trained with from the config it carries. Its class
    must be one a config in ``conf/model/`` names, or one you name in ``allow``
    (``["mypkg.MyNet"]``): a checkpoint is data, and never chooses the code it runs."""
    saved, meta = read_meta(path)
    net, preprocess = build_from_meta(meta, saved, path, allow)
    model = ImageClassifier(preprocess, net, meta.class_names)
    load_weights(model, saved, path)
    return model.eval()


def load_weights(module: nn.Module, saved: dict, path) -> None:
    """A checkpoint's weights into the network rebuilt from its own config."""
    try:
        module.load_state_dict(saved["state_dict"])
    except RuntimeError as e:
        raise ConvlabError(
            f"{path}: its weights do not fit its own model ({_first_line(e)})"
        ) from None


def _first_line(error: Exception) -> str:
    return next(iter(str(error).strip().splitlines()), type(error).__name__)
