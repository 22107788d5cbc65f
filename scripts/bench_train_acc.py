"""What logging train/acc costs: convlab's Lightning step with and without the training accuracy.

The same classifier trains on the same batches back to back, once as it is and once with its
train/acc metric's update turned into a no-op; the ratio is the median of ten or more alternated
pairs (bench_harness.run_pairs). convlab's goal: under 2% of a LeNet training step.

    python scripts/bench_train_acc.py [--model lenet_modern] [--batches 100] [--repeats 10]
"""

import statistics
import tempfile
from contextlib import contextmanager

import lightning as L
import torch
from bench_harness import (
    bench_parser,
    compose,
    lightning_seconds,
    paired_ratio,
    parse,
    quiet_lightning,
    report,
    run_pairs,
)

from convlab.train import build

GOAL = 0.02  # at most this share of a training step
COLUMNS = {
    "model": "model",
    "steps": "steps",
    "ms_with": "ms/step with train/acc",
    "ms_without": "ms/step without",
    "cost": "cost",
    "pair_range": "pair range",
    "goal": "goal",
    "verdict": "verdict",
}


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
    parser = bench_parser(__doc__, repeats=10, batches=100, warmup=10)
    parser.add_argument("--model", default="lenet_modern")
    parser.add_argument("--data", default="fashion_mnist", help="data config (or synthetic)")
    args = parse(parser, argv)
    with quiet_lightning(), tempfile.TemporaryDirectory(prefix="convlab-bench-") as run_dir:
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
            "ms_with": 1e3 * statistics.median(times["with"]) / args.batches,
            "ms_without": 1e3 * statistics.median(times["without"]) / args.batches,
            "cost": f"{100 * (ratio - 1):+.2f}%",
            "pair_range": f"{100 * (low - 1):+.1f}% to {100 * (high - 1):+.1f}%",
            "goal": f"< {100 * GOAL:g}%",
            "verdict": "met" if ratio - 1 < GOAL else "MISSED",
        }
    ]
    print(f"{torch.get_num_threads()} threads, batch {cfg.data.batch_size}, data={args.data}")
    report(rows, COLUMNS, args, __file__)
    return rows


if __name__ == "__main__":
    main()
