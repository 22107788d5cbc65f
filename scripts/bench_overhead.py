"""What Lightning costs: convlab's training path against a plain PyTorch loop doing the same work.

Both sides train copies of one network on the same tensors (TensorBatches of the DataModule's
training split), with the same Preprocess module, AdamW, label smoothing, batch size and threads.
The Lightning side is convlab's own: ``convlab.train.build`` and the configured Trainer, without
validation, checkpoints, loggers or progress bar, and with a constant learning rate on both sides
(``scheduler=none``: a per-step schedule costs the same microseconds in either loop).

Steady state only: a callback stamps the start of batch --warmup and of batch --warmup + --batches,
so the window holds whole steps, data fetching included, and no fit start-up or epoch end; the
plain loop is timed over the same steps. Each repeat runs the two sides back to back (each first in
turn) and the ratio is the median of the per-repeat ratios, steadier than a ratio of medians when
the machine's load drifts.

    python scripts/bench_overhead.py [--models lenet lenet_modern] [--batches 50] [--repeats 5]
                                     [--data fashion_mnist] [--json PATH]
"""

import argparse
import copy
import statistics
import tempfile
import time
from collections.abc import Iterable

import lightning as L
import torch
import torch.nn.functional as F
from bench_harness import (
    bench_parser,
    compose,
    lightning_seconds,
    paired_ratio,
    parse,
    quiet_lightning,
    report,
    run_pairs,
    synchronize,
)
from hydra.utils import instantiate
from torch import nn

from convlab.data.batches import TensorBatches
from convlab.train import build

TARGET = 0.90  # convlab's goal: Lightning's images/s at least 0.90x the plain loop's
COLUMNS = {
    "model": "model",
    "steps": "steps",
    "lightning_img_s": "lightning img/s",
    "plain_img_s": "plain img/s",
    "ratio": "ratio",
    "ratio_range": "ratio range",
    "target": "target",
    "verdict": "verdict",
}


def plain_seconds(
    net: nn.Module,
    preprocess: nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Iterable,
    label_smoothing: float,
    warmup: int,
    n: int,
) -> float:
    """Seconds for n steps of the book's loop, after warmup steps, on the same kind of window."""
    device = next(net.parameters()).device
    batches = iter(batches)
    for step in range(warmup + n):
        if step == warmup:
            synchronize(device)
            start = time.perf_counter()
        images, labels = next(batches)
        loss = F.cross_entropy(net(preprocess(images)), labels, label_smoothing=label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    synchronize(device)
    return time.perf_counter() - start


def bench_model(args: argparse.Namespace, model: str, run_dir: str) -> dict:
    overrides = [
        f"model={model}",
        f"data={args.data}",
        "data.resize=28",
        f"data.batch_size={args.batch_size}",
        "scheduler=none",
        "trainer=cpu",
        *args.overrides,
    ]
    cfg = compose(overrides, run_dir)
    L.seed_everything(cfg.seed, verbose=False)
    datamodule, classifier = build(cfg)
    datamodule.setup()
    net, preprocess = copy.deepcopy(classifier.net), classifier.preprocess
    optimizer = instantiate(cfg.optimizer)(params=net.parameters())
    batches = TensorBatches(
        *datamodule.splits["train"], batch_size=args.batch_size, shuffle=True, seed=cfg.seed
    )
    if len(batches) < args.warmup + args.batches + 1:
        raise SystemExit(
            f"bench_overhead: one epoch has {len(batches)} batches; lower --warmup/--batches"
        )
    sides = {
        "lightning": lambda: lightning_seconds(
            cfg, classifier, args.warmup, args.batches, datamodule=datamodule
        ),
        "plain": lambda: plain_seconds(
            net,
            preprocess,
            optimizer,
            batches,
            cfg.module.label_smoothing,
            args.warmup,
            args.batches,
        ),
    }
    times = run_pairs(sides, args.repeats)
    # images/s ratio = plain seconds / Lightning seconds, per pair
    ratio, low, high = paired_ratio(times["plain"], times["lightning"])
    images = args.batches * args.batch_size
    return {
        "model": model,
        "steps": args.batches,
        "lightning_img_s": images / statistics.median(times["lightning"]),
        "plain_img_s": images / statistics.median(times["plain"]),
        "ratio": ratio,
        "ratio_range": f"{low:.3g}-{high:.3g}",
        "target": f">= {TARGET:g}x",
        "verdict": "met" if ratio >= TARGET else "MISSED",
    }


def main(argv: list[str] | None = None) -> list[dict]:
    parser = bench_parser(__doc__, repeats=5, batches=50, warmup=5)
    parser.add_argument("--models", nargs="+", default=["lenet", "lenet_modern"])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--data", default="fashion_mnist", help="data config (or synthetic)")
    parser.add_argument("--overrides", nargs="*", default=[], help="more config overrides")
    args = parse(parser, argv)
    with quiet_lightning(), tempfile.TemporaryDirectory(prefix="convlab-bench-") as run_dir:
        rows = [bench_model(args, model, run_dir) for model in args.models]
    print(f"{torch.get_num_threads()} threads, batch {args.batch_size}, data={args.data}")
    report(rows, COLUMNS, args, __file__)
    return rows


if __name__ == "__main__":
    main()
