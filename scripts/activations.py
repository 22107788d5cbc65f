"""The book's exercise 7.6.5: what happens to the activations when the input is nothing like the
training data? A trained checkpoint sees a test image of its own dataset, a drawn digit (another
kind of image), uniform noise and a blank (black) image. Each row of the figure shows the input,
the activations after the first two conv layers (one tile per channel, one scale per layer and
row) and the network's answer with its softmax confidence:

    python scripts/activations.py outputs/runs/<run>/checkpoints/last.ckpt --out activations.png

A network trained on clothes still answers for a digit, noise or nothing, often confidently: the
softmax is a choice among the classes it knows, never "none of these".
"""

import argparse
import sys
from pathlib import Path

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import Tensor

from convlab.callbacks.dashboards import feature_maps
from convlab.callbacks.pictures import feature_map_grid
from convlab.data.idx import read_idx
from convlab.errors import ConvlabError
from convlab.inference import load_classifier

TEST_IMAGES = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
SIDE = 28  # the inputs are drawn at FashionMNIST's size; the checkpoint's preprocessing resizes


def drawn_digit(text: str = "7") -> Tensor:
    """A digit drawn white on black, as MNIST's are: an image of a kind FashionMNIST never shows."""
    figure = Figure(figsize=(1, 1), dpi=SIDE)
    canvas = FigureCanvasAgg(figure)
    figure.patch.set_facecolor("black")
    figure.text(0.5, 0.5, text, color="white", fontsize=64, ha="center", va="center")
    canvas.draw()
    rgba = torch.frombuffer(bytearray(canvas.buffer_rgba()), dtype=torch.uint8)
    return rgba.reshape(SIDE, SIDE, 4)[..., 0].clone()  # (28, 28): the red channel is the grey


def inputs(test_images: Path, seed: int = 0) -> dict[str, Tensor]:
    """Name -> uint8 image (28, 28)."""
    noise = torch.randint(0, 256, (SIDE, SIDE), generator=torch.Generator().manual_seed(seed))
    return {
        "a test image": read_idx(test_images, ndim=3)[0],
        "a drawn digit": drawn_digit(),
        "uniform noise": noise.to(torch.uint8),
        "a blank image": torch.zeros(SIDE, SIDE, dtype=torch.uint8),
    }


@torch.no_grad()
def activations(checkpoint: Path, images: dict[str, Tensor], allow=()) -> dict[str, dict]:
    """Per input: the answer, its confidence and the first two conv layers' activations."""
    model = load_classifier(checkpoint, allow)
    preprocess, net = model[0], model[1]
    found = {}
    for name, image in images.items():
        x = preprocess(image[None])  # (1, H, W) uint8 -> (1, C, S, S) float
        probabilities = net(x).softmax(1)[0]
        best = int(probabilities.argmax())
        layers = {label: maps[0] for _, label, maps in feature_maps(net, x, 2)}  # (C, h, w) each
        found[name] = {
            "image": image,
            "answer": model.class_names[best],
            "confidence": float(probabilities[best]),
            "layers": layers,
        }
    return found


def figure(found: dict[str, dict]) -> Figure:
    """One row per input: the input, each layer's activations, the answer in the row's title."""
    layers = len(next(iter(found.values()))["layers"])
    fig = Figure(figsize=(2.2 + 4.4 * layers, 2.4 * len(found)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(found), 1 + layers, squeeze=False)
    for row, (name, one) in zip(axes, found.items(), strict=True):
        row[0].imshow(one["image"], cmap="gray", vmin=0, vmax=255)
        row[0].set_title(f"{name}\n-> {one['answer']} ({one['confidence']:.0%})", fontsize=9)
        for ax, (label, maps) in zip(row[1:], one["layers"].items(), strict=True):
            ax.imshow(feature_map_grid(maps).permute(1, 2, 0))  # (3, H, W) -> (H, W, 3)
            ax.set_title(label, fontsize=9)
        for ax in row:
            ax.axis("off")
    return fig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument(
        "--images", type=Path, default=Path(TEST_IMAGES), help="an IDX file of test images"
    )
    parser.add_argument("--out", type=Path, default=Path("activations.png"))
    parser.add_argument(
        "--allow", nargs="*", default=[], help="your own model classes to build (pkg.Class)"
    )
    args = parser.parse_args(argv)
    try:
        found = activations(args.checkpoint, inputs(args.images), args.allow)
    except (ConvlabError, OSError) as e:
        sys.exit(f"activations: error: {e}")
    for name, one in found.items():
        spread = ", ".join(
            f"{k} mean {v.mean():.3f} std {v.std():.3f}" for k, v in one["layers"].items()
        )
        print(f"{name}: {one['answer']} ({one['confidence']:.1%}); {spread}")
    figure(found).savefig(args.out, dpi=100)
    print(f"figure: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
