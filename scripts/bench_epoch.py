"""What Lightning costs a whole epoch: the default recipe as a user runs it, against a plain PyTorch
loop doing the same training and validation on the same tensors.

``bench_overhead.py`` times training steps alone; an epoch also validates, writes checkpoints and
the dashboards, logs and draws the bar. Here the train.py side is ``python train.py OVERRIDES
trainer.max_epochs=E`` in a subprocess, everything on, plus one callback of this file that stamps
each epoch's start. The plain side is this file in a subprocess (``--plain``): the same network,
Preprocess, AdamW, one-cycle schedule, label smoothing and TensorBatches, and after each epoch a
validation pass over the same 5,000 images for loss and accuracy, as convlab's record keeps them.

A steady-state epoch is the median of epochs 2..E (the first one builds oneDNN's kernels). Each
repeat runs the sides back to back, each first in turn; the ratio is the median of the per-pair
ratios plain / train.py (images/s of train.py over the plain loop's). ``--variants`` also runs
train.py with one part switched off at a time (all, or those named), each paired with its own
plain run, to show where the difference goes.

    python scripts/bench_epoch.py [--epochs 4] [--repeats 3] [--variants [PART ...]] [--json PATH]
"""

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from bench_harness import (
    ROOT,
    bench_parser,
    compose,
    paired_ratio,
    parse,
    report,
    run_pairs,
    with_scripts_on_path,
)
from hydra.utils import instantiate

from convlab.train import build

TARGET = 0.90  # convlab's goal: an epoch of train.py within 10% of the plain loop's
# train.py with one part off (the overrides a user would type); "as run" is the recipe itself
VARIANTS = {
    "as run": [],
    "no dashboards": ["callbacks.dashboards=null"],
    "no progress bar": ["trainer.enable_progress_bar=false"],
    "no checkpoints": ["callbacks.model_checkpoint=null"],
    "no logger": ["~logger"],
}
COLUMNS = {
    "variant": "train.py",
    "trainpy_epoch_s": "train.py epoch s",
    "plain_epoch_s": "plain epoch s",
    "ratio": "ratio",
    "ratio_range": "ratio range",
    "target": "target",
    "verdict": "verdict",
}


class EpochClock(L.Callback):
    """Stamps each training epoch's start and the fit's end, into ``path`` as JSON."""

    def __init__(self, path: str):
        self.path, self.stamps = path, []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.stamps.append(time.perf_counter())

    def on_fit_end(self, trainer, pl_module) -> None:
        self.stamps.append(time.perf_counter())
        Path(self.path).write_text(json.dumps(self.stamps))


def steady_epoch(stamps: list[float]) -> float:
    """The median epoch after the first: the first builds kernels and warms caches."""
    epochs = [b - a for a, b in itertools.pairwise(stamps)]
    return statistics.median(epochs[1:])


def plain_loop(overrides: list[str], epochs: int) -> list[float]:
    """The recipe's training and validation as the book writes them, stamped like EpochClock."""
    with tempfile.TemporaryDirectory(prefix="convlab-bench-") as run_dir:
        cfg = compose(overrides, run_dir)
    if cfg.threads:  # as train.py sets them
        torch.set_num_threads(cfg.threads)
    L.seed_everything(cfg.seed, verbose=False)
    datamodule, classifier = build(cfg)
    datamodule.prepare_data()
    datamodule.setup("fit")
    net, preprocess = classifier.net, classifier.preprocess
    train, val = datamodule.train_dataloader(), datamodule.val_dataloader()
    optimizer = instantiate(cfg.optimizer)(params=net.parameters())
    schedule = instantiate(cfg.scheduler)(optimizer, total_steps=epochs * len(train))
    smoothing = cfg.module.label_smoothing
    stamps = []
    for _ in range(epochs):
        stamps.append(time.perf_counter())
        net.train()
        for images, labels in train:
            logits = net(preprocess(images))
            loss = F.cross_entropy(logits, labels, label_smoothing=smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
        net.eval()
        loss_sum, correct = torch.zeros(()), torch.zeros((), dtype=torch.long)
        with torch.no_grad():
            for images, labels in val:
                logits = net(preprocess(images))
                loss_sum += F.cross_entropy(logits, labels, reduction="sum")
                correct += (logits.argmax(1) == labels).sum()
        # read once, as convlab's record does: the values leave the device at the epoch's end
        float(loss_sum), int(correct)
    stamps.append(time.perf_counter())
    return stamps


def run_side(command: list[str], stamps: Path) -> float:
    """The steady-state epoch of one subprocess, from the stamps it leaves in ``stamps``."""
    env = os.environ | {"PYTHONPATH": with_scripts_on_path()}  # EpochClock's module
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env)
    if done.returncode:
        sys.exit(f"bench_epoch: {' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return steady_epoch(json.loads(stamps.read_text()))


def bench_variant(args, name: str, extra: list[str], work: Path) -> dict:
    stamps = work / "stamps.json"
    trainpy = [
        sys.executable, str(ROOT / "train.py"), *args.overrides, *extra,
        f"trainer.max_epochs={args.epochs}", "test=false",
        "+callbacks.epoch_clock._target_=bench_epoch.EpochClock",
        f"+callbacks.epoch_clock.path={stamps}",
    ]  # fmt: skip
    plain = [sys.executable, __file__, "--plain", str(stamps), "--epochs", str(args.epochs)]
    plain += ["--overrides", *args.overrides] if args.overrides else []
    runs = itertools.count()  # a finished run directory is never reused: one per run

    def trainpy_side() -> float:
        return run_side([*trainpy, f"hydra.run.dir={work / f'run{next(runs)}'}"], stamps)

    sides = {"plain": lambda: run_side(plain, stamps), "train.py": trainpy_side}
    times = run_pairs(sides, args.repeats)
    ratio, low, high = paired_ratio(times["plain"], times["train.py"])
    return {
        "variant": name,
        "trainpy_epoch_s": statistics.median(times["train.py"]),
        "plain_epoch_s": statistics.median(times["plain"]),
        "ratio": ratio,
        "ratio_range": f"{low:.3g}-{high:.3g}",
        "target": f">= {TARGET:g}x",
        "verdict": "met" if ratio >= TARGET else "MISSED",
    }


def main(argv: list[str] | None = None) -> list[dict]:
    parser = bench_parser(__doc__, repeats=3, threads=False)
    parser.add_argument("--epochs", type=int, default=4, help="epochs per run (default 4)")
    parser.add_argument("--overrides", nargs="*", default=[], help="train.py overrides")
    parts = list(VARIANTS)[1:]
    parser.add_argument(
        "--variants",
        nargs="*",
        choices=parts,
        default=None,
        metavar="PART",
        help=f"also train.py with one part off: these, or all when none is named ({parts})",
    )
    parser.add_argument("--plain", type=Path, default=None, help=argparse.SUPPRESS)
    args = parse(parser, argv)
    if args.plain is not None:  # the plain side, in its own process
        args.plain.write_text(json.dumps(plain_loop(args.overrides, args.epochs)))
        return []
    chosen = parts if args.variants == [] else args.variants or []
    variants = {name: VARIANTS[name] for name in ["as run", *chosen]}
    with tempfile.TemporaryDirectory(prefix="convlab-bench-") as work:
        rows = []
        for i, (name, extra) in enumerate(variants.items()):
            (Path(work) / str(i)).mkdir()
            rows.append(bench_variant(args, name, extra, Path(work) / str(i)))
    recipe = " ".join(args.overrides) or "the default recipe"
    print(f"{recipe}: {args.epochs} epochs a run, steady state: median of epochs 2-{args.epochs}")
    report(rows, COLUMNS, args, __file__)
    return rows


if __name__ == "__main__":
    main()
