"""A checkpoint alone as a classifier of raw images: no config files, DataModule or Lightning."""

from pathlib import Path

import torch
from torch import nn

from convlab.checkpoint_io import CheckpointMeta, read_meta
from convlab.data.preprocess import Preprocess
from convlab.errors import ConvlabError
from convlab.registry import build_net


class ImageClassifier(nn.Sequential):
    """Preprocessing and network from a convlab checkpoint: uint8 (N, H, W) images -> logits."""

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


def build_from_meta(meta: CheckpointMeta, where: str | Path) -> tuple[nn.Module, Preprocess]:
    """Network and preprocessing as the run that saved ``meta`` built them, by the safe path."""
    net = build_net(meta.config["model"], f"{where}'s model config")
    return net, build_preprocess(meta, where)


def load_classifier(path: str | Path) -> ImageClassifier:
    """Rebuild the network a checkpoint was trained with from the config it carries."""
    saved, meta = read_meta(path)
    net, preprocess = build_from_meta(meta, path)
    model = ImageClassifier(preprocess, net, meta.class_names)
    load_weights(model, saved, path)
    return model.eval()


def load_weights(module: nn.Module, saved: dict, path) -> None:
    """A checkpoint's weights into the network rebuilt from its own config."""
    try:
        module.load_state_dict(saved["state_dict"])
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise ConvlabError(f"{path}: its weights do not fit its own model ({first})") from None
