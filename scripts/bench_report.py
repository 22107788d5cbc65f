"""What every bench_*.py script shares: the paired ratio, the table, and the machine it ran on."""

import argparse
import os
import platform
import statistics
import subprocess
from collections.abc import Callable
from pathlib import Path

from convlab.record import environment, write_json

ROOT = Path(__file__).resolve().parents[1]


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


def markdown_table(rows: list[dict]) -> str:
    """Rows of equal keys as a markdown table: the keys are the header."""
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(row[k]) for k in header) + " |" for row in rows]
    return "\n".join(lines)


def cpu_model() -> str:
    """lscpu's model name: what docs/benchmarks.md records next to each figure."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown"
    names = [line.split(":", 1)[1].strip() for line in out.splitlines() if "Model name" in line]
    return names[0] if names else "unknown"


def report(rows: list[dict], args: argparse.Namespace, script: str) -> None:
    """Print the table, and save it to args.json with the arguments and the machine if given.

    The load average goes with the figures: other work on the machine skews them, and torch's
    threads suffer most (they wait for each other at every operation).
    """
    load, cpu = os.getloadavg()[0], cpu_model()
    print(markdown_table(rows))
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
                "rows": rows,
            },
        )
        print(f"figures saved to {args.json}")
