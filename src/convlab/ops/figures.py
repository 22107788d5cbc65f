"""PNG figures for the chapter 7 tour, drawn on matplotlib's Agg canvas without pyplot state.

Kept out of `convlab.ops.__init__` so that the operations import without matplotlib.
"""

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import Tensor

from convlab.ops.learn_kernel import KernelFit


def _new_figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)  # render with Agg whatever matplotlib's default backend is
    return figure


def save_panels(
    panels: dict[str, Tensor],
    path: Path,
    *,
    title: str,
    annotate: bool = True,
    same_scale: bool = False,
) -> Path:
    """One image per panel, side by side, titled with its name and size, values written in cells.

    `same_scale` draws every panel on the largest panel's pixel grid, so that an output which a
    stride or the lack of padding shrank also looks smaller.
    """
    images = {name: image.detach().squeeze().numpy() for name, image in panels.items()}  # 2-D
    rows = max(image.shape[0] for image in images.values())
    cols = max(image.shape[1] for image in images.values())
    figure = _new_figure(2.6 * len(images), 3.0)
    axes = figure.subplots(1, len(images), squeeze=False)[0]
    for ax, (name, image) in zip(axes, images.items(), strict=True):
        ax.imshow(image, cmap="viridis")
        ax.set_title(f"{name}\n{image.shape[0]}x{image.shape[1]}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        if same_scale:
            ax.set_xlim(-0.5, cols - 0.5)
            ax.set_ylim(rows - 0.5, -0.5)
        if annotate:
            middle = (image.min() + image.max()) / 2  # viridis is dark below it: white text there
            for (i, j), value in np.ndenumerate(image):
                color = "white" if value <= middle else "black"
                ax.text(j, i, f"{value:.3g}", ha="center", va="center", fontsize=7, color=color)
    figure.suptitle(title)
    figure.savefig(path, dpi=100)
    return path


def save_kernel_fits(fits: dict[str, KernelFit], true_kernel: Tensor, path: Path) -> Path:
    """Each fit's loss per step (log scale), and its kernel's entries beside the true ones."""
    figure = _new_figure(10.0, 3.6)
    losses, kernels = figure.subplots(1, 2)
    for name, fit in fits.items():
        losses.semilogy(range(1, len(fit.losses) + 1), fit.losses, marker="o", label=name)
    losses.set(xlabel="step", ylabel="mean squared error", title="loss while learning the kernel")
    losses.legend()

    entries = {"true": true_kernel} | {name: fit.kernel for name, fit in fits.items()}
    positions = np.arange(true_kernel.numel())
    width = 0.8 / len(entries)
    for offset, (name, kernel) in enumerate(entries.items()):
        kernels.bar(positions + offset * width, kernel.flatten().numpy(), width, label=name)
    kernels.set_xticks(positions + width * (len(entries) - 1) / 2)
    kernels.set_xticklabels([f"K[{i}]" for i in range(true_kernel.numel())])
    kernels.axhline(0.0, color="black", linewidth=0.8)
    kernels.set(title="learned vs true kernel")
    kernels.legend()
    figure.savefig(path, dpi=100)
    return path
