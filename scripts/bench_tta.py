"""Time to accuracy: a recipe end to end, as a user runs it.

Each run is ``python train.py OVERRIDES seed=S`` in a subprocess, timed from launch to exit, so
start-up, data loading, training, testing and writing the run directory all count; its test/acc
comes from the run's metrics.json. The budget is the recipe's (its epochs): nothing stops early by
peeking at the test set. Medians are over seeds (and repeats of each seed, for the time).

``--overrides experiment=lenet_book`` is convlab's run of the book's LeNet recipe; the comparison
with the book's own code, run live beside it, is ``bench_book.py``.

    python scripts/bench_tta.py [--seeds 0 1 2] [--repeats 1] [--overrides experiment=lenet_book]
                                [--out DIR] [--json PATH]
"""

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench_harness import ROOT, bench_parser, parse, report


def timed_run(overrides: list[str], seed: int, run_dir: Path) -> tuple[float, dict]:
    """Wall seconds of one train.py run, and its metrics.json."""
    command = [
        sys.executable,
        str(ROOT / "train.py"),
        *overrides,
        f"seed={seed}",
        f"hydra.run.dir={run_dir}",
    ]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"bench_tta: {' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return seconds, json.loads((run_dir / "metrics.json").read_text())


COLUMNS = {"seed": "seed", "wall_s": "wall s", "test_acc": "test acc", "epochs": "epochs"}


def row(seed, seconds: float, acc: float, epochs) -> dict:
    return {"seed": seed, "wall_s": seconds, "test_acc": acc, "epochs": epochs}


def main(argv: list[str] | None = None) -> list[dict]:
    # a repeat: one run of every seed
    parser = bench_parser(__doc__, repeats=1, threads=False, runs_in="bench_tta")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument(
        "--overrides", nargs="*", default=[], help="train.py overrides (default: the recipe)"
    )
    args = parse(parser, argv)

    seconds: dict[int, list[float]] = {seed: [] for seed in args.seeds}
    records: dict[int, dict] = {}
    for r in range(args.repeats):  # seeds interleaved, so each sees the same machine load
        for seed in args.seeds:
            wall, records[seed] = timed_run(args.overrides, seed, args.out / f"seed{seed}_r{r}")
            seconds[seed].append(wall)
    rows = [
        row(
            seed,
            statistics.median(seconds[seed]),
            records[seed]["metrics"]["test/acc"],
            records[seed]["epochs_run"],
        )
        for seed in args.seeds
    ]
    if len(rows) > 1:
        rows.append(
            row(
                "median",
                statistics.median(r["wall_s"] for r in rows),
                statistics.median(r["test_acc"] for r in rows),
                statistics.median(r["epochs"] for r in rows),
            )
        )
    recipe = " ".join(args.overrides) or "the default recipe"
    print(f"{recipe}: runs in {args.out}")
    report(rows, COLUMNS, args, __file__)
    return rows


if __name__ == "__main__":
    main()
