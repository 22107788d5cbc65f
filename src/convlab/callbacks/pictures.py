"""The dashboards' pictures, drawn from plain tensors so they can be tested without a Trainer.

Figures are matplotlib objects without pyplot state (TensorBoard's add_figure renders them on Agg);
tile grids are torchvision's make_grid.
"""

import math

import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import Tensor
from torchmetrics.utilities.plot import plot_confusion_matrix
from torchvision.utils import make_grid

# TensorBoard shows an image at its own size: 5x5 kernels and 10x10 maps need blowing up to be seen
_MIN_TILE = 56
_COLUMNS = 8


def confusion_figure(counts: Tensor, class_names: list[str]) -> Figure:
    """A confusion matrix (true, predicted) with counts in the cells, true classes down, predicted
    across, drawn by torchmetrics (what MulticlassConfusionMatrix.plot does, without a compute)."""
    figure = Figure(figsize=(9, 8), layout="constrained")
    _, ax = plot_confusion_matrix(counts, ax=figure.subplots(), labels=class_names)
    total = int(counts.sum())
    ax.set_title(f"accuracy {counts.trace() / max(total, 1):.4f} on {total} images")
    return figure


def prediction_grid(
    images: Tensor, predicted: Tensor, labels: Tensor, class_names: list[str]
) -> Figure:
    """uint8 images titled with their predicted class; a wrong one in red, with its true class."""
    rows = math.ceil(len(images) / _COLUMNS)
    figure = Figure(figsize=(1.5 * _COLUMNS, 1.8 * rows), layout="constrained")
    axes = figure.subplots(rows, _COLUMNS, squeeze=False).ravel()
    for ax in axes:
        ax.set_axis_off()
    guesses, truths = predicted.tolist(), labels.tolist()
    for ax, image, guess, truth in zip(axes, images, guesses, truths, strict=False):  # spare axes
        wrong = guess != truth
        ax.imshow(_height_width_channels(image), cmap="gray", vmin=0, vmax=255)
        title = class_names[guess]
        if wrong:
            title += f"\n(true: {class_names[truth]})"
        ax.set_title(title, fontsize=8, color="red" if wrong else "black")
    return figure


def filter_grid(weight: Tensor) -> Tensor:
    """A conv layer's kernels as tiles, each on its own scale: RGB when the layer reads 3 channels,
    else one grey tile per (output, input) channel pair."""
    _, in_channels, height, width = weight.shape
    tiles = weight if in_channels == 3 else weight.reshape(-1, 1, height, width)  # (O*I, 1, kh, kw)
    return _grid(tiles, scale_each=True)


def feature_map_grid(maps: Tensor) -> Tensor:
    """One input's feature maps (C, H, W), a grey tile per channel, all on one scale so that strong
    and weak responses can be compared."""
    return _grid(maps[:, None], scale_each=False)  # (C, H, W) -> (C, 1, H, W)


def _grid(tiles: Tensor, scale_each: bool) -> Tensor:
    """(N, 1 or 3, h, w) -> one (3, H, W) image in [0, 1], tiles enlarged by a whole factor."""
    tiles = tiles.detach().float().cpu()
    factor = math.ceil(_MIN_TILE / min(tiles.shape[-2:]))
    if factor > 1:
        tiles = F.interpolate(tiles, scale_factor=factor, mode="nearest")  # pixels stay squares
    return make_grid(tiles, nrow=_COLUMNS, normalize=True, scale_each=scale_each, pad_value=1.0)


def _height_width_channels(image: Tensor) -> Tensor:
    """(H, W) or (C, H, W) -> what imshow takes: (H, W) grey or (H, W, 3) colour."""
    if image.dim() == 2:
        return image.cpu()
    return image.cpu().permute(1, 2, 0).squeeze(-1)  # (C, H, W) -> (H, W, C), grey as (H, W)
