"""How far the from-scratch multi-channel cross-correlation is from F.conv2d on the CPU.

Times corr2d_multi_in_out and F.conv2d back to back (each first in every other pair, so both see
the same machine load) on a (64, 64, 64) input with a (64, 64, 3, 3) kernel, forward only, no
padding, stride 1; the ratio is the median of the per-pair ratios. convlab's goal: under 5.

    python scripts/bench_ops.py [--repeats 21] [--threads N] [--json PATH]
"""

import statistics
import time
from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F
from bench_harness import bench_parser, paired_ratio, parse, report, run_pairs

from convlab.ops import corr2d_multi_in_out

TARGET_RATIO = 5.0  # convlab's goal: from scratch at most 5x slower than F.conv2d
COLUMNS = {
    "scratch_ms": "corr2d_multi_in_out ms",
    "conv2d_ms": "F.conv2d ms",
    "ratio": "ratio",
    "ratio_range": "ratio range",
    "target": "target",
    "verdict": "verdict",
}


def seconds(fn: Callable[[], torch.Tensor]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse(bench_parser(__doc__, repeats=21), argv)
    generator = torch.Generator().manual_seed(0)
    X = torch.randn(64, 64, 64, generator=generator)  # (c_i, h, w)
    K = torch.randn(64, 64, 3, 3, generator=generator)  # (c_o, c_i, k_h, k_w)
    ours = partial(corr2d_multi_in_out, X, K)
    torch_conv = partial(F.conv2d, X.unsqueeze(0), K)  # torch wants a batch axis: (1, c_i, h, w)
    with torch.no_grad():
        torch.testing.assert_close(ours(), torch_conv()[0], rtol=1e-4, atol=1e-3)
        for fn in (ours, torch_conv):  # warm-up: first calls allocate and pick kernels
            fn()
        times = run_pairs(
            {"scratch": lambda: seconds(ours), "conv2d": lambda: seconds(torch_conv)},
            args.repeats,
        )
    ratio, low, high = paired_ratio(times["scratch"], times["conv2d"])
    rows = [
        {
            "scratch_ms": 1e3 * statistics.median(times["scratch"]),
            "conv2d_ms": 1e3 * statistics.median(times["conv2d"]),
            "ratio": ratio,
            "ratio_range": f"{low:.3g}-{high:.3g}",
            "target": f"< {TARGET_RATIO:g}x",
            "verdict": "met" if ratio < TARGET_RATIO else "MISSED",
        }
    ]
    print(f"{torch.get_num_threads()} threads, {args.repeats} pairs")
    report(rows, COLUMNS, args, __file__)
    return rows


if __name__ == "__main__":
    main()
