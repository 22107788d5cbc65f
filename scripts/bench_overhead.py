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
import logging
import statistics
import tempfile
import time
from collections.abc import Iterable

import lightning as L
import torch
import torch.nn.functional as F
from bench_report import paired_ratio, report, run_pairs
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn

from convlab.classifier import Classifier
from convlab.config import compose_run
from convlab.data.batches import TensorBatches
from convlab.train import build

TARGET = 0.90  # convlab's goal: Lightning's images/s at least 0.90x the plain loop's


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so a host timestamp means the work before it is done."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class StepClock(L.Callback):
    """Stamps the start of batch ``first`` and of batch ``first + n``: n whole training steps."""

    def __init__(self, first: int, n: int):
        self.first, self.n = first, n
        self.stamps: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if batch_idx in (self.first, self.first + self.n):
            synchronize(pl_module.device)
            self.stamps.append(time.perf_counter())

    @property
    def seconds(self) -> float:
        if len(self.stamps) != 2:
            raise RuntimeError(f"the epoch ended before batch {self.first + self.n}: fewer batches")
        return self.stamps[1] - self.stamps[0]


def compose(overrides: list[str], run_dir: str) -> DictConfig:
    """convlab's config for these overrides; Hydra's records go to run_dir, not outputs/."""
    return compose_run([*overrides, f"hydra.run.dir={run_dir}"])


def lightning_seconds(
    cfg: DictConfig, classifier: Classifier, warmup: int, n: int, **fit_data
) -> float:
    """Seconds for n steady-state steps of convlab's Trainer; fit_data: datamodule= or
    train_dataloaders=, as for Trainer.fit."""
    clock = StepClock(warmup, n)
    trainer = instantiate(
        cfg.trainer,
        max_epochs=1,
        limit_train_batches=warmup + n + 1,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        logger=False,
        callbacks=[clock],
    )
    trainer.fit(classifier, **fit_data)
    return clock.seconds


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
        "lightning img/s": images / statistics.median(times["lightning"]),
        "plain img/s": images / statistics.median(times["plain"]),
        "ratio": ratio,
        "ratio range": f"{low:.3g}-{high:.3g}",
        "target": f">= {TARGET:g}x",
        "verdict": "met" if ratio >= TARGET else "MISSED",
    }


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["lenet", "lenet_modern"])
    parser.add_argument("--batches", type=int, default=50, help="timed steps (default 50)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first (default 5)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per side (default 5)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--data", default="fashion_mnist", help="data config (or synthetic)")
    parser.add_argument("--overrides", nargs="*", default=[], help="more config overrides")
    parser.add_argument("--json", default=None, help="save the figures to this file")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)  # one banner per fit
    with tempfile.TemporaryDirectory(prefix="convlab-bench-") as run_dir:
        rows = [bench_model(args, model, run_dir) for model in args.models]
    print(f"{torch.get_num_threads()} threads, batch {args.batch_size}, data={args.data}")
    report(rows, args, __file__)
    return rows


if __name__ == "__main__":
    main()
