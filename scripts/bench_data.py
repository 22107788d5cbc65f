"""Input-pipeline throughput: convlab's tensor batches + Preprocess against the book's DataLoader.

convlab slices batches of uint8 tensors held in memory and resizes a whole batch at once with
Preprocess; the book (d2l, section 4.2) decodes every sample to a PIL image, resizes it, converts
it to a float tensor, and collates in DataLoader worker processes. Both deliver float batches of
(128, 1, size, size) in [0, 1], resized bilinearly; the script checks they hold the same pixels.

Each repeat times a fixed number of batches of each side, back to back (each side first in every
other repeat), after a few warm-up batches (which also hide the workers' start-up: the steady state
favours the book); the ratio is the median of the per-repeat ratios.

    python scripts/bench_data.py [--sizes 28 96 224] [--batches N] [--repeats 5] [--json PATH]

The book's torchvision dataset wants uncompressed IDX files under <root>/FashionMNIST/raw; the
script writes them there once, from --data-dir, and never downloads.
"""

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
import torchvision
from bench_harness import (
    SYSTEM_DATA,
    bench_parser,
    book_root,
    paired_ratio,
    parse,
    report,
    run_pairs,
)
from torch.utils.data import DataLoader
from torchvision import transforms

from convlab.data.datamodule import IDXDataModule

TARGETS = {28: 10.0, 96: 3.0, 224: 3.0}  # convlab's goals: its img/s over the book's, per resize
DEFAULT_BATCHES = {28: 100, 96: 40, 224: 20}  # enough for a steady state in a few seconds
TOLERANCE = 1 / 255  # mean |difference| of the two pipelines' pixels: one grey level
CHECKED_SAMPLES = 256
COLUMNS = {
    "resize": "resize",
    "batches": "batches",
    "convlab_img_s": "convlab img/s",
    "book_img_s": "book img/s",
    "ratio": "ratio",
    "ratio_range": "ratio range",
    "target": "target",
    "verdict": "verdict",
    "pixel_difference": "mean abs diff (1/255)",
}


def book_dataset(root: Path, size: int, train: bool) -> torchvision.datasets.FashionMNIST:
    transform = transforms.Compose([transforms.Resize(size), transforms.ToTensor()])
    return torchvision.datasets.FashionMNIST(str(root), train=train, transform=transform)


def images_per_second(
    batches: Iterable, transform: Callable[[torch.Tensor], torch.Tensor], warmup: int, n: int
) -> float:
    """Images delivered per second over n batches, after warmup batches of the same iterator."""
    it = iter(batches)
    for _ in range(warmup):
        transform(next(it)[0])
    images = 0
    start = time.perf_counter()
    for _ in range(n):
        images += len(transform(next(it)[0]))
    return images / (time.perf_counter() - start)


def mean_abs_difference(datamodule: IDXDataModule, root: Path, size: int) -> float:
    """Mean |convlab - book| over the first test images, each read by its own pipeline."""
    dataset = book_dataset(root, size, train=False)
    n = min(CHECKED_SAMPLES, len(dataset))
    ours = datamodule.preprocess(datamodule.splits["test"][0][:n])
    theirs = torch.stack([dataset[i][0] for i in range(n)])
    if ours.shape != theirs.shape:
        sys.exit(f"bench_data: shapes differ at resize {size}: {ours.shape} vs {theirs.shape}")
    return float((ours - theirs).abs().mean())


def profile(datamodule: IDXDataModule, n: int) -> None:
    """Where convlab's time goes: torch's per-operator table over n batches."""
    batches = iter(datamodule.train_dataloader())
    with torch.profiler.profile() as prof:
        for _ in range(n):
            datamodule.preprocess(next(batches)[0])
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=8))


def bench_size(args: argparse.Namespace, root: Path, size: int) -> dict:
    n = args.batches or DEFAULT_BATCHES.get(size, 20)
    datamodule = IDXDataModule(
        root=str(root),
        system_dir=str(args.data_dir),
        resize=size,
        batch_size=args.batch_size,
        val_size=0,  # the book samples from all 60,000 training images
        mean=0.0,
        std=1.0,
    )
    datamodule.setup()
    difference = mean_abs_difference(datamodule, root, size)
    if difference > TOLERANCE:
        sys.exit(
            f"bench_data: the pipelines disagree at resize {size}: mean |difference| "
            f"{difference * 255:.2f}/255 > 1/255, so their speeds are not comparable"
        )
    if args.profile:
        with torch.no_grad():
            profile(datamodule, n)
    book = DataLoader(
        book_dataset(root, size, train=True),
        batch_size=args.batch_size,
        shuffle=True,
        num_workers=args.workers,
    )
    if args.warmup + n > min(len(book), len(datamodule.train_dataloader())):
        sys.exit(f"bench_data: --warmup + --batches exceeds one epoch at batch {args.batch_size}")
    sides = {
        "convlab": lambda: images_per_second(
            datamodule.train_dataloader(), datamodule.preprocess, args.warmup, n
        ),
        # a fresh iterator starts fresh workers: none linger while convlab is timed
        "book": lambda: images_per_second(book, lambda x: x, args.warmup, n),
    }
    with torch.no_grad():
        times = run_pairs(sides, args.repeats)
    ratio, low, high = paired_ratio(times["convlab"], times["book"])
    target = TARGETS.get(size)
    return {
        "resize": size,
        "batches": n,
        "convlab_img_s": statistics.median(times["convlab"]),
        "book_img_s": statistics.median(times["book"]),
        "ratio": ratio,
        "ratio_range": f"{low:.3g}-{high:.3g}",
        "target": f">= {target:g}x" if target else "-",
        "verdict": "-" if target is None else ("met" if ratio >= target else "MISSED"),
        "pixel_difference": difference * 255,
    }


def main(argv: list[str] | None = None) -> list[dict]:
    parser = bench_parser(__doc__, repeats=5, warmup=8)
    parser.add_argument("--sizes", type=int, nargs="+", default=[28, 96, 224])
    parser.add_argument(
        "--batches", type=int, default=None, help="timed batches per side (default 100/40/20)"
    )
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=2, help="the book's DataLoader workers")
    parser.add_argument("--data-dir", type=Path, default=SYSTEM_DATA, help="the IDX files")
    parser.add_argument(
        "--root",
        type=Path,
        default=Path(tempfile.gettempdir()) / "convlab-bench",
        help="where the uncompressed copy for torchvision goes",
    )
    parser.add_argument("--profile", action="store_true", help="print convlab's operator times")
    args = parse(parser, argv)
    root = book_root(args.root, args.data_dir)
    print(f"book pipeline reads {root / 'FashionMNIST' / 'raw'}; {torch.get_num_threads()} threads")
    rows = [bench_size(args, root, size) for size in args.sizes]
    report(rows, COLUMNS, args, __file__)
    return rows


if __name__ == "__main__":
    main()
