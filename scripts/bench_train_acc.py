"""What logging train/acc costs: convlab's Lightning step with and without the training accuracy.

The same classifier trains on the same batches back to back, once as it is and once with its
train/acc metric's update turned into a no-op; the ratio is the median of ten or more alternated
pairs (bench_report.run_pairs). convlab's goal: under 2% of a LeNet training step.

    python scripts/bench_train_acc.py [--model lenet_modern] [--batches 100] [--repeats 10]
"""

import argparse
import logging
import statistics
import tempfile
from contextlib import contextmanager

import lightning as L
import torch
from bench_overhead import compose, lightning_seconds
from bench_report import paired_ratio, report, run_pairs

from convlab.train import build

GOAL = 0.02  # at most this share of a training step


@contextmanager
def without_train_accuracy(classifier):
    """The train/acc metric's update as a no-op: the step without it, everything else the same."""
    update = classifier.train_acc.update
    classifier.train_acc.update = lambda *args, **kwargs: None
    try:
        yield
    finally:
        classifier.train_acc.update = update


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lenet_modern")
    parser.add_argument("--batches", type=int, default=100, help="timed steps (default 100)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps first (default 10)")
    parser.add_argument("--repeats", type=int, default=10, help="pairs (default 10)")
    parser.add_argument("--data", default="fashion_mnist", help="data config (or synthetic)")
    parser.add_argument("--json", default=None, help="save the figures to this file")
    args = parser.parse_args(argv)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="convlab-bench-") as run_dir:
        cfg = compose([f"model={args.model}", f"data={args.data}", "scheduler=none"], run_dir)
        L.seed_everything(cfg.seed, verbose=False)
        datamodule, classifier = build(cfg)

        def without() -> float:
            with without_train_accuracy(classifier):
                return lightning_seconds(
                    cfg, classifier, args.warmup, args.batches, datamodule=datamodule
                )

        times = run_pairs(
            {
                "with": lambda: lightning_seconds(
                    cfg, classifier, args.warmup, args.batches, datamodule=datamodule
                ),
                "without": without,
            },
            args.repeats,
        )
    ratio, low, high = paired_ratio(times["with"], times["without"])
    rows = [
        {
            "model": args.model,
            "steps": args.batches,
            "ms/step with train/acc": 1e3 * statistics.median(times["with"]) / args.batches,
            "ms/step without": 1e3 * statistics.median(times["without"]) / args.batches,
            "cost": f"{100 * (ratio - 1):+.2f}%",
            "pair range": f"{100 * (low - 1):+.1f}% to {100 * (high - 1):+.1f}%",
            "goal": f"< {100 * GOAL:g}%",
            "verdict": "met" if ratio - 1 < GOAL else "MISSED",
        }
    ]
    print(f"{torch.get_num_threads()} threads, batch {cfg.data.batch_size}, data={args.data}")
    report(rows, args, __file__)
    return rows


if __name__ == "__main__":
    main()
