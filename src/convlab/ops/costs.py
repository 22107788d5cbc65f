"""Counting parameters and operations: 7.1's argument for convolutions, and 7.3-7.5's costs.

Counts are exact integers from the shapes; the tests hold them against real layers (parameter
counts of nn.Linear / nn.Conv2d, torch's FLOP counter), so the formulas cannot drift.
"""

from dataclasses import dataclass

from convlab.ops.shapes import Size2, output_shape, pair


@dataclass(frozen=True)
class ParameterCounts:
    """Weights of one layer from a side x side image, under 7.1's successive assumptions."""

    dense_to_hidden: int  # fully connected to `hidden` units: side^2 * hidden
    dense_to_image: int  # fully connected to a side x side hidden image, V[i, j, a, b]: side^4
    shared: int  # translation invariance, V[a, b] for every offset within the image
    local: int  # locality, V[a, b] with |a|, |b| <= delta


def parameter_counts(side: int = 1000, hidden: int = 1000, delta: int = 10) -> ParameterCounts:
    """7.1's parameter counts, exactly; the book rounds the last two.

    An offset a between two pixels of a side-long axis takes 2 side - 1 values, so V[a, b] has
    (2 side - 1)^2 ~ 4 side^2 entries (the book's 4 * 10^6 at side 1000); |a| <= delta leaves
    2 delta + 1 values per axis, (2 delta + 1)^2 entries, whose leading term is the book's
    4 delta^2.
    """
    pixels = side * side
    return ParameterCounts(
        dense_to_hidden=pixels * hidden,
        dense_to_image=pixels * pixels,
        shared=(2 * side - 1) ** 2,
        local=(2 * delta + 1) ** 2,
    )


@dataclass(frozen=True)
class ConvCost:
    """Work and memory of one convolution, counted in multiply-adds and stored numbers."""

    multiply_adds: int  # forward: one multiplication and one addition per kernel tap per output
    forward_memory: int  # numbers held: input + kernel + output
    backward_memory: int  # input and kernel kept by the forward, dL/dY, dL/dX and dL/dK
    backward_multiply_adds: int  # dL/dX and dL/dK, each as much work as the forward

    @property
    def operations(self) -> int:
        """Multiplications and additions counted separately, as the book counts them."""
        return 2 * self.multiply_adds


def conv_cost(
    in_shape: tuple[int, int, int],
    kernel_shape: tuple[int, int, int, int],
    padding: Size2 = 0,
    stride: Size2 = 1,
) -> ConvCost:
    """Cost of a (c_i, h, w) input through a (c_o, c_i / groups, k_h, k_w) kernel (7.4 ex 2).

    Every output pixel of every output channel takes one multiply-add per kernel entry, so the
    forward is c_o (c_i / g) k_h k_w h' w'; a grouped kernel (torch's shape for groups = g) needs
    g times fewer. The backward computes two gradients of the forward's size of work: the
    input's (a transposed convolution of dL/dY with K) and the kernel's (a correlation of X with
    dL/dY); it needs the input and the kernel saved by the forward (not the output), the
    incoming dL/dY and room for the two gradients. `padding` is one-sided, as torch's.
    """
    c_i, h, w = in_shape
    c_o, c_per_group, k_h, k_w = kernel_shape
    q_h, q_w = pair(padding)
    out_h, out_w = output_shape((h, w), (k_h, k_w), (2 * q_h, 2 * q_w), stride)
    inputs, weights, outputs = c_i * h * w, c_o * c_per_group * k_h * k_w, c_o * out_h * out_w
    multiply_adds = weights * out_h * out_w
    return ConvCost(
        multiply_adds=multiply_adds,
        forward_memory=inputs + weights + outputs,
        backward_memory=2 * (inputs + weights) + outputs,
        backward_multiply_adds=2 * multiply_adds,
    )


@dataclass(frozen=True)
class PoolCost:
    """Work of one pooling layer: its windows and the numbers each one aggregates."""

    outputs: int  # c h' w' windows
    window: int  # p_h p_w numbers per window

    @property
    def comparisons(self) -> int:
        """Max-pooling: a running maximum needs window - 1 comparisons per output."""
        return self.outputs * (self.window - 1)

    @property
    def avg_operations(self) -> int:
        """Average pooling: window - 1 additions and one division per output."""
        return self.outputs * self.window


def pool_cost(
    in_shape: tuple[int, int, int], pool_size: Size2, padding: Size2 = 0, stride: Size2 = 1
) -> PoolCost:
    """Cost of pooling a (c, h, w) input (7.5 ex 4): c h' w' windows of p_h p_w numbers each.

    No parameters and no multiplications: the work is linear in the output size and the window,
    c h' w' p_h p_w, with h' = floor((h + 2 q_h - p_h + s_h) / s_h) for one-sided padding q_h.
    """
    c, h, w = in_shape
    k_h, k_w = pair(pool_size)
    q_h, q_w = pair(padding)
    out_h, out_w = output_shape((h, w), (k_h, k_w), (2 * q_h, 2 * q_w), stride)
    return PoolCost(outputs=c * out_h * out_w, window=k_h * k_w)


def strip_plan(n_w: int, k_w: int, delta: int) -> list[tuple[slice, slice]]:
    """(input columns, output columns) of each strip when a correlation makes delta at a time.

    Scanning across the image, a strip of k_w + delta - 1 input columns holds every window of
    delta neighbouring output columns (7.4 ex 6); the last strip may be narrower.
    """
    out_w = n_w - k_w + 1
    plan = []
    for start in range(0, out_w, delta):
        stop = min(start + delta, out_w)
        plan.append((slice(start, stop + k_w - 1), slice(start, stop)))
    return plan


def strip_reads_per_output(k_w: int, delta: int) -> float:
    """Input columns read per output column with delta-wide strips: (k_w + delta - 1) / delta.

    delta = 1 reads every column k_w times; wider strips share the k_w - 1 overlapping columns, so
    the cost falls towards one read per column. The limit is fast memory: the strip, h (k_w +
    delta - 1) numbers, plus its delta outputs must fit in cache or registers, else the reads it
    saves come back as cache misses.
    """
    return (k_w + delta - 1) / delta
