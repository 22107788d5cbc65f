"""Property tests: each from-scratch operation equals torch.nn.functional, values and gradients.

Shapes, channels, one-sided padding and stride are drawn by hypothesis; the tensor values come
from a drawn seed. Everything runs in float64 so that the default tolerances are tight.
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor

from convlab.ops import (
    avg_pool_as_conv,
    corr2d,
    corr2d_multi_in,
    corr2d_multi_in_out,
    corr2d_multi_in_out_1x1,
    corr2d_vectorized,
    fractional_stride_conv,
    kernel_matrix,
    max_pool2x2_relu,
    max_pool_relu,
    min_pool2d,
    mirror_pad2d,
    output_shape,
    pool2d,
    relu_max,
)

SETTINGS = settings(max_examples=40, deadline=None)
# the exercises' operations: fewer draws, their worked examples are tested on their own as well
EXERCISE_SETTINGS = settings(max_examples=15, deadline=None)


@dataclass(frozen=True)
class Case:
    """One drawn configuration: (batch, c_i, h, w) input, (c_o, c_i, k_h, k_w) kernel."""

    batch: int
    c_i: int
    c_o: int
    h: int
    w: int
    kernel: tuple[int, int]
    padding: tuple[int, int]  # one-sided, torch's convention
    stride: tuple[int, int]
    seed: int

    def generator(self, stream: int) -> torch.Generator:
        """A generator per tensor (input 0, kernel 1), so that their values differ."""
        return torch.Generator().manual_seed(self.seed + stream)

    def randn(self, *shape: int, stream: int = 0) -> Tensor:
        return torch.randn(shape, generator=self.generator(stream), dtype=torch.float64)

    def distinct(self, *shape: int) -> Tensor:
        """Values without ties (a shuffled arange), so that every max has one winner."""
        n = torch.Size(shape).numel()
        return torch.randperm(n, generator=self.generator(0)).reshape(shape).double() / n - 0.5


@st.composite
def cases(draw: st.DrawFn, max_pad: Callable[[int], int] = lambda k: 2) -> Case:
    """A configuration whose window fits; `max_pad(k)` bounds the padding of a size-k window."""
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    padding = tuple(draw(st.integers(0, max_pad(k))) for k in kernel)
    # the padded input must hold at least one window
    h, w = (draw(st.integers(max(1, k - 2 * q), 9)) for k, q in zip(kernel, padding, strict=True))
    return Case(
        batch=draw(st.integers(1, 2)),
        c_i=draw(st.integers(1, 3)),
        c_o=draw(st.integers(1, 3)),
        h=h,
        w=w,
        kernel=kernel,
        padding=padding,
        stride=(draw(st.integers(1, 3)), draw(st.integers(1, 3))),
        seed=draw(st.integers(0, 2**31)),
    )


# torch's pooling allows at most half a window of padding
pool_cases = cases(max_pad=lambda k: k // 2)


def assert_matches(ours: Callable[..., Tensor], reference: Callable[..., Tensor], *inputs: Tensor):
    """Same output, and same gradients of a random projection <G, Y> for every input."""
    inputs = tuple(t.detach().requires_grad_() for t in inputs)
    Y, Y_ref = ours(*inputs), reference(*inputs)
    torch.testing.assert_close(Y, Y_ref)
    G = torch.randn(Y_ref.shape, generator=torch.Generator().manual_seed(1), dtype=Y_ref.dtype)
    grads = torch.autograd.grad((Y * G).sum(), inputs)
    grads_ref = torch.autograd.grad((Y_ref * G).sum(), inputs)
    for grad, grad_ref in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(grad, grad_ref)


@SETTINGS
@given(cases())
def test_corr2d_loop(case: Case) -> None:
    assert_matches(
        lambda X, K: corr2d(X, K, case.padding, case.stride),
        lambda X, K: F.conv2d(X[None, None], K[None, None], None, case.stride, case.padding)[0, 0],
        case.randn(case.h, case.w),
        case.randn(*case.kernel, stream=1),
    )


@SETTINGS
@given(cases())
def test_corr2d_vectorized_filters_each_leading_axis(case: Case) -> None:
    assert_matches(
        lambda X, K: corr2d_vectorized(X, K, case.padding, case.stride),
        # every (batch, channel) image on its own: (b, c, h, w) -> (b c, 1, h, w) and back
        lambda X, K: (
            F.conv2d(X.flatten(0, 1).unsqueeze(1), K[None, None], None, case.stride, case.padding)
            .squeeze(1)
            .unflatten(0, X.shape[:2])
        ),
        case.randn(case.batch, case.c_i, case.h, case.w),
        case.randn(*case.kernel, stream=1),
    )


@SETTINGS
@given(cases())
def test_corr2d_multi_in(case: Case) -> None:
    assert_matches(
        lambda X, K: corr2d_multi_in(X, K, case.padding, case.stride),
        lambda X, K: F.conv2d(X, K[None], None, case.stride, case.padding)[:, 0],
        case.randn(case.batch, case.c_i, case.h, case.w),
        case.randn(case.c_i, *case.kernel, stream=1),
    )


@SETTINGS
@given(cases(), st.booleans())
def test_corr2d_multi_in_out(case: Case, batched: bool) -> None:
    shape = (case.batch, case.c_i, case.h, case.w) if batched else (case.c_i, case.h, case.w)
    X = case.randn(*shape)
    K = case.randn(case.c_o, case.c_i, *case.kernel, stream=1)
    assert_matches(
        lambda X, K: corr2d_multi_in_out(X, K, case.padding, case.stride),
        lambda X, K: F.conv2d(X, K, None, case.stride, case.padding),
        X,
        K,
    )
    total_padding = tuple(2 * q for q in case.padding)  # the book's p counts both sides
    expected = F.conv2d(X, K, None, case.stride, case.padding).shape[-2:]
    assert output_shape((case.h, case.w), case.kernel, total_padding, case.stride) == expected


@SETTINGS
@given(cases())
def test_kernel_matrix_times_flat_image(case: Case) -> None:
    def as_matmul(X: Tensor, K: Tensor) -> Tensor:
        W = kernel_matrix(K, (case.h, case.w), case.padding, case.stride)
        return W @ X.flatten()

    assert_matches(
        as_matmul,
        lambda X, K: F.conv2d(X, K, None, case.stride, case.padding).flatten(),
        case.randn(case.c_i, case.h, case.w),
        case.randn(case.c_o, case.c_i, *case.kernel, stream=1),
    )


@SETTINGS
@given(cases())
def test_1x1_as_matmul(case: Case) -> None:
    assert_matches(
        corr2d_multi_in_out_1x1,
        F.conv2d,
        case.randn(case.batch, case.c_i, case.h, case.w),
        case.randn(case.c_o, case.c_i, 1, 1, stream=1),
    )


@SETTINGS
@given(pool_cases)
def test_max_pool(case: Case) -> None:
    assert_matches(
        lambda X: pool2d(X, case.kernel, "max", case.padding, case.stride),
        lambda X: F.max_pool2d(X, case.kernel, case.stride, case.padding),
        case.distinct(case.batch, case.c_i, case.h, case.w),
    )


@SETTINGS
@given(pool_cases, st.booleans())
def test_avg_pool(case: Case, count_include_pad: bool) -> None:
    assert_matches(
        lambda X: pool2d(X, case.kernel, "avg", case.padding, case.stride, count_include_pad),
        lambda X: F.avg_pool2d(X, case.kernel, case.stride, case.padding, False, count_include_pad),
        case.randn(case.batch, case.c_i, case.h, case.w),
    )


@SETTINGS
@given(pool_cases)
def test_avg_pool_as_conv_counts_padding(case: Case) -> None:
    assert_matches(
        lambda X: avg_pool_as_conv(X, case.kernel, case.padding, case.stride),
        lambda X: F.avg_pool2d(X, case.kernel, case.stride, case.padding, count_include_pad=True),
        case.randn(case.batch, case.c_i, case.h, case.w),
    )


@SETTINGS
@given(cases())
def test_max_pool2x2_from_relus(case: Case) -> None:
    h, w = case.h + 1, case.w + 1  # a 2x2 window needs two rows and columns
    assert_matches(
        lambda X: max_pool2x2_relu(X, case.stride),
        lambda X: F.max_pool2d(X, 2, case.stride),
        case.distinct(case.batch, case.c_i, h, w),
    )


@SETTINGS
@given(cases())
def test_relu_max(case: Case) -> None:
    a, b = case.distinct(2, case.h, case.w)
    assert_matches(relu_max, torch.maximum, a, b)


@SETTINGS
@given(cases())
def test_mirror_padding(case: Case) -> None:
    h, w = case.h + case.padding[0], case.w + case.padding[1]  # reflect needs padding < size
    q_h, q_w = case.padding
    assert_matches(
        lambda X: mirror_pad2d(X, case.padding),
        lambda X: F.pad(X, (q_w, q_w, q_h, q_h), mode="reflect"),
        case.randn(case.batch, case.c_i, h, w),
    )


@EXERCISE_SETTINGS
@given(pool_cases)
def test_min_pool(case: Case) -> None:
    assert_matches(
        lambda X: min_pool2d(X, case.kernel, case.padding, case.stride),
        lambda X: -F.max_pool2d(-X, case.kernel, case.stride, case.padding),
        case.distinct(case.batch, case.c_i, case.h, case.w),
    )


@EXERCISE_SETTINGS
@given(cases())
def test_max_pool_from_relus_any_window(case: Case) -> None:
    assert_matches(
        lambda X: max_pool_relu(X, case.kernel, case.stride),
        lambda X: F.max_pool2d(X, case.kernel, case.stride),
        case.distinct(case.batch, case.c_i, case.h + 3, case.w + 3),  # the window must fit
    )


@EXERCISE_SETTINGS
@given(cases())
def test_fractional_stride_is_conv_transpose2d(case: Case) -> None:
    factor = case.stride[0]
    assert_matches(
        lambda X, K: fractional_stride_conv(X, K, factor),
        lambda X, K: F.conv_transpose2d(X[None, None], K[None, None], stride=factor)[0, 0],
        case.randn(case.h, case.w),
        case.randn(*case.kernel, stream=1),
    )
