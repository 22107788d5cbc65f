"""What every bench_*.py script shares: its common options, the paired ratio, the timing of
convlab's own training steps, and the table with the machine it ran on.

Each script is the few lines that are its own: what it compares, and its table's rows.
"""

import argparse
import contextlib
import gzip
import logging
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from convlab.classifier import Classifier
from convlab.config import compose_run
from convlab.data.datamodule import IDX_FILES
from convlab.record import environment, write_json

ROOT = Path(__file__).resolve().parents[1]
SYSTEM_DATA = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist


def run_pairs(sides: dict[str, Callable[[], float]], repeats: int) -> dict[str, list[float]]:
    """Each side's measurements, taken in back-to-back pairs, each side first in every other pair
    (so neither always runs on the warmer, or the more loaded, machine)."""
    results: dict[str, list[float]] = {side: [] for side in sides}
    for repeat in range(repeats):
        for side in sorted(sides, reverse=repeat % 2 == 1):
            results[side].append(sides[side]())
    return results


def paired_ratio(ours: list[float], theirs: list[float]) -> tuple[float, float, float]:
    """Median, lowest and highest of ours[i] / theirs[i]: each pair ran back to back.

    On a shared machine the load drifts between repeats; a pair sees nearly the same load, so the
    median of per-pair ratios is steadier than a ratio of two medians taken at different times.
    """
    ratios = [a / b for a, b in zip(ours, theirs, strict=True)]
    return statistics.median(ratios), min(ratios), max(ratios)


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    return str(value)


def markdown_table(rows: list[dict], columns: dict[str, str]) -> str:
    """Rows as a markdown table: ``columns`` maps each row key (data, as saved to JSON) to its
    header (words, for people), in the table's order."""
    lines = ["| " + " | ".join(columns.values()) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row[k]) for k in columns) + " |" for row in rows]
    return "\n".join(lines)


def cpu_model() -> str:
    """lscpu's model name: what docs/benchmarks.md records next to each figure."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown"
    names = [line.split(":", 1)[1].strip() for line in out.splitlines() if "Model name" in line]
    return names[0] if names else "unknown"


def report(
    rows: list[dict], columns: dict[str, str], args: argparse.Namespace, script: str
) -> None:
    """Print the table, and save the rows (keyed by data names), their headers, the arguments and
    the machine to args.json if given.

    The load average goes with the figures: other work on the machine skews them, and torch's
    threads suffer most (they wait for each other at every operation).
    """
    load, cpu = os.getloadavg()[0], cpu_model()
    print(markdown_table(rows, columns))
    print(f"{cpu}, load average {load:.2f} on {os.cpu_count()} CPUs")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        write_json(
            Path(args.json),
            {
                "script": Path(script).name,
                "args": vars(args),
                "cpu": cpu,
                "load_average": load,
                "environment": environment(ROOT),
                "columns": columns,
                "rows": rows,
            },
        )
        print(f"figures saved to {args.json}")


def with_scripts_on_path() -> str:
    """PYTHONPATH for a train.py subprocess that names a bench callback (``+callbacks.x._target_=
    bench_book.TestEachEpoch``): this folder first, then whatever the caller's PYTHONPATH holds."""
    return os.pathsep.join(filter(None, [str(Path(__file__).parent), os.environ.get("PYTHONPATH")]))


def bench_parser(
    doc: str,
    *,
    repeats: int,
    batches: int | None = None,
    warmup: int | None = None,
    threads: bool = True,
    runs_in: str | None = None,
) -> argparse.ArgumentParser:
    """A script's parser with the options every bench shares, at the script's own defaults:
    --repeats and --json always, --batches and --warmup for step-timing benches, --threads for
    benches that time in their own process (not for those that time train.py subprocesses), and
    --out for benches that keep train.py's run directories (default: outputs/<runs_in>/<time>)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument(
        "--repeats", type=int, default=repeats, help=f"timed runs per side (default {repeats})"
    )
    if batches is not None:
        parser.add_argument(
            "--batches", type=int, default=batches, help=f"timed steps (default {batches})"
        )
    if warmup is not None:
        parser.add_argument(
            "--warmup", type=int, default=warmup, help=f"untimed steps first (default {warmup})"
        )
    if threads:
        parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    if runs_in is not None:
        parser.add_argument(
            "--out",
            type=Path,
            default=ROOT / "outputs" / runs_in / datetime.now().strftime("%Y-%m-%d_%H-%M-%S-%f"),
            help="where the train.py run directories go",
        )
    parser.add_argument("--json", default=None, help="save the figures to this file")
    return parser


def parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse, and set torch's thread count if --threads was given."""
    args = parser.parse_args(argv)
    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)
    return args


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


@contextlib.contextmanager
def quiet_lightning() -> Iterator[None]:
    """One banner per fit is noise in a bench's output; the level comes back afterwards, so a
    bench run inside a test process leaves Lightning's logging as it found it."""
    log = logging.getLogger("lightning.pytorch")
    level = log.level
    log.setLevel(logging.WARNING)
    try:
        yield
    finally:
        log.setLevel(level)


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


def book_root(root: Path, data_dir: Path) -> Path:
    """torchvision's FashionMNIST reads uncompressed files from <root>/FashionMNIST/raw."""
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for stem in (stem for pair in IDX_FILES.values() for stem in pair):
        target = raw / stem
        if target.is_file():
            continue
        plain, packed = data_dir / stem, data_dir / f"{stem}.gz"
        if not (plain.is_file() or packed.is_file()):
            sys.exit(f"no {stem}(.gz) in {data_dir}; set --data-dir to the IDX files")
        data = plain.read_bytes() if plain.is_file() else gzip.decompress(packed.read_bytes())
        tmp = target.with_name(f".{stem}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)  # a run killed mid-write leaves no half file for the next one
    return root
