"""The book's own LeNet code against convlab's run of the same recipe, live, on this machine.

The book's side is the ``d2l`` package (1.0.3) from the package index, run as section 7.6 runs it:
``d2l.LeNet`` (or its ReLU + max-pooling variant, the book's exercise), ``d2l.FashionMNIST``
(PIL per sample, 4 DataLoader workers), ``d2l.Trainer``, Xavier init by ``d2l.init_cnn``, SGD lr
0.1, batch 128. convlab's side is ``python train.py experiment=lenet_book`` (with
``model.activation=relu model.pool=max`` for the variant).

Same work on both sides: the book's ``fit`` evaluates the 10,000 test images after every epoch, so
convlab's run gets the same per-epoch evaluation (``TestEachEpoch`` below, added with
``+callbacks``); each side then measures its final test accuracy once. Each side runs in a fresh
process: "fit s" is training plus the per-epoch evaluations, "wall s" is launch to exit (imports,
data loading and the final test included). Each repeat runs the two sides back to back, each first
in every other repeat, with the same seed; ratios are the median of the per-repeat ratios.

The book's package pins old numpy/jupyter versions that cannot install beside this torch, so it is
never a dependency of convlab: ``--setup`` installs it without its pins (``pip install --no-deps
d2l==1.0.3`` and the modules ``d2l/torch.py`` imports). The four IDX files are written,
uncompressed, where torchvision looks (``<root>/FashionMNIST/raw``), so nothing is downloaded.

    python scripts/bench_book.py --setup          # once
    python scripts/bench_book.py [--variants sigmoid_avg relu_max] [--repeats 3] [--epochs 10]
                                 [--overrides trainer.precision=bf16-mixed ...] [--json PATH]
"""

import argparse
import importlib.util
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
    SYSTEM_DATA,
    bench_parser,
    book_root,
    paired_ratio,
    parse,
    report,
    with_scripts_on_path,
)

from convlab.record import RunRecord

BOOK_PACKAGES = [
    "d2l==1.0.3",
    "pandas",
    "requests",
    "ipython",
    "matplotlib-inline",
    "scipy",
]
VARIANTS = {  # the book's network, and convlab's overrides for the same one
    "sigmoid_avg": [],
    "relu_max": ["model.activation=relu", "model.pool=max"],
}

# The book's code, section 7.6, as a script: run in a fresh process with cwd <root>/work, so that
# d2l's data root ('../data') is <root>/data. argv: seed, epochs, variant.
BOOK_SCRIPT = r"""
import json, sys, time
import torch
from torch import nn
from d2l import torch as d2l

seed, epochs, variant = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
torch.manual_seed(seed)


class LeNetReLUMax(d2l.LeNet):
    # the book's exercise 7.6.1: ReLU for sigmoid, max- for average pooling
    def __init__(self, lr=0.1, num_classes=10):
        super().__init__(lr, num_classes)
        self.net = nn.Sequential(
            nn.LazyConv2d(6, kernel_size=5, padding=2), nn.ReLU(),
            nn.MaxPool2d(kernel_size=2, stride=2),
            nn.LazyConv2d(16, kernel_size=5), nn.ReLU(),
            nn.MaxPool2d(kernel_size=2, stride=2),
            nn.Flatten(),
            nn.LazyLinear(120), nn.ReLU(),
            nn.LazyLinear(84), nn.ReLU(),
            nn.LazyLinear(num_classes))


trainer = d2l.Trainer(max_epochs=epochs, num_gpus=1)
data = d2l.FashionMNIST(batch_size=128)
model = (d2l.LeNet if variant == "sigmoid_avg" else LeNetReLUMax)(lr=0.1)
model.apply_init([next(iter(data.get_dataloader(True)))[0]], d2l.init_cnn)
started = time.perf_counter()
trainer.fit(model, data)
fit_s = time.perf_counter() - started
model.eval()
correct = total = 0
with torch.no_grad():
    for X, y in data.get_dataloader(False):
        correct += int((model(X).argmax(1) == y).sum())
        total += len(y)
print(json.dumps({"fit_s": fit_s, "test_acc": correct / total}))
"""


COLUMNS = {
    "variant": "variant",
    "epochs": "epochs",
    "pairs": "pairs",
    "book_fit_s": "book fit s",
    "convlab_fit_s": "convlab fit s",
    "fit_s_ratio": "fit ratio",
    "fit_s_ratio_range": "fit ratio range",
    "book_wall_s": "book wall s",
    "convlab_wall_s": "convlab wall s",
    "wall_s_ratio": "wall ratio",
    "wall_s_ratio_range": "wall ratio range",
    "book_test_acc": "book test acc",
    "book_acc_range": "book acc range",
    "convlab_test_acc": "convlab test acc",
    "convlab_acc_range": "convlab acc range",
}


class TestEachEpoch(L.Callback):
    """The book's per-epoch evaluation, given to convlab's fit: the 10,000 test images' loss and
    accuracy after every training epoch, computed and thrown away (as the book plots them)."""

    @torch.no_grad()
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        pl_module.eval()
        for images, labels in trainer.datamodule.test_dataloader():
            images, labels = images.to(pl_module.device), labels.to(pl_module.device)
            logits = pl_module(images)
            F.cross_entropy(logits, labels), (logits.argmax(1) == labels).float().mean()
        pl_module.train()


def setup() -> None:
    """Install the book's package without its pins, and what its torch module imports."""
    pip = [sys.executable, "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "--no-deps", BOOK_PACKAGES[0]], check=True)
    subprocess.run([*pip, *BOOK_PACKAGES[1:]], check=True)


def book_run(root: Path, seed: int, epochs: int, variant: str) -> dict:
    """The book's code in a fresh process: its fit seconds, test accuracy and wall seconds."""
    work = root / "work"
    work.mkdir(parents=True, exist_ok=True)
    env = os.environ | {"MPLBACKEND": "Agg"}  # the book's progress board draws off screen
    command = [sys.executable, "-c", BOOK_SCRIPT, str(seed), str(epochs), variant]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode:
        sys.exit(f"bench_book: the book's code failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {"fit_s": result["fit_s"], "wall_s": wall, "test_acc": result["test_acc"]}


def convlab_run(
    out: Path, data_dir: Path, seed: int, epochs: int, variant: str, overrides: list[str]
) -> dict:
    """``train.py experiment=lenet_book`` with the book's per-epoch evaluation, a fresh process."""
    run_dir = out / f"{variant}_seed{seed}"
    command = [
        sys.executable,
        str(ROOT / "train.py"),
        "experiment=lenet_book",
        *VARIANTS[variant],
        f"trainer.max_epochs={epochs}",
        f"seed={seed}",
        f"data.system_dir={data_dir}",
        "+callbacks.test_each_epoch._target_=bench_book.TestEachEpoch",
        f"hydra.run.dir={run_dir}",
        *overrides,
    ]
    env = os.environ | {"PYTHONPATH": with_scripts_on_path()}
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode:
        sys.exit(f"bench_book: {' '.join(command)} failed:\n{done.stderr[-3000:]}")
    record = RunRecord.read(run_dir / "metrics.json")
    return {"fit_s": record.timing["fit_s"], "wall_s": wall, "test_acc": record.test_acc}


def bench_variant(args: argparse.Namespace, root: Path, variant: str) -> dict:
    runs: dict[str, list[dict]] = {"book": [], "convlab": []}
    for repeat in range(args.repeats):
        seed = args.seed + repeat
        for side in sorted(runs, reverse=repeat % 2 == 1):  # each side first in every other pair
            if side == "book":
                result = book_run(root, seed, args.epochs, variant)
            else:
                result = convlab_run(
                    args.out, args.data_dir, seed, args.epochs, variant, args.overrides
                )
            runs[side].append(result)
            print(f"{variant} seed {seed} {side}: {result}", flush=True)

    def column(side: str, key: str) -> list[float]:
        return [r[key] for r in runs[side]]

    row = {"variant": variant, "epochs": args.epochs, "pairs": args.repeats}
    for key in ("fit_s", "wall_s"):
        ratio, low, high = paired_ratio(column("book", key), column("convlab", key))
        row |= {
            f"book_{key}": statistics.median(column("book", key)),
            f"convlab_{key}": statistics.median(column("convlab", key)),
            f"{key}_ratio": ratio,
            f"{key}_ratio_range": f"{low:.2f}-{high:.2f}",
        }
    for side in runs:
        accs = column(side, "test_acc")
        row[f"{side}_test_acc"] = statistics.median(accs)
        row[f"{side}_acc_range"] = f"{min(accs):.4f}-{max(accs):.4f}"
    return row


def main(argv: list[str] | None = None) -> list[dict]:
    # a repeat: a pair per variant
    parser = bench_parser(__doc__, repeats=3, threads=False, runs_in="bench_book")
    parser.add_argument("--setup", action="store_true", help="install the book's package; stop")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--epochs", type=int, default=10, help="the book's 10 (default)")
    parser.add_argument("--seed", type=int, default=0, help="the first pair's seed (then +1, ...)")
    parser.add_argument(
        "--overrides",
        nargs="*",
        default=[],
        help="more train.py overrides for convlab's side, e.g. a faster path",
    )
    parser.add_argument("--data-dir", type=Path, default=SYSTEM_DATA, help="the IDX files")
    parser.add_argument(
        "--root",
        type=Path,
        default=Path(tempfile.gettempdir()) / "convlab-bench-book",
        help="the book's data root and working directory",
    )
    args = parse(parser, argv)
    if args.setup:
        setup()
        return []
    if importlib.util.find_spec("d2l") is None:
        sys.exit("bench_book: the book's d2l package is not installed; run it with --setup first")
    book_root(args.root / "data", args.data_dir)
    rows = [bench_variant(args, args.root, variant) for variant in args.variants]
    print(f"convlab's runs in {args.out}; ratio: the book's seconds over convlab's, per pair")
    report(rows, COLUMNS, args, __file__)
    return rows


if __name__ == "__main__":
    main()
