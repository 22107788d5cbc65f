"""A tour of chapter 7, sections 7.2-7.5: the book's computations, from scratch, with figures.

    python scripts/chapter7.py [--sections 7.2 7.5] [--out outputs/chapter7]

Prints each section's results on the book's inputs and writes PNG figures into --out. All the
work is in convlab.ops; this script only picks the inputs, prints and plots.
"""

import argparse
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn

from convlab.ops import (
    DivergenceError,
    KernelFit,
    avg_pool_as_conv,
    band_image,
    blur_kernel,
    comp_conv2d,
    corr2d,
    corr2d_multi_in,
    corr2d_multi_in_out,
    corr2d_multi_in_out_1x1,
    corr2d_vectorized,
    edge_kernel,
    example_input,
    example_kernel,
    framed_image,
    kernel_matrix,
    laplacian_kernel,
    learn_kernel,
    max_pool2x2_relu,
    mirror_pad2d,
    output_shape,
    pad2d,
    pair,
    pool2d,
)
from convlab.ops.figures import save_kernel_fits, save_panels

X3, K2 = example_input(), example_kernel()
EDGE = torch.tensor([[1.0, -1.0]])
# learn_kernel settings: the book's, and ones that also converge on the 8x10 image
BOOK_RECIPE = {"reduction": "sum", "lr": 3e-2, "momentum": 0.0}
STABLE_RECIPE = {"reduction": "mean", "lr": 0.9, "momentum": 0.45}
# (kernel_size, one-sided padding, stride) of the four layers of 7.3
PADDING_STRIDE = [(3, 1, 1), ((5, 3), (2, 1), 1), (3, 1, 2), ((3, 5), (0, 1), (3, 4))]


def show(label: str, value: object) -> None:
    print(f"{label}:\n{value}\n" if isinstance(value, Tensor) else f"{label}: {value}")


def show_fit(fit: KernelFit) -> None:
    for step, loss in enumerate(fit.losses, start=1):
        if step % 2 == 0:
            print(f"    epoch {step}, loss {loss:.3g}")
    print(f"    learned kernel: [{', '.join(f'{v:.4f}' for v in fit.kernel.flatten().tolist())}]")


def section_7_2(out: Path) -> None:
    show("corr2d(X, K)", corr2d(X3, K2))
    image = band_image()
    edges, transposed = corr2d(image, EDGE), corr2d(image.t(), EDGE)
    show("X, the 6x8 band image", image)
    show("corr2d(X, [[1, -1]]): +1 where white turns black, -1 back", edges)
    show("corr2d(X.t(), [[1, -1]]): horizontal edges go unseen", transposed)
    save_panels(
        {"X": image, "corr2d(X, [1, -1])": edges, "corr2d(X.T, [1, -1])": transposed},
        out / "edge_detection.png",
        title="7.2 edge detection",
    )

    fits = {}
    for name, image in {"6x8 band": band_image(), "8x10 frame": framed_image()}.items():
        target = corr2d_vectorized(image, EDGE)
        print(f"learning [[1, -1]] on the {name} image")
        print(f"  the book's recipe {BOOK_RECIPE}")
        try:
            show_fit(learn_kernel(image, target, (1, 2), **BOOK_RECIPE))
        except DivergenceError as error:
            print(f"    {error}")
        print(f"  normalised loss with momentum {STABLE_RECIPE}")
        fits[name] = learn_kernel(image, target, (1, 2), **STABLE_RECIPE)
        show_fit(fits[name])
    save_kernel_fits(fits, EDGE, out / "learned_kernel.png")

    print("\nexercise 2: hand-made kernels")
    show("edge_kernel((1, 1)): brightness change along the diagonal", edge_kernel((1, 1)))
    show("laplacian_kernel()", laplacian_kernel())
    show("blur_kernel(3, sigma=1)", blur_kernel(3, 1.0))


def section_7_3(out: Path) -> None:
    X = torch.rand(8, 8, generator=torch.Generator().manual_seed(0))
    panels = {"X": X}
    for kernel_size, padding, stride in PADDING_STRIDE:
        conv2d = nn.Conv2d(1, 1, kernel_size, padding=padding, stride=stride)
        total = tuple(2 * q for q in pair(padding))  # the book's p counts both sides
        shape = tuple(comp_conv2d(conv2d, X).shape)
        book = output_shape(8, kernel_size, total, stride)
        print(
            f"kernel {kernel_size}, padding {padding}, stride {stride}: comp_conv2d -> {shape}, "
            f"output_shape(n=8, p={total}) -> {book}"
        )
        K = torch.ones(pair(kernel_size))
        panels[f"k={kernel_size} p={padding} s={stride}"] = corr2d_vectorized(X, K, padding, stride)
    save_panels(
        panels,
        out / "padding_stride.png",
        title="7.3 padding and stride",
        annotate=False,
        same_scale=True,
    )
    show("\nexercise 3: zero padding of X", pad2d(X3, 1))
    show("mirror padding of X", mirror_pad2d(X3, 1))


def section_7_4(out: Path) -> None:
    X, K = example_input(channels=2), example_kernel(channels=2)  # (2, 3, 3), (2, 2, 2)
    show("corr2d_multi_in(X, K)", corr2d_multi_in(X, K))
    K = torch.stack((K, K + 1, K + 2), 0)  # (3, 2, 2, 2)
    show("K.shape", tuple(K.shape))
    show("corr2d_multi_in_out(X, K)", corr2d_multi_in_out(X, K))
    W = kernel_matrix(K, X.shape[-2:])
    as_matmul = (W @ X.flatten()).reshape(3, 2, 2)
    show("kernel_matrix(K) shape, (c_o h' w', c_i h w)", tuple(W.shape))
    show(
        "W @ vec(X) equals corr2d_multi_in_out(X, K)",
        torch.equal(as_matmul, corr2d_multi_in_out(X, K)),
    )

    generator = torch.Generator().manual_seed(0)
    X = torch.normal(0, 1, (3, 3, 3), generator=generator)
    K = torch.normal(0, 1, (2, 3, 1, 1), generator=generator)
    difference = (corr2d_multi_in_out_1x1(X, K) - corr2d_multi_in_out(X, K)).abs().sum()
    show("1x1 as matmul vs corr2d_multi_in_out, summed |difference|", f"{difference:.2e}")


def section_7_5(out: Path) -> None:
    show("pool2d(X, (2, 2))", pool2d(X3, (2, 2)))
    show("pool2d(X, (2, 2), 'avg')", pool2d(X3, (2, 2), "avg"))
    X = torch.arange(16, dtype=torch.float32).reshape((1, 1, 4, 4))
    show("X", X)
    pooled = {
        "nn.MaxPool2d(3)": nn.MaxPool2d(3)(X),
        "nn.MaxPool2d(3, padding=1, stride=2)": nn.MaxPool2d(3, padding=1, stride=2)(X),
        "nn.MaxPool2d((2, 3), stride=(2, 3), padding=(0, 1))": nn.MaxPool2d(
            (2, 3), stride=(2, 3), padding=(0, 1)
        )(X),
        "pool2d(X, 3, stride=3)": pool2d(X, 3, stride=3),
        "pool2d(X, 3, padding=1, stride=2)": pool2d(X, 3, padding=1, stride=2),
        "pool2d(X, (2, 3), padding=(0, 1), stride=(2, 3))": pool2d(
            X, (2, 3), padding=(0, 1), stride=(2, 3)
        ),
    }
    for label, value in pooled.items():
        show(label, value)
    show(
        "two channels, pool2d(X, 3, padding=1, stride=2)",
        pool2d(torch.cat((X, X + 1), 1), 3, padding=1, stride=2),
    )
    show("exercise 1: avg_pool_as_conv(X, 2, stride=2)", avg_pool_as_conv(X, 2, stride=2))
    show("exercise 3: max_pool2x2_relu(X), from ReLUs and convolutions", max_pool2x2_relu(X))
    panels = {
        "X": X,
        "max 2x2": pool2d(X, 2),
        "avg 2x2": pool2d(X, 2, "avg"),
        "max 3x3, padding 1, stride 2": pool2d(X, 3, padding=1, stride=2),
    }
    save_panels(panels, out / "pooling.png", title="7.5 pooling")


SECTIONS: dict[str, Callable[[Path], None]] = {
    "7.2": section_7_2,
    "7.3": section_7_3,
    "7.4": section_7_4,
    "7.5": section_7_5,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", nargs="+", choices=list(SECTIONS), default=list(SECTIONS))
    parser.add_argument("--out", type=Path, default=Path("outputs/chapter7"), help="figure folder")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for section in args.sections:
        print(f"\n=== {section} ===")
        SECTIONS[section](args.out)
    print(f"\nfigures in {args.out}")


if __name__ == "__main__":
    main()
