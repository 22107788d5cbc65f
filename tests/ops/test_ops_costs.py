"""Parameter and operation counts, held against real layers and torch's FLOP counter (7.1, 7.3 ex 4,
7.4 and its ex 2, 3, 6, 7, 7.5 ex 4)."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from convlab.ops import (
    ConvCost,
    conv_cost,
    corr2d,
    corr2d_in_strips,
    parameter_counts,
    pool_cost,
    sliding_windows,
    strip_plan,
    strip_reads_per_output,
)
from convlab.ops.padding import pad2d


def test_the_books_parameter_counts() -> None:
    counts = parameter_counts(side=1000, hidden=1000, delta=10)
    assert counts.dense_to_hidden == 10**9
    assert counts.dense_to_image == 10**12
    assert counts.shared == 1999**2 and abs(counts.shared / 4e6 - 1) < 1e-3  # the book's 4 * 10^6
    assert counts.local == 21**2 and counts.local > 4 * 10**2  # the book's 4 delta^2, rounded down
    assert round(counts.shared / counts.local, -3) == 9000  # about four orders of magnitude


def test_parameter_counts_match_real_layers() -> None:
    side, hidden, delta = 5, 7, 1
    counts = parameter_counts(side, hidden, delta)
    assert nn.Linear(side * side, hidden, bias=False).weight.numel() == counts.dense_to_hidden
    assert nn.Linear(side * side, side * side, bias=False).weight.numel() == counts.dense_to_image
    # one kernel entry per offset between two pixels: a (2 side - 1)^2 kernel, padded to keep size
    every_offset = nn.Conv2d(1, 1, 2 * side - 1, padding=side - 1, bias=False)
    assert every_offset(torch.zeros(1, 1, side, side)).shape[-2:] == (side, side)
    assert every_offset.weight.numel() == counts.shared
    assert nn.Conv2d(1, 1, 2 * delta + 1, bias=False).weight.numel() == counts.local


def flops(function) -> int:
    """The FLOPs torch counts while `function` runs (2 per multiply-add)."""
    with FlopCounterMode(display=False) as counter:
        function()
    return counter.get_total_flops()


# (input (c_i, h, w), kernel (c_o, c_i / groups, k_h, k_w), one-sided padding, stride)
CASES = [
    ((2, 3, 3), (3, 2, 2, 2), 0, 1),
    ((3, 8, 8), (4, 3, 3, 3), 1, 2),
    ((4, 9, 7), (6, 2, 3, 1), (1, 0), (2, 1)),  # groups = 2
]


@pytest.mark.parametrize(("in_shape", "kernel_shape", "padding", "stride"), CASES)
def test_conv_cost_matches_torchs_flop_counter_and_saved_tensors(
    in_shape, kernel_shape, padding, stride
) -> None:
    cost = conv_cost(in_shape, kernel_shape, padding, stride)
    X = torch.randn(1, *in_shape, requires_grad=True)
    K = torch.randn(kernel_shape, requires_grad=True)
    groups = in_shape[0] // kernel_shape[1]
    forward_flops = flops(lambda: F.conv2d(X, K, None, stride, padding, groups=groups))
    assert forward_flops == 2 * cost.multiply_adds == cost.operations  # a multiply-add is 2 FLOPs
    Y = F.conv2d(X, K, None, stride, padding, groups=groups)
    assert X.numel() + K.numel() + Y.numel() == cost.forward_memory
    saved = Y.grad_fn._saved_input.numel() + Y.grad_fn._saved_weight.numel()
    assert saved + Y.numel() + X.numel() + K.numel() == cost.backward_memory  # + dY, dX, dK
    if groups == 1:
        assert flops(lambda: Y.sum().backward()) == 2 * cost.backward_multiply_adds
    else:  # torch's counter books a grouped dX as dense; dX is a grouped transposed convolution
        dY, weight = Y.detach(), K.detach()
        dX = flops(lambda: F.conv_transpose2d(dY, weight, None, stride, padding, groups=groups))
        assert dX == cost.operations


def test_the_two_channel_example_cost() -> None:
    cost = conv_cost((2, 3, 3), (3, 2, 2, 2))
    assert cost == ConvCost(
        multiply_adds=96, forward_memory=54, backward_memory=96, backward_multiply_adds=192
    )


def test_the_books_cost_example_and_its_doublings() -> None:
    cost = conv_cost((128, 256, 256), (128, 128, 5, 5), padding=2)
    assert cost.operations == 53_687_091_200  # "over 53 billion"
    doubled = conv_cost((256, 256, 256), (256, 256, 5, 5), padding=2)
    assert doubled.multiply_adds == 4 * cost.multiply_adds
    padded = conv_cost((128, 256, 256), (128, 128, 5, 5), padding=4)
    assert padded.multiply_adds / cost.multiply_adds == pytest.approx((260 / 256) ** 2)


def test_stride_divides_the_work() -> None:
    dense, strided = (conv_cost((1, 8, 8), (1, 1, 3, 3), 1, s).multiply_adds for s in (1, 2))
    assert (dense, strided) == (576, 144)


def test_block_diagonal_channels_save_the_number_of_blocks() -> None:
    dense = conv_cost((8, 5, 5), (8, 8, 1, 1))
    blocked = conv_cost((8, 5, 5), (8, 8 // 4, 1, 1))
    assert dense.multiply_adds == 4 * blocked.multiply_adds


@pytest.mark.parametrize(
    ("in_shape", "pool_size", "padding", "stride"),
    [((1, 4, 4), 3, 1, 2), ((3, 7, 9), (2, 3), (1, 0), (1, 2)), ((2, 3, 3), 2, 0, 1)],
)
def test_pool_cost_counts_the_windows(in_shape, pool_size, padding, stride) -> None:
    cost = pool_cost(in_shape, pool_size, padding, stride)
    windows = sliding_windows(pad2d(torch.zeros(in_shape), padding), pool_size, stride)
    assert cost.outputs * cost.window == windows.numel()
    assert cost.comparisons == windows.numel() - cost.outputs


def test_the_pooling_example_cost() -> None:
    cost = pool_cost((1, 4, 4), 3, padding=1, stride=2)
    assert (cost.outputs, cost.window, cost.comparisons, cost.avg_operations) == (4, 9, 32, 36)


@pytest.mark.parametrize("delta", [1, 2, 3, 4, 8, 20])
def test_wider_strips_read_fewer_columns_per_output(delta: int) -> None:
    X = torch.randint(0, 10, (5, 14), generator=torch.Generator().manual_seed(0)).float()
    K = torch.ones(3, 3)
    assert torch.equal(corr2d_in_strips(X, K, delta), corr2d(X, K))
    plan = strip_plan(14, 3, delta)
    columns_read = sum(columns.stop - columns.start for columns, _ in plan)
    outputs = sum(out.stop - out.start for _, out in plan)
    assert outputs == 12
    if outputs % delta == 0:  # no narrower last strip
        assert columns_read / outputs == strip_reads_per_output(3, delta)
    assert strip_reads_per_output(3, delta) == (3 + delta - 1) / delta
