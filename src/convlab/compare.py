"""Compare the runs of a multirun: one row per configuration, mean ± std across seeds.

Reads nothing but each job's metrics.json, so it works on any sweep (a grid, an Optuna study, runs
on a cluster) and on sweeps whose configs have changed since. Jobs without metrics.json (failed, or
still running) are listed rather than guessed at.
"""

import csv
import json
import math
import re
import statistics
import textwrap
from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from convlab.errors import ConvlabError

# what varies between the runs of one configuration, so it is dropped from its name
SEED_KEY = "seed"
COLUMNS = {  # CSV / markdown column: how to read it from a metrics.json record
    "val/acc": lambda r: r["metrics"].get("val/acc"),
    "test/acc": lambda r: r["metrics"].get("test/acc"),
    "best_epoch": lambda r: r.get("best_epoch"),
    "wall_s": lambda r: r.get("timing", {}).get("wall_s"),
}
DIGITS = {"val/acc": 4, "test/acc": 4, "best_epoch": 1, "wall_s": 1}


@dataclass
class Configuration:
    """The runs that share every override but the seed."""

    overrides: tuple[str, ...]  # in the sweep's order, seed removed
    runs: list[dict]  # metrics.json records


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def _natural(path: Path) -> list:
    """'2_...' before '10_...': job numbers sort as numbers."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.as_posix())]


def load_jobs(sweep_dir: Path) -> tuple[list[dict], list[Path]]:
    """The finished jobs' records in job order, and the job directories without metrics.json.

    A job directory is one holding metrics.json or Hydra's .hydra record (written before the job
    runs, so a failed job has one too); .submitit and checkpoint folders hold neither.
    """
    if not sweep_dir.is_dir():
        raise ConvlabError(f"{sweep_dir} is not a directory: pass a multirun directory")
    jobs = {p.parent for p in sweep_dir.rglob("metrics.json")}
    jobs |= {p.parent for p in sweep_dir.rglob(".hydra") if p.is_dir()}
    ordered = sorted(jobs, key=lambda p: _natural(p.relative_to(sweep_dir)))
    finished = [job for job in ordered if (job / "metrics.json").is_file()]
    records = [json.loads((job / "metrics.json").read_text()) for job in finished]
    return records, [job for job in ordered if job not in finished]


def group_by_configuration(records: list[dict]) -> list[Configuration]:
    """Runs that differ only in their seed form one configuration, in order of first appearance."""
    groups: dict[frozenset, Configuration] = {}
    for record in records:
        overrides = tuple(o for o in record.get("overrides", []) if _key(o) != SEED_KEY)
        groups.setdefault(frozenset(overrides), Configuration(overrides, [])).runs.append(record)
    return list(groups.values())


def common_overrides(configurations: list[Configuration]) -> list[str]:
    """The overrides every configuration shares: said once, not repeated in every name."""
    shared = set.intersection(*(set(c.overrides) for c in configurations))
    return [o for o in configurations[0].overrides if o in shared]


def _short(override: str) -> str:
    """optimizer.lr=0.004430375245218269 -> optimizer.lr=0.00443: Optuna's samples, readable."""
    key, _, value = override.partition("=")
    try:
        number = float(value)
    except ValueError:
        return override
    return override if number.is_integer() else f"{key}={number:.3g}"


def label(configuration: Configuration, common: list[str]) -> str:
    varying = [_short(o) for o in configuration.overrides if o not in common]
    return " ".join(varying) or "all runs"


def mean_std(values: list) -> tuple[float, float | None] | None:
    """Mean and sample std of the finite values; std is None for a single value."""
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return None
    return statistics.fmean(finite), statistics.stdev(finite) if len(finite) > 1 else None


def summarize(configurations: list[Configuration]) -> list[dict]:
    """One row per configuration: its name, n, mean ± std of each column, parameter count."""
    common = common_overrides(configurations)
    rows = []
    for c in configurations:
        row = {"configuration": label(c, common), "overrides": " ".join(c.overrides)}
        row["n"] = len(c.runs)
        row.update({name: mean_std([read(r) for r in c.runs]) for name, read in COLUMNS.items()})
        row["params"] = c.runs[0].get("model", {}).get("params")
        rows.append(row)
    return rows


def _show(stat: tuple[float, float | None] | None, digits: int) -> str:
    if stat is None:
        return "–"
    mean, std = stat
    return f"{mean:.{digits}f}" if std is None else f"{mean:.{digits}f} ± {std:.{digits}f}"


def markdown(rows: list[dict], common: list[str], skipped: list[str]) -> str:
    """The table, with the shared overrides above it and the skipped jobs below."""
    header = ["configuration", "n", *COLUMNS, "params"]
    lines = [
        f"Runs: {sum(r['n'] for r in rows)}; shared overrides: {' '.join(common) or 'none'}",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join([" --- "] + [" ---: "] * (len(header) - 1)) + "|",
    ]
    for row in rows:
        cells = [row["configuration"], str(row["n"])]
        cells += [_show(row[name], DIGITS[name]) for name in COLUMNS]
        cells.append(f"{row['params']:,}" if row["params"] is not None else "–")
        lines.append("| " + " | ".join(cells) + " |")
    if skipped:
        lines += ["", f"Skipped {len(skipped)} job(s) without metrics.json (failed?):"]
        lines += [f"- {job}" for job in skipped]
    return "\n".join(lines) + "\n"


def write_csv(rows: list[dict], path: Path) -> None:
    """Means and stds in separate columns; an empty std where there is one run."""
    stems = {name: name.replace("/", "_") for name in COLUMNS}  # val/acc: val_acc_mean, val_acc_std
    fields = ["configuration", "overrides", "n"]
    fields += [f"{stem}_{part}" for stem in stems.values() for part in ("mean", "std")]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, [*fields, "params"])
        writer.writeheader()
        for row in rows:
            flat = {k: row[k] for k in ("configuration", "overrides", "n", "params")}
            for name, stem in stems.items():
                flat[f"{stem}_mean"], flat[f"{stem}_std"] = row[name] or (None, None)
            writer.writerow(flat)


def plot_val_acc(configurations: list[Configuration], path: Path) -> None:
    """Mean validation accuracy per epoch of each configuration, shaded min to max across seeds."""
    common = common_overrides(configurations)
    figure = Figure(figsize=(9, 5), layout="constrained")
    ax = figure.subplots()
    for c in configurations:
        by_epoch: dict[int, list[float]] = {}
        for run in c.runs:
            for row in run.get("history", []):
                if row.get("val/acc") is not None:
                    by_epoch.setdefault(row["epoch"], []).append(row["val/acc"])
        epochs = sorted(by_epoch)
        if not epochs:
            continue
        accs = [by_epoch[e] for e in epochs]
        line = ax.plot(epochs, [statistics.fmean(a) for a in accs], marker=".")[0]
        line.set_label(textwrap.fill(f"{label(c, common)} (n={len(c.runs)})", 40))
        if len(c.runs) > 1:
            lows, highs = [min(a) for a in accs], [max(a) for a in accs]
            ax.fill_between(epochs, lows, highs, color=line.get_color(), alpha=0.2, lw=0)
    ax.set(xlabel="epoch", ylabel="val/acc", title="validation accuracy: mean, min–max over seeds")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    figure.savefig(path, dpi=120)


def compare(sweep_dir: Path, out_dir: Path | None = None) -> str:
    """Write comparison.md, comparison.csv and val_acc.png into out_dir (default: the sweep);
    returns the markdown."""
    records, skipped = load_jobs(sweep_dir)
    if not records:
        raise ConvlabError(
            f"no metrics.json under {sweep_dir}: pass a multirun directory whose jobs finished"
        )
    out_dir = out_dir or sweep_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    configurations = group_by_configuration(records)
    rows = summarize(configurations)
    names = [job.relative_to(sweep_dir).as_posix() for job in skipped]
    text = markdown(rows, common_overrides(configurations), names)
    (out_dir / "comparison.md").write_text(text)
    write_csv(rows, out_dir / "comparison.csv")
    plot_val_acc(configurations, out_dir / "val_acc.png")
    return text
