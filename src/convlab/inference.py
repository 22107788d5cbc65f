"""A checkpoint alone as a classifier of raw images: no config files, DataModule or Lightning."""

from pathlib import Path

import torch
from omegaconf import OmegaConf
from torch import nn

from convlab.checkpoint_io import load_checkpoint
from convlab.config import instantiate, net_config
from convlab.data.preprocess import Preprocess
from convlab.errors import ConvlabError


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
        """Class names for a batch of raw images."""
        return [self.class_names[i] for i in self.eval()(images).argmax(1).tolist()]


def load_classifier(path: str | Path) -> ImageClassifier:
    """Rebuild the network a checkpoint was trained with from the config it carries."""
    saved = load_checkpoint(path)
    if "convlab" not in saved:
        raise ConvlabError(f"{path} was not saved by convlab; pass a checkpoint of a convlab run")
    record = saved["convlab"]
    net = instantiate(net_config(OmegaConf.create(record["config"]["model"])))
    model = ImageClassifier(Preprocess(**record["preprocess"]), net, record["class_names"])
    model.load_state_dict(saved["state_dict"])
    return model.eval()
