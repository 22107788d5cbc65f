"""How far the from-scratch multi-channel cross-correlation is from F.conv2d on the CPU.

Times corr2d_multi_in_out and F.conv2d side by side (interleaved, so both see the same machine
load) on a (64, 64, 64) input with a (64, 64, 3, 3) kernel, forward only, no padding, stride 1,
and prints the median of each and their ratio. convlab's goal: a ratio under 5.

    python scripts/bench_ops.py [--repeats 21] [--threads N]
"""

import argparse
import statistics
import time
from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F

from convlab.ops import corr2d_multi_in_out

TARGET_RATIO = 5.0  # convlab's goal: from scratch at most 5x slower than F.conv2d


def seconds(fn: Callable[[], torch.Tensor]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=21, help="timed runs of each (default 21)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    generator = torch.Generator().manual_seed(0)
    X = torch.randn(64, 64, 64, generator=generator)  # (c_i, h, w)
    K = torch.randn(64, 64, 3, 3, generator=generator)  # (c_o, c_i, k_h, k_w)
    ours = partial(corr2d_multi_in_out, X, K)
    torch_conv = partial(F.conv2d, X.unsqueeze(0), K)  # torch wants a batch axis: (1, c_i, h, w)

    with torch.no_grad():
        torch.testing.assert_close(ours(), torch_conv()[0], rtol=1e-4, atol=1e-3)
        for fn in (ours, torch_conv):  # warm-up: first calls allocate and pick kernels
            fn()
        times: dict[str, list[float]] = {"corr2d_multi_in_out": [], "F.conv2d": []}
        for _ in range(args.repeats):
            times["corr2d_multi_in_out"].append(seconds(ours))
            times["F.conv2d"].append(seconds(torch_conv))

    medians = {name: statistics.median(ts) for name, ts in times.items()}
    for name, median in medians.items():
        print(f"{name:>20}: {median * 1e3:8.3f} ms (median of {args.repeats})")
    ratio = medians["corr2d_multi_in_out"] / medians["F.conv2d"]
    verdict = "within" if ratio < TARGET_RATIO else "OVER"
    threads = torch.get_num_threads()
    print(f"ratio: {ratio:.2f}x ({verdict} the {TARGET_RATIO:g}x target) on {threads} threads")
    return ratio


if __name__ == "__main__":
    main()
