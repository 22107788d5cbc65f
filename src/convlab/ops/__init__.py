"""Chapter 7 from scratch: cross-correlation and strict convolution, padding and stride, channels,
pooling, receptive fields, and the counts of parameters and operations the chapter argues with.

One-sided padding (torch's `padding`) everywhere except `output_shape` and `stacked_output_shape`,
which take the book's total padding p = 2 * padding.
"""

from convlab.ops.channels import (
    channel_shuffle,
    corr2d_grouped_1x1,
    corr2d_multi_in,
    corr2d_multi_in_out,
    corr2d_multi_in_out_1x1,
    corr2d_multi_in_out_loop,
)
from convlab.ops.convolution import (
    compose_kernels,
    convolve2d,
    convolve_fft,
    convolve_full,
    dilate,
    fractional_stride_conv,
    split_kernel,
)
from convlab.ops.correlation import (
    Conv2D,
    comp_conv2d,
    corr2d,
    corr2d_in_strips,
    corr2d_vectorized,
)
from convlab.ops.costs import (
    ConvCost,
    ParameterCounts,
    PoolCost,
    conv_cost,
    parameter_counts,
    pool_cost,
    strip_plan,
    strip_reads_per_output,
)
from convlab.ops.images import band_image, example_input, example_kernel, framed_image
from convlab.ops.kernels import blur_kernel, derivative_kernel, edge_kernel, laplacian_kernel
from convlab.ops.learn_kernel import (
    BOOK_RECIPE,
    STABLE_RECIPE,
    DivergenceError,
    KernelFit,
    Recipe,
    learn_kernel,
)
from convlab.ops.matmul import kernel_matrix
from convlab.ops.padding import mirror_pad2d, pad2d
from convlab.ops.pooling import min_pool2d, pool2d, softmax_pool2d
from convlab.ops.pooling_as_conv import (
    avg_pool_as_conv,
    max_pool2x2_relu,
    max_pool_relu,
    relu_levels,
    relu_max,
)
from convlab.ops.receptive import pixel_utilization, receptive_field, stacked_ones
from convlab.ops.shapes import output_shape, pair, stacked_output_shape
from convlab.ops.windows import im2col, sliding_windows

__all__ = [
    "BOOK_RECIPE",
    "Conv2D",
    "ConvCost",
    "DivergenceError",
    "KernelFit",
    "ParameterCounts",
    "PoolCost",
    "Recipe",
    "STABLE_RECIPE",
    "avg_pool_as_conv",
    "band_image",
    "blur_kernel",
    "channel_shuffle",
    "comp_conv2d",
    "compose_kernels",
    "conv_cost",
    "convolve2d",
    "convolve_fft",
    "convolve_full",
    "corr2d",
    "corr2d_grouped_1x1",
    "corr2d_in_strips",
    "corr2d_multi_in",
    "corr2d_multi_in_out",
    "corr2d_multi_in_out_1x1",
    "corr2d_multi_in_out_loop",
    "corr2d_vectorized",
    "derivative_kernel",
    "dilate",
    "edge_kernel",
    "example_input",
    "example_kernel",
    "fractional_stride_conv",
    "framed_image",
    "im2col",
    "kernel_matrix",
    "laplacian_kernel",
    "learn_kernel",
    "max_pool2x2_relu",
    "max_pool_relu",
    "min_pool2d",
    "mirror_pad2d",
    "output_shape",
    "pad2d",
    "pair",
    "parameter_counts",
    "pixel_utilization",
    "pool2d",
    "pool_cost",
    "receptive_field",
    "relu_levels",
    "relu_max",
    "sliding_windows",
    "softmax_pool2d",
    "split_kernel",
    "stacked_ones",
    "stacked_output_shape",
    "strip_plan",
    "strip_reads_per_output",
]
