"""Compare the runs of a sweep: one row per configuration, mean ± std across seeds, best first.

Reads each job's record and nothing else (never its config or code): metrics.json of a finished or
pruned run, failure.json of a failed or interrupted one. So it works on any sweep (a grid, an
Optuna study run by several processes, runs on a cluster) and on sweeps whose configs have changed
since. A job whose record is missing or unreadable is listed with the reason, never guessed at.

A sweep directory may come from someone else, so a record's text is data, never markup or a
command: what it says is shown escaped (``escape``, ``printable``), a failed job's way to continue
is convlab's own command for its directory, and the reports are written only where they belong
(never into a run or another sweep) and never through a link (``convlab.safe_files``).
"""

import csv
import html
import io
import json
import math
import os
import re
import statistics
import textwrap
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from convlab import safe_files
from convlab.errors import ConvlabError
from convlab.record import RunRecord
from convlab.resume import MAY_DIFFER
from convlab.rundir import FAILURE, HYDRA_DIR, METRICS, holds_run, holds_sweep, resume_command

# a job's state, from its record
FINISHED, PRUNED, FAILED, INTERRUPTED = "finished", "pruned", "failed", "interrupted"
UNREADABLE, NO_RECORD = "unreadable", "no record"

# what varies between the runs of one configuration, so it is dropped from its name
SEED_KEY = "seed"
COLUMNS = {  # CSV / markdown column: how to read it from a metrics.json record
    "val/acc": lambda r: _val_acc(r),  # defined below
    "test/acc": lambda r: r["metrics"].get("test/acc"),
    # best by val/acc: without a validation split the record's best epoch means nothing
    "best_epoch": lambda r: r.get("best_epoch") if _val_acc(r) is not None else None,
    "epochs": lambda r: r.get("epochs_run"),
    "wall_s": lambda r: _get(r, "timing", "wall_s"),
}
DIGITS = {"val/acc": 4, "test/acc": 4, "best_epoch": 0, "epochs": 0, "wall_s": 1}  # 0: integers
NO_VALIDATION = "no validation split"
# a terminal's escape sequences: CSI (cursor moves, colours, clearing), the string ones (OSC, DCS,
# ...) up to their end, and the short ones
_TERMINAL_ESCAPE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
    r"|(?:\x1b[]PX^_]|[\x90\x98\x9d-\x9f]).*?(?:\x07|\x1b\\|\x9c|\Z)"
    r"|\x1b[ -/]*[0-~]",
    re.DOTALL,
)
# what acts in Markdown anywhere in a line: `_` only where it is not inside a word
_MARKDOWN_ACTIVE = re.compile(r"[\\`*\[\]|~$]|(?<![^\W_])_|_(?![^\W_])")
# what acts at the start of a list item: a heading, a bullet, an ordered list's number
_BLOCK_START = re.compile(r"\A(\d*)([#+.)-])")


@dataclass
class Job:
    """One job directory of a sweep and what its record says."""

    path: Path
    name: str  # as the report shows it: relative to its sweep directory
    state: str
    record: dict | None = None  # metrics.json (finished, pruned) or failure.json (failed, ...)
    reason: str = ""  # why a record is unreadable: the file and what is wrong with it


@dataclass
class Configuration:
    """The runs that share every override but the seed and those that never change the numbers."""

    overrides: tuple[str, ...]  # in the sweep's order: those of _identity
    runs: list[dict]  # metrics.json records
    jobs: list[str] = field(default_factory=list)  # the runs' job directories, where known


def _get(record: dict, *keys: str):
    """record[k1][k2]..., or None where a level is missing or not an object."""
    for key in keys:
        record = record.get(key) if isinstance(record, dict) else None
    return record


def _validated(record: dict) -> bool:
    """False for a run without a validation split, whatever else its record holds."""
    return record.get("validation", True) is not False


def _val_acc(record: dict):
    return record["metrics"].get("val/acc") if _validated(record) else None


def _number(value) -> float | None:
    """A finite number, or None: a record's value is never trusted to be one."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def _identity(overrides: list[str]) -> tuple[str, ...]:
    """The overrides that make a run's configuration: not the seed, which varies between its
    runs, nor those that say where a run reads and writes, what it shows or how fast it runs
    (``resume``, ``hydra.*``, paths, loggers, the progress bar, ``threads``): a job continued with
    ``resume=`` records some of those, and belongs with its seeds all the same."""
    return tuple(
        o
        for o in overrides
        if _key(o) not in (SEED_KEY, "threads")
        and _key(o).split("/")[0].split(".")[0] != "hydra"  # hydra.run.dir, hydra/launcher=...
        and not MAY_DIFFER.fullmatch(_key(o))  # what a resumed run may change: convlab.resume
    )


def _natural(path: Path) -> list:
    """'2_...' before '10_...': job numbers sort as numbers."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.as_posix())]


def _read_object(path: Path) -> tuple[dict | None, str]:
    """A JSON object from path, or None and why not (one line)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        return None, f"cannot be read ({getattr(e, 'strerror', None) or e})"
    if not text.strip():
        return None, "empty"
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as e:
        return None, f"not JSON, or cut short ({e})"
    if not isinstance(value, dict):
        kind = "null" if value is None else type(value).__name__
        return None, f"holds {kind}, not a JSON object"
    return value, ""


def _strings(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _job(path: Path, name: str) -> Job:
    """What a job directory's record says: metrics.json decides where present (a resumed run that
    finished may still hold the failure.json of its interruption), then failure.json."""
    for file in (METRICS, FAILURE):
        if (path / file).is_file():
            record, why = _read_object(path / file)
            status = (record or {}).get("status", FINISHED if file == METRICS else None)
            known = (FINISHED, PRUNED) if file == METRICS else (FAILED, INTERRUPTED)
            if record is None:
                pass
            elif status not in known:
                why = f"unknown status {_line(repr(status))} (expected {' or '.join(known)})"
            elif file == METRICS and not isinstance(record.get("metrics"), dict):
                why = "has no 'metrics' object"
            elif "overrides" in record and not _strings(record["overrides"]):
                why = "'overrides' is not a list of strings"
            elif file == METRICS:
                try:  # any record version this convlab reads, with the fields old ones lack
                    record = RunRecord.from_json(record, str(path / file)).to_json()
                except ConvlabError as e:
                    why = str(e).removeprefix(f"{path / file} ")
            if why:
                return Job(path, name, UNREADABLE, reason=f"{file}: {why}")
            return Job(path, name, status, record)
    return Job(path, name, NO_RECORD)


def find_jobs(sweep_dirs: Sequence[Path]) -> list[Job]:
    """Every job of the sweeps, in job order, sweep after sweep.

    A job directory is one holding metrics.json, failure.json or the .hydra record (written before
    the job runs); launcher and checkpoint folders hold none of them. Names are relative to the
    sweep directory, or to the sweeps' common parent when there are several.
    """
    for sweep in sweep_dirs:
        if not sweep.is_dir():
            raise ConvlabError(f"{sweep} is not a directory: pass a multirun directory")
    base = os.path.commonpath([s.absolute() for s in sweep_dirs])
    jobs, seen = [], set()
    for sweep in sweep_dirs:
        found = {p.parent for name in (METRICS, FAILURE) for p in sweep.rglob(name)}
        found |= {p.parent for p in sweep.rglob(HYDRA_DIR) if p.is_dir()}
        for path in sorted(found, key=lambda p: _natural(p.relative_to(sweep))):
            if path.resolve() in seen:  # a sweep inside another
                continue
            seen.add(path.resolve())
            where = path.relative_to(sweep) if len(sweep_dirs) == 1 else path.absolute()
            name = Path(os.path.relpath(where, base)) if where.is_absolute() else where
            jobs.append(_job(path, name.as_posix()))
    return jobs


def group_by_configuration(
    records: list[dict], jobs: list[str] | None = None
) -> list[Configuration]:
    """Runs that differ only in their seed (and in what never changes the numbers) form one
    configuration, in order of first appearance."""
    groups: dict[frozenset, Configuration] = {}
    for i, record in enumerate(records):
        overrides = _identity(record.get("overrides", []))
        c = groups.setdefault(frozenset(overrides), Configuration(overrides, []))
        c.runs.append(record)
        if jobs is not None:
            c.jobs.append(jobs[i])
    return list(groups.values())


def common_overrides(configurations: list[Configuration]) -> list[str]:
    """The overrides every configuration shares: said once, not repeated in every name."""
    if not configurations:
        return []
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


def _labels(configurations: list[Configuration]) -> list[str]:
    """Short names, in full where shortening would give two configurations one name."""
    common = common_overrides(configurations)
    short = [label(c, common) for c in configurations]
    full = [
        " ".join(o for o in c.overrides if o not in common) or "all runs" for c in configurations
    ]
    return [s if short.count(s) == 1 else f for s, f in zip(short, full, strict=True)]


def mean_std(values: list) -> tuple[float, float | None] | None:
    """Mean and sample std of the finite numbers; std is None for a single value."""
    finite = [v for v in map(_number, values) if v is not None]
    if not finite:
        return None
    return statistics.fmean(finite), statistics.stdev(finite) if len(finite) > 1 else None


def summarize(configurations: list[Configuration]) -> list[dict]:
    """One row per configuration, in the configurations' order: its name, n, mean ± std of each
    column, parameter count, job directories and their checkpoints."""
    rows = []
    for c, name in zip(configurations, _labels(configurations), strict=True):
        row = {"configuration": name, "overrides": " ".join(c.overrides), "n": len(c.runs)}
        row.update({col: mean_std([read(r) for r in c.runs]) for col, read in COLUMNS.items()})
        params = _get(c.runs[0], "model", "params")
        row["params"] = params if isinstance(params, int) and not isinstance(params, bool) else None
        row["jobs"] = list(c.jobs)
        row["checkpoints"] = [_get(r, "paths", "checkpoint") for r in c.runs]
        row["best"] = False
        rows.append(row)
    return rows


def rank(rows: list[dict]) -> list[int]:
    """The rows' order, best mean val/acc first (and marked best); rows without val/acc last, in
    their order: a run without a validation split is never ranked by its test accuracy."""
    order = sorted(
        range(len(rows)), key=lambda i: -rows[i]["val/acc"][0] if rows[i]["val/acc"] else math.inf
    )
    if order and rows[order[0]]["val/acc"]:
        rows[order[0]]["best"] = True
    return order


def _show(stat: tuple[float, float | None] | None, digits: int) -> str:
    """mean ± std; integers (digits 0) as integers, with a decimal only where the runs differ."""
    if stat is None:
        return "–"
    mean, std = stat
    if digits == 0:
        if not std and mean.is_integer():
            return str(int(mean))
        digits = 1
    return f"{mean:.{digits}f}" if std is None else f"{mean:.{digits}f} ± {std:.{digits}f}"


def printable(text) -> str:
    """Text from a record as a terminal shows it, never as it would act on one: escape sequences
    are dropped, other control and format characters (and unpaired surrogates) too, and line
    breaks and tabs become spaces."""
    text = _TERMINAL_ESCAPE.sub("", str(text))
    return "".join(
        " " if c.isspace() else c
        for c in text
        if c.isspace() or not unicodedata.category(c).startswith("C")
    )


def escape(text) -> str:
    """Text from a record as literal Markdown on one line: printable, HTML's characters as
    entities, and Markdown's backslash-escaped where they would act (a table cell's `|`, a link's
    brackets, emphasis, code, math, a list item's start)."""
    text = html.escape(printable(text).strip(), quote=False)
    return _BLOCK_START.sub(r"\1\\\2", _MARKDOWN_ACTIVE.sub(r"\\\g<0>", text))


def _line(text) -> str:
    """A record's free text as one short line."""
    lines = str(text).strip().splitlines() or [""]
    return lines[0][:300] + ("…" if len(lines) > 1 or len(lines[0]) > 300 else "")


def markdown(
    rows: list[dict],
    common: list[str],
    jobs: list[Job],
    sweeps: Sequence[str] = (),
    show: Callable[[str], str] = escape,
) -> str:
    """The ranked table, the shared overrides above it; below it each configuration's jobs (the
    best one's checkpoints) and every job that did not finish, with its reason. The text that
    comes from records (and the directories' names) goes through ``show``: ``escape`` for the
    file, ``printable`` for a terminal, where paths and commands must paste as they are."""
    by_state = {
        s: [j for j in jobs if j.state == s]
        for s in (PRUNED, FAILED, INTERRUPTED, UNREADABLE, NO_RECORD)
    }
    counts = [f"{sum(r['n'] for r in rows)} finished"]
    counts += [
        f"{len(js)} {'without a record' if s == NO_RECORD else s}"
        for s, js in by_state.items()
        if js
    ]
    lines = [f"Sweep directories: {', '.join(map(escape, sweeps))}", ""] if len(sweeps) > 1 else []
    shared = show(" ".join(common)) or "none"
    lines += [f"Runs: {', '.join(counts)}; shared overrides: {shared}", ""]
    names = [show(row["configuration"]) for row in rows]
    if rows:
        header = ["configuration", "n", *COLUMNS, "params"]
        lines += [
            "| " + " | ".join(header) + " |",
            "|" + "|".join([" --- "] + [" ---: "] * (len(header) - 1)) + "|",
        ]
        for row, name in zip(rows, names, strict=True):
            cells = [name, str(row["n"])]
            cells += [_show(row[col], DIGITS[col]) for col in COLUMNS]
            if row["val/acc"] is None:
                cells[2] = NO_VALIDATION
            elif row["best"]:
                cells[2] = f"**{cells[2]}**"
            cells.append(f"{row['params']:,}" if row["params"] is not None else "–")
            lines.append("| " + " | ".join(cells) + " |")
        best = [name for row, name in zip(rows, names, strict=True) if row["best"]]
        if best:
            lines += ["", f"Best by mean val/acc: {best[0]} (in bold)."]
        if any(r["val/acc"] is None for r in rows):
            lines += ["", f"Configurations with {NO_VALIDATION} come last, unranked."]
        if any(r["jobs"] for r in rows):
            lines += ["", "Job directories:"]
            for row, name in zip(rows, names, strict=True):
                lines.append(f"- {name}" + (" (best)" if row["best"] else ""))
                for job, ckpt in zip(row["jobs"], row["checkpoints"], strict=True):
                    where = f"; checkpoint: {show(ckpt or 'none recorded')}" if row["best"] else ""
                    lines.append(f"  - {show(job)}{where}")
    else:
        lines.append("No finished runs to compare.")
    titles = {
        PRUNED: "Pruned by the sweeper (not in the table)",
        FAILED: "Failed",
        INTERRUPTED: "Interrupted",
        UNREADABLE: "Unreadable records (not in the table)",
        NO_RECORD: "Without a record (still running, or stopped before one was written)",
    }
    for state, listed in by_state.items():
        if listed:
            lines += ["", f"{titles[state]}: {len(listed)} job(s)"]
            lines += [f"- {_job_line(job, common, show)}" for job in listed]
    return "\n".join(lines) + "\n"


def _job_line(job: Job, common: list[str], show: Callable[[str], str]) -> str:
    record = job.record or {}
    varying = [_short(o) for o in record.get("overrides", []) if o not in common]
    name = show(job.name + (f" ({' '.join(varying)})" if varying else ""))
    if job.state == UNREADABLE:
        return f"{name}: {show(job.reason)}"
    if job.state == NO_RECORD:
        return name
    if job.state == PRUNED:
        acc = _number(record["metrics"].get("val/acc"))
        epochs = _number(record.get("epochs_run"))
        after = f" after {int(epochs)} epoch(s)" if epochs is not None else ""
        return f"{name}: pruned{after}" + (f", val/acc {acc:.4f}" if acc is not None else "")
    error = show(_line(record.get("error") or "no error recorded"))
    # the record says whether the run can go on, never how: the command is convlab's own
    resumable = record.get("resume") is not None
    then = f"; continue it with {show(resume_command(job.path.absolute()))}" if resumable else ""
    return f"{name}: {job.state}: {error}{then}"


def _csv_value(value):
    """A record's text as a spreadsheet's data: printable, and never read as a formula (a leading
    =, +, - or @ gets a '); the numbers convlab computed stay numbers."""
    if not isinstance(value, str):
        return value
    text = printable(value)
    return f"'{text}" if text.lstrip()[:1] in ("=", "+", "-", "@") else text


def csv_text(rows: list[dict]) -> str:
    """Means and stds in separate columns (an empty std where there is one run), integers as
    integers, the best row marked, the job directories space-separated."""
    stems = {name: name.replace("/", "_") for name in COLUMNS}  # val/acc: val_acc_mean, val_acc_std
    fields = ["configuration", "overrides", "n", "best"]
    fields += [f"{stem}_{part}" for stem in stems.values() for part in ("mean", "std")]
    out = io.StringIO()
    writer = csv.DictWriter(out, [*fields, "params", "jobs"], lineterminator="\n")
    writer.writeheader()
    for row in rows:
        flat = {k: row[k] for k in ("configuration", "overrides", "n", "params")}
        flat["best"] = "yes" if row["best"] else ""
        flat["jobs"] = " ".join(row["jobs"])
        for name, stem in stems.items():
            for part, value in zip(("mean", "std"), row[name] or (None, None), strict=True):
                integral = value is not None and DIGITS[name] == 0 and value.is_integer()
                flat[f"{stem}_{part}"] = int(value) if integral else value
        writer.writerow({k: _csv_value(v) for k, v in flat.items()})
    return out.getvalue()


def _val_accs(run: dict) -> dict[int, float]:
    """A run's val/acc by epoch, from its history (none for a run without a validation split)."""
    history = run.get("history") if _validated(run) else None
    rows = history if isinstance(history, list) else []
    found = {}
    for row in rows:
        if isinstance(row, dict):
            epoch, acc = _number(row.get("epoch")), _number(row.get("val/acc"))
            if epoch is not None and acc is not None:
                found[int(epoch)] = acc
    return found


def _figure_label(name: str, runs: int) -> str:
    """A configuration's name as matplotlib shows it: printable, and a `$` never starts math
    (which a record's text could make fail to draw)."""
    return textwrap.fill(printable(f"{name} (n={runs})").replace("$", r"\$"), 40)


def val_acc_figure(configurations: list[Configuration], names: list[str]) -> Figure:
    """Each configuration's val/acc: mean per epoch, shaded min to max across seeds; where every
    run has one epoch, a dot per configuration (first on top) with its seeds' range, since four
    dots at one x would hide each other."""
    figure = Figure(figsize=(9, 5), layout="constrained")
    ax = figure.subplots()
    curves = [[_val_accs(run) for run in c.runs] for c in configurations]
    seeds = any(len(c.runs) > 1 for c in configurations)
    spread = ", min–max over seeds" if seeds else ""
    per_epoch = any(len(run) > 1 for runs in curves for run in runs)
    plotted = False
    if per_epoch:
        for c, name, runs in zip(configurations, names, curves, strict=True):
            by_epoch: dict[int, list[float]] = {}
            for run in runs:
                for epoch, acc in run.items():
                    by_epoch.setdefault(epoch, []).append(acc)
            epochs = sorted(by_epoch)
            if not epochs:
                continue
            accs = [by_epoch[e] for e in epochs]
            line = ax.plot(epochs, [statistics.fmean(a) for a in accs], marker=".")[0]
            line.set_label(_figure_label(name, len(c.runs)))
            if len(c.runs) > 1:
                lows, highs = [min(a) for a in accs], [max(a) for a in accs]
                ax.fill_between(epochs, lows, highs, color=line.get_color(), alpha=0.2, lw=0)
            plotted = True
        ax.set(xlabel="epoch", ylabel="val/acc", title=f"validation accuracy: mean{spread}")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if plotted:
            ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    else:
        ticks = []
        for c, name, runs in zip(configurations, names, curves, strict=True):
            accs = [acc for run in runs for acc in run.values()]
            if not accs:
                continue
            y = -len(ticks)  # the first (best) configuration on top
            ticks.append((y, _figure_label(name, len(c.runs))))
            mean = statistics.fmean(accs)
            ax.errorbar(mean, y, xerr=[[mean - min(accs)], [max(accs) - mean]], fmt="o", capsize=4)
            ax.plot(accs, [y] * len(accs), "|", color="grey", markersize=10)
            plotted = True
        ax.set_yticks([y for y, _ in ticks], [t for _, t in ticks], fontsize="small")
        ax.set(xlabel="val/acc", title=f"validation accuracy after one epoch: mean{spread}")
    if not plotted:
        ax.text(
            0.5, 0.5, "no run recorded val/acc", ha="center", va="center", transform=ax.transAxes
        )
    ax.grid(alpha=0.3)
    return figure


def png(figure: Figure) -> bytes:
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=120)
    return out.getvalue()


def _refuse_writing_into_a_run(out_dir: Path, sweeps: list[Path], jobs: list[Job]) -> None:
    """A run's files are never changed, and a comparison written into a run, or into a sweep it
    does not compare, would be read as theirs: out_dir and every folder above it (links resolved)
    is checked, whatever the compared jobs are."""
    out = out_dir.resolve()
    compared = {s.resolve() for s in sweeps}
    runs = {job.path.resolve() for job in jobs}
    for folder in (out, *out.parents):
        if folder in runs or holds_run(folder):
            what = "a run's directory, whose files are never changed"
        elif folder not in compared and holds_sweep(folder):
            what = "another sweep's directory, where it would be read as that sweep's comparison"
        else:
            continue
        where = "is" if folder == out else f"is inside {folder},"
        raise ConvlabError(
            f"{out_dir} {where} {what}: pass --out DIR to write the comparison elsewhere"
        )


def _write(out_dir: Path, files: dict[str, str | bytes]) -> None:
    """Each file replaced whole below out_dir, never through a link planted in its place
    (safe_files refuses one in one line)."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, content in files.items():
            data = content if isinstance(content, bytes) else content.encode("utf-8")
            safe_files.write_bytes(out_dir, name, data)
    except OSError as e:
        raise ConvlabError(
            f"cannot write the comparison into {out_dir} ({e.strerror or e}): pass --out DIR, "
            "a directory you can write"
        ) from None


def compare(sweep_dir: Path | Sequence[Path], out_dir: Path | None = None) -> str:
    """Write comparison.md, comparison.csv and val_acc.png into out_dir; returns the markdown.

    sweep_dir is one multirun directory or several (one Optuna study run by several processes);
    out_dir defaults to the one sweep directory, and is required with several, since the
    combined report belongs to none of them.
    """
    given = sweep_dir if not isinstance(sweep_dir, str | os.PathLike) else [sweep_dir]
    unique: dict[Path, Path] = {}  # a directory given twice counts once
    for sweep in given:
        unique.setdefault(Path(sweep).resolve(), Path(sweep))
    sweeps = list(unique.values())
    if not sweeps:
        raise ConvlabError("no sweep directory given: pass one or more multirun directories")
    jobs = find_jobs(sweeps)
    if not jobs:
        where = ", ".join(str(s) for s in sweeps)
        raise ConvlabError(
            f"no jobs under {where} (no {METRICS}, {FAILURE} or {HYDRA_DIR}): pass a multirun "
            "directory"
        )
    if out_dir is None:
        if len(sweeps) > 1:
            raise ConvlabError(
                f"{len(sweeps)} sweep directories are compared into one report: pass --out DIR "
                "to say where it goes"
            )
        out_dir = sweeps[0]
    out_dir = Path(out_dir)
    _refuse_writing_into_a_run(out_dir, sweeps, jobs)
    finished = [job for job in jobs if job.state == FINISHED]
    configurations = group_by_configuration(
        [job.record for job in finished], [job.name for job in finished]
    )
    rows = summarize(configurations)
    order = rank(rows)
    rows, ranked = [rows[i] for i in order], [configurations[i] for i in order]
    args = rows, common_overrides(configurations), jobs, [str(s) for s in sweeps]
    files = {"comparison.md": markdown(*args), "comparison.csv": csv_text(rows)}
    files["val_acc.png"] = png(val_acc_figure(ranked, [row["configuration"] for row in rows]))
    _write(out_dir, files)
    return markdown(*args, show=printable)
