"""Sizes of a sliding window's output, in the book's notation (section 7.3)."""

from convlab.errors import ConvlabError
from convlab.sizes import Size2, pair


def output_shape(n: Size2, k: Size2, p: Size2, s: Size2) -> tuple[int, int]:
    """floor((n - k + p + s) / s) per axis, the book's formula for the output of a window.

    `p` is the book's padding: the rows (columns) added on both sides *together*, so torch's
    one-sided `padding=q` is p = 2q here. The padded axis has n + p - k positions past the first
    one and the window visits every s-th of them, plus the first: floor((n + p - k) / s) + 1.
    """
    (n_h, n_w), (k_h, k_w), (p_h, p_w), (s_h, s_w) = map(pair, (n, k, p, s))
    out = (n_h - k_h + p_h + s_h) // s_h, (n_w - k_w + p_w + s_w) // s_w
    if min(out) < 1:
        raise ConvlabError(
            f"a {k_h}x{k_w} window does not fit a {n_h}x{n_w} input with padding ({p_h}, {p_w}) "
            "in total; pad more or use a smaller window"
        )
    return out


def stacked_output_shape(n: Size2, k: Size2, p: Size2, s: Size2, layers: int) -> tuple[int, int]:
    """The output of `layers` identical layers in a row, each by `output_shape` (book's total p).

    Without padding every k x k layer takes k - 1 rows and columns: ten 5x5 layers take a
    240x240 image down to 200x200 (7.3).
    """
    shape = pair(n)
    for _ in range(layers):
        shape = output_shape(shape, k, p, s)
    return shape
