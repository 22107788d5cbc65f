"""Training images/s on a GPU: what on-device resizing, bf16, channels_last and compile each buy.

For every case (model at its book size) and variant, convlab's Trainer trains in steady state (the
same step clock as bench_overhead.py) twice per repeat, interleaved:
  - on its DataModule (slicing in memory, pinned copy to the GPU, Preprocess there), and
  - on one batch already on the GPU, served again and again: no data path at all.
The gap between the two is the share of step time the GPU spends waiting for data.

A variant joins features with '+': base (fp32, resized on the GPU each step), bf16
(trainer.precision=bf16-mixed), cl (module.channels_last=true), compile (module.compile=true),
pre (tensors resized once before training, so Preprocess only converts and normalizes).

    python scripts/bench_gpu.py [--cases lenet_modern:28 vgg_small:224 resnet18:96]
        [--variants base pre bf16 bf16+cl bf16+cl+compile bf16+cl+compile+pre]
        [--batches 50] [--warmup 10] [--repeats 3] [--device cuda] [--json PATH]

Validate on a CPU with tiny settings: --device cpu --data synthetic --batches 2 --warmup 1.
"""

import argparse
import statistics
import tempfile
import warnings
from itertools import repeat

import lightning as L
import torch
from bench_harness import (
    bench_parser,
    compose,
    lightning_seconds,
    parse,
    quiet_lightning,
    report,
)

from convlab.data.preprocess import Preprocess
from convlab.train import build

FEATURES = {
    "base": [],
    "bf16": ["trainer.precision=bf16-mixed"],
    "cl": ["module.channels_last=true"],
    "compile": ["module.compile=true"],
    "pre": [],  # not a config key: the script resizes the tensors itself
}
CASES = ["lenet_modern:28", "vgg_small:224", "resnet18:96"]
VARIANTS = ["base", "pre", "bf16", "bf16+cl", "bf16+cl+compile", "bf16+cl+compile+pre"]


def features(variant: str) -> list[str]:
    names = variant.split("+")
    if unknown := [f for f in names if f not in FEATURES]:
        raise SystemExit(
            f"bench_gpu: unknown feature {unknown} in --variants; use {list(FEATURES)}"
        )
    return names


def resized_once(images: torch.Tensor, size: int, device: torch.device) -> torch.Tensor:
    """uint8 (N, H, W) or (N, C, H, W) -> uint8 (N, [C,] size, size) through the same resize,
    done before training."""
    grey = images.dim() == 3
    # mean 0, std 1: pixels in [0, 1]
    to_unit = Preprocess(size, channels=1 if grey else images.shape[1]).to(device)
    chunks = [
        to_unit(chunk.to(device)).mul_(255).round_().to(torch.uint8).cpu()  # (n, C, S, S)
        for chunk in images.split(1024)
    ]
    resized = torch.cat(chunks)
    return resized[:, 0] if grey else resized


def bench_variant(args, model: str, size: int, variant: str, run_dir: str) -> dict:
    names = features(variant)
    overrides = [
        f"trainer={'gpu' if args.device == 'cuda' else 'cpu'}",
        "trainer.precision=32-true",  # the baseline; bf16 overrides it
        # trainer=gpu turns both on: off in the baseline, so each variant adds only its features
        "module.channels_last=false",
        "module.compile=false",
        f"model={model}",
        f"data={args.data}",
        f"data.resize={size}",
        f"data.batch_size={args.batch_size}",
        "scheduler=none",  # one-cycle cannot span a few steps, and costs the same in every variant
        *(o for name in names for o in FEATURES[name]),
        *args.overrides,
    ]
    cfg = compose(overrides, run_dir)
    L.seed_everything(cfg.seed, verbose=False)
    datamodule, classifier = build(cfg)
    datamodule.setup()
    steps = args.warmup + args.batches + 1
    images, labels = datamodule.splits["train"]
    if len(labels) < steps * args.batch_size:
        raise SystemExit(f"bench_gpu: {len(labels)} training images; lower --warmup/--batches")
    # every variant trains on the same first images; pre resizes them once, before the clock
    images, labels = images[: steps * args.batch_size], labels[: steps * args.batch_size]
    device = torch.device(args.device)
    if "pre" in names:
        images = resized_once(images, size, device)
    datamodule.splits["train"] = (images, labels)
    resident = (images[: args.batch_size].to(device), labels[: args.batch_size].to(device))
    times: dict[str, list[float]] = {"full": [], "data-free": []}
    for _ in range(args.repeats):  # interleaved, so both see the same machine load
        times["full"].append(
            lightning_seconds(cfg, classifier, args.warmup, args.batches, datamodule=datamodule)
        )
        if args.data_free:
            times["data-free"].append(
                lightning_seconds(
                    cfg,
                    classifier,
                    args.warmup,
                    args.batches,
                    train_dataloaders=repeat(resident, steps),
                )
            )
    full = statistics.median(times["full"])
    row = {"model": model, "resize": size, "variant": variant}
    row["img_s"] = args.batches * args.batch_size / full
    if args.data_free:
        free = statistics.median(times["data-free"])
        row["data_free_img_s"] = args.batches * args.batch_size / free
        row["waits_for_data_pct"] = max(0.0, 100 * (full - free) / full)
    return row


def main(argv: list[str] | None = None) -> list[dict]:
    parser = bench_parser(__doc__, repeats=3, batches=50, warmup=10)  # warmup: compile, autotune
    parser.add_argument("--cases", nargs="+", default=CASES, help="model:resize pairs")
    parser.add_argument("--variants", nargs="+", default=VARIANTS)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument(
        "--data-free",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time each variant on one resident batch (default: yes)",
    )
    parser.add_argument("--data", default="fashion_mnist", help="data config (or synthetic)")
    parser.add_argument("--overrides", nargs="*", default=[], help="more config overrides")
    args = parse(parser, argv)
    for variant in args.variants:  # a typo fails now, not after an hour of the others
        features(variant)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("bench_gpu: no CUDA device here; validate with --device cpu")
    # the data-free fits have no validation data on purpose
    warnings.filterwarnings("ignore", message="You defined a `validation_step` but have no")
    rows = []
    with quiet_lightning(), tempfile.TemporaryDirectory(prefix="convlab-bench-") as run_dir:
        for case in args.cases:
            model, size = case.split(":")
            case_rows = [
                bench_variant(args, model, int(size), variant, run_dir) for variant in args.variants
            ]
            for row in case_rows:  # each variant against the case's first one
                row["ratio"] = row["img_s"] / case_rows[0]["img_s"]
            rows += case_rows
    device = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    print(
        f"{device}, batch {args.batch_size}, data={args.data}; ratio: img/s over {args.variants[0]}"
    )
    columns = {"model": "model", "resize": "resize", "variant": "variant", "img_s": "img/s"}
    if args.data_free:
        columns |= {"data_free_img_s": "data-free img/s", "waits_for_data_pct": "waits for data %"}
    report(rows, columns | {"ratio": "ratio"}, args, __file__)
    return rows


if __name__ == "__main__":
    main()
