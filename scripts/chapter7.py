"""A tour of chapter 7, sections 7.1-7.6: the book's computations, from scratch, with figures.

    python scripts/chapter7.py [--sections 7.2 7.5] [--out outputs/chapter7]

Prints each section's results on the book's inputs -- its printed values, the numbers of its
figures and text, and its exercises worked out -- and writes PNG figures into --out. All the
work is in convlab.ops; this script only picks the inputs, prints and plots. docs/chapter7.md maps
every printed line to the book's item and to the test that asserts it.
"""

import argparse
import math
import statistics
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn

from convlab.models.lenet import LeNet
from convlab.models.small_cnn import SmallCNN
from convlab.ops import (
    BOOK_RECIPE,
    STABLE_RECIPE,
    Conv2D,
    DivergenceError,
    KernelFit,
    avg_pool_as_conv,
    band_image,
    blur_kernel,
    channel_shuffle,
    comp_conv2d,
    compose_kernels,
    conv_cost,
    convolve2d,
    convolve_fft,
    convolve_full,
    corr2d,
    corr2d_grouped_1x1,
    corr2d_in_strips,
    corr2d_multi_in,
    corr2d_multi_in_out,
    corr2d_multi_in_out_1x1,
    corr2d_multi_in_out_loop,
    corr2d_vectorized,
    derivative_kernel,
    edge_kernel,
    example_input,
    example_kernel,
    fractional_stride_conv,
    framed_image,
    kernel_matrix,
    laplacian_kernel,
    learn_kernel,
    max_pool2x2_relu,
    max_pool_relu,
    min_pool2d,
    mirror_pad2d,
    output_shape,
    pad2d,
    pair,
    parameter_counts,
    pixel_utilization,
    pool2d,
    pool_cost,
    receptive_field,
    relu_levels,
    softmax_pool2d,
    split_kernel,
    stacked_ones,
    stacked_output_shape,
    strip_reads_per_output,
)
from convlab.ops.figures import save_kernel_fits, save_panels
from convlab.summary import layer_shapes, layer_table

X3, K2 = example_input(), example_kernel()
EDGE = torch.tensor([[1.0, -1.0]])
ARANGE16 = torch.arange(16, dtype=torch.float32).reshape((1, 1, 4, 4))
TOUR_SEED = 0  # the seed the tour learns the kernel with
SEEDS = range(10)  # the seeds the book recipe is summarised over
# (kernel_size, one-sided padding, stride) of the four layers of 7.3
PADDING_STRIDE = [(3, 1, 1), ((5, 3), (2, 1), 1), (3, 1, 2), ((3, 5), (0, 1), (3, 4))]
# the notes' own 7.3 experiments on an 8x8 input; the stride-2 layer without padding is new
NOTES_PADDING_STRIDE = [(3, 1, 1), (3, 0, 2), (3, 1, 2), (5, 2, 1), ((3, 5), (0, 1), (3, 4))]
# 7.1's example: a one-megapixel (1000x1000) image, 1000 hidden units, Delta "smaller than 10"
SIDE, HIDDEN, DELTA = 1000, 1000, 10
# 7.6: one FashionMNIST-sized image; MNIST's digits are 28x28 crops of 32x32 scans
MNIST_BATCH, CROP, SCAN = (1, 1, 28, 28), 28, 32
# 7.4's cost example: a 256x256 image, 128 channels in and out, 5x5 kernels, size kept
COST_IMAGE, COST_CHANNELS, COST_KERNEL = 256, 128, 5


def show(label: str, value: object) -> None:
    print(f"{label}:\n{value}\n" if isinstance(value, Tensor) else f"{label}: {value}")


def show_fit(fit: KernelFit, loss_format: str) -> None:
    """The book's printout: the loss of every second step, then the kernel as a (1, 2) tensor."""
    for step, loss in enumerate(fit.losses, start=1):
        if step % 2 == 0:
            print(f"    epoch {step}, loss {loss:{loss_format}}")
    print(f"    learned kernel: {fit.kernel}")


def first_principles() -> None:
    """7.1: the parameter counts that lead from a dense layer to a convolution."""
    counts = parameter_counts(SIDE, HIDDEN, DELTA)
    show("dense, 10^6 pixels -> 10^3 hidden units", f"{counts.dense_to_hidden:.3g} parameters")
    show("dense, 1000x1000 image -> 1000x1000 hidden image", f"{counts.dense_to_image:.3g}")
    show("translation invariance, V[a, b] over all offsets", f"{counts.shared:,} ~ 4e+06")
    show(
        f"locality, |a|, |b| <= {DELTA}",
        f"{counts.local} = (2 * {DELTA} + 1)^2, the book's 4 * {DELTA}^2 = {4 * DELTA**2}",
    )
    show("locality saves a factor", f"{counts.shared / counts.local:.3g}, four orders of magnitude")


def section_7_1(out: Path) -> None:
    first_principles()
    generator = torch.Generator().manual_seed(0)
    X = torch.randn(3, 4, 4, generator=generator)  # (c_i, h, w)
    K = torch.randn(2, 3, 1, 1, generator=generator)  # Delta = 0: (c_o, c_i, 1, 1)
    linear = nn.Linear(3, 2, bias=False)
    linear.weight.data = K.flatten(1)
    per_pixel = linear(X.movedim(0, -1)).movedim(-1, 0)  # one dense layer applied at every pixel
    difference = (corr2d_multi_in_out(X, K) - per_pixel).abs().max()
    show("\nexercise 1: Delta = 0 is a dense layer per pixel, max |difference|", f"{difference}")
    f, g = torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.tensor([[0.0, 1.0, 0.0], [2.0, 0.0, 1.0]])
    show("exercise 6: f * g", convolve_full(f, g))
    show("exercise 6: f * g equals g * f", torch.equal(convolve_full(f, g), convolve_full(g, f)))
    theorem = (convolve_fft(f, g) - convolve_full(f, g)).abs().max()
    show("exercise 7: |F^-1[F[f] F[g]] - f * g| max", f"{theorem:.1e}")
    notes_cnn()


def notes_cnn() -> None:
    """The notes' small CNN for 28x28 digits (convlab's SmallCNN): 93,322 parameters in all."""
    net = SmallCNN()
    print("\nthe notes' CNN for 28x28 digits, parameters per layer:")
    for layer, (name, shape) in zip(net.net, layer_shapes(net, MNIST_BATCH), strict=True):
        if params := sum(p.numel() for p in layer.parameters()):
            print(f"    {name:<8}{shape!s:<18}{params:,}")
    show("    total", f"{sum(p.numel() for p in net.parameters()):,}")


def edges_and_convolution(out: Path) -> None:
    """7.2.1-7.2.3, 7.2.5, 7.2.6: correlation, edges, flipped kernels, receptive fields."""
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
    show("corr2d(8x10 framed image, [[1, -1]]), 8x9", corr2d(framed_image(), EDGE))

    show("strict convolution of X with K", convolve2d(X3, K2))
    show("corr2d(X, K flipped both ways): the same", corr2d(X3, K2.flip((0, 1))))
    show("convolution with K' = flipped K gives corr2d(X, K)", convolve2d(X3, K2.flip((0, 1))))

    field = receptive_field(stacked_ones([2]), (3, 3), (0, 0))
    show(f"receptive field of Y[0, 0] (the 19): {int(field.sum())} inputs", field.int())
    field = receptive_field(stacked_ones([2, 2]), (3, 3), (0, 0))
    show(f"receptive field of z after two 2x2 layers: {int(field.sum())} inputs", field.int())


def learning_the_kernel(out: Path) -> None:
    """7.2.4: the book's loop, summarised over seeds, its divergence, and the stable recipe."""
    image = band_image()
    target = corr2d_vectorized(image, EDGE)
    print(f"learning [[1, -1]] on the 6x8 band image, the book's recipe {BOOK_RECIPE}")
    print(f"  torch.manual_seed({TOUR_SEED})")
    show_fit(learn_kernel(image, target, (1, 2), seed=TOUR_SEED, **BOOK_RECIPE), ".3f")
    fits = [learn_kernel(image, target, (1, 2), seed=seed, **BOOK_RECIPE) for seed in SEEDS]
    errors = [float((fit.kernel - EDGE).abs().max()) for fit in fits]
    worst = max(SEEDS, key=lambda seed: errors[seed])
    print(
        f"  seeds {SEEDS.start}-{SEEDS.stop - 1}: median epoch-10 loss "
        f"{statistics.median(fit.losses[-1] for fit in fits):.3f}, "
        f"worst kernel error {errors[worst]:.3f} (seed {worst})"
    )

    fits = {}
    for name, image in {"6x8 band": band_image(), "8x10 frame": framed_image()}.items():
        target = corr2d_vectorized(image, EDGE)
        if name == "8x10 frame":
            print(f"learning [[1, -1]] on the {name} image, the book's recipe")
            try:
                learn_kernel(image, target, (1, 2), seed=TOUR_SEED, **BOOK_RECIPE)
            except DivergenceError as error:
                print(f"    {error}")
        print(f"  on the {name} image, normalised loss with momentum {STABLE_RECIPE}")
        fits[name] = learn_kernel(image, target, (1, 2), seed=TOUR_SEED, **STABLE_RECIPE)
        show_fit(fits[name], ".3g")
    save_kernel_fits(fits, EDGE, out / "learned_kernel.png")


def section_7_2_exercises() -> None:
    diagonal = torch.eye(5)
    print("\nexercise 1: the diagonal image eye(5)")
    show("corr2d(X, K), 5x4", corr2d(diagonal, EDGE))
    show("corr2d(X.t(), K): X is symmetric, the same", corr2d(diagonal.t(), EDGE))
    show("corr2d(X, K.t()), 4x5: the vertical difference", corr2d(diagonal, EDGE.t()))

    print("exercise 2: hand-made kernels")
    show("edge_kernel((1, 1)): brightness change along the diagonal", edge_kernel((1, 1)))
    show("laplacian_kernel()", laplacian_kernel())
    show("blur_kernel(3, sigma=1)", blur_kernel(3, 1.0))
    for order in range(1, 5):  # order d needs d + 1 taps
        show(f"derivative_kernel({order}), {order + 1} taps", derivative_kernel(order).tolist())

    layer = Conv2D((1, 2), bias=False, generator=torch.Generator().manual_seed(0))
    ((layer(band_image()) - corr2d(band_image(), EDGE)) ** 2).sum().backward()
    show("exercise 3: Conv2D backpropagates without error, weight.grad", layer.weight.grad)
    W = kernel_matrix(K2[None, None], (3, 3))
    show("exercise 4: corr2d as a (4, 9) matrix W", W)
    show("W @ vec(X)", W @ X3.flatten())


def section_7_2(out: Path) -> None:
    edges_and_convolution(out)
    learning_the_kernel(out)
    section_7_2_exercises()


def padding_and_stride_figures() -> None:
    """7.3's motivation, its padding and stride figures, and the simplified output shapes."""
    n = stacked_output_shape(240, 5, 0, 1, layers=10)
    lost = 1 - (n[0] * n[1]) / 240**2
    show("240x240 through ten 5x5 layers", f"{n[0]}x{n[1]}, {lost:.1%} of the pixels gone")
    for k in (1, 2, 3):
        used = pixel_utilization((6, 6), k)
        show(
            f"pixel utilization of a {k}x{k} kernel on 6x6",
            f"corner {used[0, 0]:.0f}, centre {used[3, 3]:.0f}",
        )
    show("utilization map of the 3x3 kernel", pixel_utilization((6, 6), 3).int())
    show("padding figure: corr2d(X, K, padding=1), 4x4", corr2d(X3, K2, padding=1))
    show("stride figure: corr2d(X, K, padding=1, stride=(3, 2))", corr2d(X3, K2, 1, (3, 2)))
    same = output_shape(8, 3, 3 - 1, 2)
    show("p = k - 1, n = 8, s = 2: floor((n + s - 1) / s)", f"{same}, = n / s since s divides n")


def section_7_3(out: Path) -> None:
    padding_and_stride_figures()
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
    for kernel_size, padding, stride in NOTES_PADDING_STRIDE:
        total = tuple(2 * q for q in pair(padding))
        print(
            f"the notes' 8x8 experiment k={kernel_size} p={padding} s={stride}: "
            f"{output_shape(8, kernel_size, total, stride)}"
        )

    print("\nexercise 1: kernel (3, 5), padding (0, 1), stride (3, 4) on 8x8:")
    print("    floor((8 - 3 + 0 + 3) / 3) = 2, floor((8 - 5 + 2 + 4) / 4) = 2 ->", end=" ")
    print(output_shape(8, (3, 5), (0, 2), (3, 4)))
    show(
        "exercise 2: 1 s of 16 kHz audio, k=3, padding 1 per side, stride 2",
        output_shape((1, 16000), (1, 3), (0, 2), (1, 2)),
    )
    show("exercise 3: zero padding of X", pad2d(X3, 1))
    show("mirror padding of X", mirror_pad2d(X3, 1))
    dense, strided = (conv_cost((1, 8, 8), (1, 1, 3, 3), 1, s).multiply_adds for s in (1, 2))
    show("exercise 4: multiply-adds, 8x8, k=3, p=1, stride 1 vs 2", f"{dense} vs {strided}")
    show(
        "exercise 6: stride 1/2 = transposed convolution of X with K",
        fractional_stride_conv(X3, K2),
    )


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
    one_by_one = nn.Conv2d(3, 2, 1)
    show(
        "nn.Conv2d(3, 2, 1) parameters: c_o * c_i weights + c_o biases",
        f"{one_by_one.weight.numel()} + {one_by_one.bias.numel()}",
    )
    cost = conv_cost(
        (COST_CHANNELS, COST_IMAGE, COST_IMAGE),
        (COST_CHANNELS, COST_CHANNELS, COST_KERNEL, COST_KERNEL),
        padding=COST_KERNEL // 2,
    )
    show("256x256, 5x5, 128 -> 128 channels: operations", f"{cost.operations:,}")
    section_7_4_exercises()


def composing_kernels() -> None:
    """7.4 ex 1: two stacked 2x2 layers are one 3x3 layer, but not every 3x3 kernel splits."""
    generator = torch.Generator().manual_seed(0)
    first, second = torch.randn(2, 1, 1, 2, 2, generator=generator)  # (c_o, c_i, 2, 2) each
    X = torch.randn(1, 6, 6, generator=generator)
    composed = compose_kernels(first, second)
    two_layers = corr2d_multi_in_out(corr2d_multi_in_out(X, first), second)
    difference = (two_layers - corr2d_multi_in_out(X, composed)).abs().max()
    show("\nexercise 1: two 2x2 layers = one layer of shape", tuple(composed.shape))
    show("    max |two layers - one layer|", f"{difference:.1e}")
    corners = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    show(
        "    converse: best split of [[1,0,0],[0,0,0],[0,0,1]] into two 2x2, squared error",
        f"{split_kernel(corners)[2]:.2f}",
    )


def convolution_costs() -> None:
    """7.4 ex 2 and 3: work and memory of the section's example; doubling channels or padding."""
    X, K = example_input(channels=2), example_kernel(channels=2)
    show(
        "exercise 2: the (2, 3, 3) input, (3, 2, 2, 2) kernel",
        conv_cost(tuple(X.shape), (3, *K.shape)),
    )

    def multiply_adds(channels: int, padding: int) -> int:
        """The 256x256, 5x5 example with `channels` in and out."""
        kernel = (channels, channels, COST_KERNEL, COST_KERNEL)
        return conv_cost((channels, COST_IMAGE, COST_IMAGE), kernel, padding).multiply_adds

    base = multiply_adds(COST_CHANNELS, COST_KERNEL // 2)
    doubled = multiply_adds(2 * COST_CHANNELS, COST_KERNEL // 2) / base
    padded = multiply_adds(COST_CHANNELS, 2 * (COST_KERNEL // 2)) / base
    show("exercise 3: double c_i and c_o", f"x{doubled:.0f}")
    show("exercise 3: double the padding 2 -> 4", f"x{padded:.4f}")


def rounding() -> None:
    """7.4 ex 4: the 1x1 matrix product and the book's loop sum in different orders."""
    for c_i in (3, 16):
        generator = torch.Generator().manual_seed(0)
        X = torch.normal(0, 1, (c_i, 3, 3), generator=generator)
        K = torch.normal(0, 1, (2, c_i, 1, 1), generator=generator)
        gap = (corr2d_multi_in_out_1x1(X, K) - corr2d_multi_in_out_loop(X, K)).abs().max()
        show(f"exercise 4: c_i = {c_i}, max |Y1 - Y2| in float32", f"{gap:.1e}")


def strips() -> None:
    """7.4 ex 6: wider output strips read each input column fewer times."""
    # whole numbers, so that both summation orders are exact and the outputs compare with ==
    image = torch.randint(0, 10, (6, 12), generator=torch.Generator().manual_seed(0)).float()
    K = torch.ones(3, 3)
    for delta in (1, 2, 4, 8):
        same = torch.equal(corr2d_in_strips(image, K, delta), corr2d_vectorized(image, K))
        show(
            f"exercise 6: k=3, {delta}-wide strips, columns read per output",
            f"{strip_reads_per_output(3, delta)}, same output: {same}",
        )


def channel_blocks(channels: int = 4, blocks: int = 2) -> None:
    """7.4 ex 7: a block-diagonal channel mix is `blocks` times cheaper but needs a shuffle."""
    weights = torch.ones(blocks, channels // blocks, channels // blocks)

    def grouped(X: Tensor) -> Tensor:
        return corr2d_grouped_1x1(X, weights)

    def connections(layer: Callable[[Tensor], Tensor]) -> Tensor:
        """(c_o, c_i) 0/1: which input channels each output channel reads."""
        jacobian = torch.autograd.functional.jacobian(layer, torch.ones(channels, 1, 1))
        return (jacobian.reshape(channels, channels) != 0).int()

    dense = conv_cost((channels, 1, 1), (channels, channels, 1, 1)).multiply_adds
    cheap = conv_cost((channels, 1, 1), (channels, channels // blocks, 1, 1)).multiply_adds
    show(f"exercise 7: {blocks} blocks, multiply-adds per pixel", f"{cheap} instead of {dense}")
    show("    block-diagonal layer connects", connections(grouped))
    show(
        "    two of them with a channel shuffle between connect",
        connections(lambda X: grouped(channel_shuffle(grouped(X), blocks))),
    )


def section_7_4_exercises() -> None:
    composing_kernels()
    convolution_costs()
    rounding()
    strips()
    channel_blocks()


def section_7_5(out: Path) -> None:
    show("pool2d(X, (2, 2))", pool2d(X3, (2, 2)))
    show("pool2d(X, (2, 2), 'avg')", pool2d(X3, (2, 2), "avg"))
    band, shifted = band_image(), band_image()[:, 1:]  # Z[i, j] = X[i, j + 1]
    show("2x2 max-pool of the edges of X, first row", pool2d(corr2d(band, EDGE), 2)[0])
    show("... and of Z, X shifted by one pixel", pool2d(corr2d(shifted, EDGE), 2)[0])
    X = ARANGE16
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
        "MXNet's MaxPool2D((2, 3), padding=(1, 2), strides=(2, 3))": pool2d(
            X, (2, 3), padding=(1, 2), stride=(2, 3)
        ),
    }
    for label, value in pooled.items():
        show(label, value)
    show(
        "two channels, pool2d(X, 3, padding=1, stride=2)",
        pool2d(torch.cat((X, X + 1), 1), 3, padding=1, stride=2),
    )
    notes_pooling(X[0, 0])
    section_7_5_exercises(X)
    panels = {
        "X": X,
        "max 2x2": pool2d(X, 2),
        "avg 2x2": pool2d(X, 2, "avg"),
        "max 3x3, padding 1, stride 2": pool2d(X, 3, padding=1, stride=2),
    }
    save_panels(panels, out / "pooling.png", title="7.5 pooling")


def notes_pooling(X: Tensor) -> None:
    """The notes' own pooling experiments on the 4x4 arange: stride 1 unless nn.* says otherwise."""
    show("the notes: pool2d(X, (2, 2)), stride 1", pool2d(X, 2))
    show("the notes: pool2d(X, (2, 2), 'avg'), stride 1", pool2d(X, 2, "avg"))
    show("the notes: nn.MaxPool2d(2)", pool2d(X, 2, stride=2))
    show("the notes: nn.AvgPool2d(2)", pool2d(X, 2, "avg", stride=2))
    show("the notes: pool2d(X, (3, 3)), stride 1", pool2d(X, 3))
    show("the notes: nn.MaxPool2d(2, padding=1, stride=1)", pool2d(X, 2, padding=1))


def section_7_5_exercises(X: Tensor) -> None:
    show("exercise 1: avg_pool_as_conv(X, 2, stride=2)", avg_pool_as_conv(X, 2, stride=2))
    a, b = torch.tensor([[1.0, 0.0], [0.0, 0.0]]), torch.tensor([[0.0, 0.0], [0.0, 1.0]])
    show(
        "exercise 2: max-pool is not linear: pool(a + b), pool(a) + pool(b)",
        f"{pool2d(a + b, 2).item()}, {(pool2d(a, 2) + pool2d(b, 2)).item()}",
    )
    show("exercise 3: max_pool2x2_relu(X), from ReLUs and convolutions", max_pool2x2_relu(X))
    show(
        "exercise 3: max_pool_relu(X, 3) equals pool2d(X, 3)",
        torch.equal(max_pool_relu(X, 3), pool2d(X, 3)),
    )
    show("exercise 3: ReLU levels for 2x2 and 3x3", f"{relu_levels(2)} and {relu_levels(3)}")
    cost = pool_cost((1, 4, 4), 3, padding=1, stride=2)
    show(
        "exercise 4: 3x3, padding 1, stride 2 on 4x4: windows, comparisons",
        f"{cost.outputs}, {cost.comparisons}",
    )
    edges = corr2d(band_image(), EDGE)
    show(
        "exercise 5: 2x2 max vs avg of the edge map, first row",
        f"{pool2d(edges, 2)[0].tolist()} vs {pool2d(edges, 2, 'avg')[0].tolist()}",
    )
    show("exercise 6: min_pool2d(X, 2, stride=2) = -max-pool(-X)", min_pool2d(X, 2, stride=2))
    for temperature in (0.01, 1.0, 100.0):
        show(
            f"exercise 7: softmax pooling of the 3x3 X, 2x2, temperature {temperature}",
            softmax_pool2d(X3, 2, temperature),
        )


def section_7_6(out: Path) -> None:
    print(layer_table(LeNet(), MNIST_BATCH))
    book = layer_shapes(LeNet(), MNIST_BATCH)
    modern = layer_shapes(LeNet(activation="relu", pool="max"), MNIST_BATCH)
    show(
        "\nReLU + max-pooling LeNet: the same shapes",
        [s for _, s in modern] == [s for _, s in book],
    )
    (_, conv1), (_, pooled), (_, conv2) = book[0], book[2], book[3]  # Conv2d, AvgPool2d, Conv2d
    show("each 2x2 pool with stride 2 keeps", f"{math.prod(pooled) / math.prod(conv1):.0%}")
    show("the unpadded 5x5 conv2 shrinks", f"{pooled[-2:]} to {conv2[-2:]}")
    kept = CROP**2 / SCAN**2
    show(
        f"MNIST's {CROP}x{CROP} crop of the {SCAN}x{SCAN} scans keeps",
        f"{kept:.1%} of the pixels; the scans hold {1 / kept - 1:.1%} more",
    )


SECTIONS: dict[str, Callable[[Path], None]] = {
    "7.1": section_7_1,
    "7.2": section_7_2,
    "7.3": section_7_3,
    "7.4": section_7_4,
    "7.5": section_7_5,
    "7.6": section_7_6,
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
