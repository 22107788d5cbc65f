"""Chapter 7 from scratch: cross-correlation, padding and stride, channels, pooling.

One-sided padding (torch's `padding`) everywhere except `output_shape`, which takes the book's
total padding p = 2 * padding.
"""

from convlab.ops.channels import corr2d_multi_in, corr2d_multi_in_out, corr2d_multi_in_out_1x1
from convlab.ops.correlation import Conv2D, comp_conv2d, corr2d, corr2d_vectorized
from convlab.ops.images import band_image, example_input, example_kernel, framed_image
from convlab.ops.kernels import blur_kernel, derivative_kernel, edge_kernel, laplacian_kernel
from convlab.ops.learn_kernel import DivergenceError, KernelFit, learn_kernel
from convlab.ops.matmul import kernel_matrix
from convlab.ops.padding import mirror_pad2d, pad2d
from convlab.ops.pooling import pool2d
from convlab.ops.pooling_as_conv import avg_pool_as_conv, max_pool2x2_relu, relu_max
from convlab.ops.shapes import output_shape, pair
from convlab.ops.windows import im2col, sliding_windows

__all__ = [
    "Conv2D",
    "DivergenceError",
    "KernelFit",
    "avg_pool_as_conv",
    "band_image",
    "example_input",
    "example_kernel",
    "blur_kernel",
    "comp_conv2d",
    "corr2d",
    "corr2d_multi_in",
    "corr2d_multi_in_out",
    "corr2d_multi_in_out_1x1",
    "corr2d_vectorized",
    "derivative_kernel",
    "edge_kernel",
    "framed_image",
    "im2col",
    "kernel_matrix",
    "laplacian_kernel",
    "learn_kernel",
    "max_pool2x2_relu",
    "mirror_pad2d",
    "output_shape",
    "pad2d",
    "pair",
    "pool2d",
    "relu_max",
    "sliding_windows",
]
