"""The results page, rebuilt by one command from the measurements it keeps.

docs/results.json keeps each row's figures with what measured them: the command, the commit, the
date, the machine and its load average before and after. docs/results.md and README.md show them
in tables between ``<!-- results:NAME -->`` and ``<!-- /results:NAME -->`` markers, rendered anew
from the JSON on every call; the prose around the tables is written by hand. A row is measured only
when named, so the CPU recipes (~4 hours) run in parts, row by row, each row keeping its own date
and commit; the others stay as they were measured.

    python scripts/results.py --list                  # the rows, what each runs and its minutes
    python scripts/results.py --quick                 # ~15 min: default, book_sigmoid_avg, pipeline
    python scripts/results.py --rows nin_cpu vgg_cpu  # any rows, in the order given
    python scripts/results.py --gpu OUT_DIR           # GPU rows: scripts/gpu_run.sh's OUT_DIR
    python scripts/results.py                         # render only: no measurement

Each row runs a bench script (bench_tta, bench_book, bench_data, bench_epoch) or a sweep and
compare.py, one at a time: two measurements side by side would slow each other.
"""

import argparse
import csv
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from convlab.safe_files import write_bytes, write_text

ROOT = Path(__file__).resolve().parents[1]
STORE = ROOT / "docs" / "results.json"
PAGES = (ROOT / "docs" / "results.md", ROOT / "README.md")
PY = sys.executable


@dataclass(frozen=True)
class Row:
    table: str  # the table it is a row of
    label: str  # its first cell
    minutes: float  # about how long it takes on this project's 2 CPU cores
    command: Callable[[Path], list[list[str]]]  # its commands, given a scratch folder
    quick: bool = False  # in --quick
    goal: float | None = None  # the test accuracy the recipe is sized to reach


def recipe(label: str, minutes: float, *overrides: str, seeds=(0,), quick=False, goal=None) -> Row:
    """A train.py recipe end to end, timed launch to exit by bench_tta.py."""
    seeds = [str(s) for s in seeds]
    return Row(
        "models",
        label,
        minutes,
        lambda work: [
            [
                PY,
                "scripts/bench_tta.py",
                "--seeds",
                *seeds,
                "--out",
                str(work / "runs"),
                "--json",
                str(work / "figures.json"),
                "--overrides",
                *overrides,
            ],
        ],
        quick,
        goal,
    )


def bench(table: str, label: str, minutes: float, script: str, *args: str, quick=False) -> Row:
    """A bench script's figures (its --json)."""
    return Row(
        table,
        label,
        minutes,
        lambda work: [[PY, f"scripts/{script}", *args, "--json", str(work / "figures.json")]],
        quick,
    )


def ablation(table: str, label: str, minutes: float, *overrides: str) -> Row:
    """A sweep of LeNet's activation x pooling, summarized by compare.py: a table of its own."""
    return Row(
        table,
        label,
        minutes,
        lambda work: [
            [PY, "train.py", "-m", *ABLATION, *overrides, f"hydra.sweep.dir={work / 'sweep'}"],
            [PY, "scripts/compare.py", str(work / "sweep"), "--out", str(work)],
        ],
    )


# two jobs at a time, a thread each: the sweep's 12 runs in about the time of 6
ABLATION = (
    "experiment=lenet_ablation",
    "hydra/launcher=joblib",
    "hydra.launcher.n_jobs=2",
    "threads=1",
    "trainer.enable_progress_bar=false",
)
BOOK_SGD = ("optimizer=sgd", "scheduler=none", "optimizer.lr=0.1", "module.label_smoothing=0.0")
BOOK = ("--repeats", "2", "--variants")  # the book's side takes ~150 s a run: two pairs
ROWS = {
    "default": recipe(
        "LeNet (modern), the default recipe", 3, seeds=(0, 1, 2), quick=True, goal=0.91
    ),
    "book_sigmoid_avg": bench(
        "book",
        "sigmoid, average pooling (the book's)",
        8,
        "bench_book.py",
        *BOOK,
        "sigmoid_avg",
        quick=True,
    ),
    "pipeline": bench("pipeline", "input pipeline", 2, "bench_data.py", quick=True),
    "epoch": bench(
        "epoch",
        "Lightning's epoch",
        8,
        "bench_epoch.py",
        "--repeats",
        "4",
        "--variants",
        "no dashboards",
    ),
    "book_relu_max": bench("book", "ReLU, max-pooling", 7, "bench_book.py", *BOOK, "relu_max"),
    "ablation_adamw": ablation(
        "ablation_adamw", "the default recipe (AdamW + one-cycle)", 14, "seed=0,1,2"
    ),
    "ablation_sgd": ablation(
        "ablation_sgd", "the book's SGD (lr 0.1, no schedule)", 4, *BOOK_SGD, "seed=0"
    ),
    "lenet_notes": recipe("the notes' LeNet (the notes: 0.7515)", 2, "experiment=lenet_notes"),
    "small_cnn_cpu": recipe("small CNN", 9, "experiment=small_cnn_cpu", goal=0.9),
    "resnext_cpu": recipe("ResNeXt", 17, "experiment=resnext_cpu", goal=0.9),
    "alexnet_cpu": recipe("AlexNet", 21, "experiment=alexnet_cpu", goal=0.9),
    "vgg_cpu": recipe("VGG (small)", 27, "experiment=vgg_cpu", goal=0.922),
    "resnet18_cpu": recipe("ResNet-18", 27, "experiment=resnet18_cpu", goal=0.927),
    "nin_cpu": recipe("NiN", 21, "experiment=nin_cpu", goal=0.9),
    "resnet18_book": recipe(
        "ResNet-18, the book's run (bf16, channels_last)",
        74,
        "experiment=resnet18_book",
        "trainer.precision=bf16-mixed",
        "module.channels_last=true",
    ),
}
# the GPU rows: scripts/gpu_run.sh's runs, by the name its status.tsv gives them
GPU_RUNS = {
    "resnet18_tuned": "ResNet-18, tuned (96 px)",
    "vgg_tuned": "VGG (small), tuned (224 px)",
    "resnet18_notes": "the notes' ResNet-18 (96 px)",
    "vgg_notes": "the notes' VGG (224 px)",
    "resnet18_book": "ResNet-18, the book's run (96 px)",
    "vgg_book": "VGG (small), the book's run (224 px)",
    "alexnet_book": "AlexNet, the book's run (224 px)",
    "nin_book": "NiN, the book's run (224 px)",
}


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()


def measured_code() -> str:
    """The commit measured, with +dirty for changed code: the pages this script writes (docs/,
    the README) change nothing that is measured, so they do not count."""
    changed = git("status", "--porcelain", "--", ".", ":!docs", ":!README.md")
    return git("rev-parse", "--short", "HEAD") + ("+dirty" if changed else "")


def measure(name: str, row: Row) -> dict:
    """Run a row's commands, one after the other, and keep its figures with their context."""
    with tempfile.TemporaryDirectory(prefix=f"convlab-results-{name}-") as scratch:
        work = Path(scratch)
        commands = row.command(work)
        load_before, started, start = os.getloadavg()[0], time.perf_counter(), datetime.now(UTC)
        code = measured_code()  # at the start: the code the commands run is the code now
        for command in commands:
            print("results:", shlex.join(command), flush=True)  # the bench shows its own progress
            if subprocess.run(command, cwd=ROOT).returncode:
                sys.exit(f"results: the row {name} failed; the pages keep its last measurement")
        if row.table.startswith("ablation"):
            figures = [
                {k: v for k, v in r.items() if k != "jobs"}  # scratch paths, gone
                for r in csv.DictReader((work / "comparison.csv").open())
            ]
            if row.table == "ablation_adamw":
                write_bytes(
                    ROOT / "docs", "ablation_val_acc.png", (work / "val_acc.png").read_bytes()
                )
            cpu = None
        else:
            saved = json.loads((work / "figures.json").read_text())
            figures, cpu = saved["rows"], saved["cpu"]
    shown = [shlex.join(c[1:]).replace(str(work), "<tmp>") for c in commands]
    return {
        "commands": [f"python {c}" for c in shown],
        "figures": figures,
        "commit": code,
        "date": f"{start:%Y-%m-%d %H:%M} UTC",
        "minutes": round((time.perf_counter() - started) / 60, 1),
        "cpu": cpu or cpu_model(),
        "cores": os.cpu_count(),
        "load": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


def cpu_model() -> str:
    # imported here: bench_harness brings torch and Lightning, which rendering never needs
    from bench_harness import cpu_model as lscpu

    return lscpu()


# rendering: each table from the store, as markdown


def when(m: dict) -> str:
    """Date, commit and load average (before-after; only the end's for older measurements)."""
    before, after = m["load"]
    if after is None:
        load = "not recorded"
    else:
        load = f"{after:.1f} at the end" if before is None else f"{before:.1f}-{after:.1f}"
    return f"{m['date'][:10]}, `{m['commit']}`, load {load}"


def table(header: list[str], lines: list[list]) -> str:
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    rows += ["| " + " | ".join(str(c) for c in line) + " |" for line in lines]
    return "\n".join(rows)


def recipe_cells(m: dict) -> tuple[str, str, str]:
    """Test accuracy, wall time and epochs of a bench_tta measurement (one seed or several)."""
    runs = [r for r in m["figures"] if r["seed"] != "median"]
    middle = m["figures"][-1]  # the median row when there are several seeds
    acc = f"**{middle['test_acc']:.4f}**"
    wall = minutes_or_seconds(middle["wall_s"])
    if len(runs) > 1:
        accs = ", ".join(f"{r['test_acc']:.4f}" for r in runs)
        acc += f" (median; seeds {runs[0]['seed']}-{runs[-1]['seed']}: {accs})"
        walls = [r["wall_s"] for r in runs]
        wall += f" (median; {min(walls):.1f}-{max(walls):.1f} s)"
    return acc, wall, str(middle["epochs"])


def verdict(row: Row, m: dict | None) -> str:
    if row.goal is None or m is None:
        return ""
    acc = m["figures"][-1]["test_acc"]
    goal = f"{row.goal:.3f}".removesuffix("0")  # 0.90, 0.922
    return f">= {goal}: " + ("met" if acc >= row.goal else f"missed by {row.goal - acc:.4f}")


def minutes_or_seconds(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def command_of(name: str) -> str:
    overrides = ROWS[name].command(Path("<tmp>"))[0]
    overrides = overrides[overrides.index("--overrides") + 1 :]
    return f"`python train.py{''.join(' ' + o for o in overrides)}`"


def models_table(store: dict) -> str:
    lines = []
    for name, row in ROWS.items():
        if row.table == "models":
            m = store["rows"].get(name)
            cells = recipe_cells(m) if m else ("not measured", "", "")
            lines.append(
                [row.label, command_of(name), *cells, verdict(row, m), when(m) if m else ""]
            )
    gpu = store.get("gpu") or {"runs": {}}
    for name, label in GPU_RUNS.items():
        command = f"`python train.py experiment={name} trainer=gpu`"
        if (run := gpu["runs"].get(name)) is None:
            lines.append([label, command, "pending: `scripts/gpu_run.sh`", "", "", "", "GPU"])
            continue
        acc = run["status"] if run["test_acc"] is None else f"**{run['test_acc']:.4f}**"
        wall, measured = minutes_or_seconds(run["wall_s"]), f"{gpu['date'][:10]}, {gpu['gpu']}"
        lines.append(
            [label, command, acc, wall, run["epochs"], "", f"{measured}, `{gpu['commit'][:7]}`"]
        )
    header = ["model", "recipe", "test acc", "wall time, launch to exit", "epochs", "goal"]
    header.append("measured")
    return table(header, lines)


def book_table(store: dict) -> str:
    lines = []
    for name, row in ROWS.items():
        if row.table == "book" and (m := store["rows"].get(name)):
            (f,) = m["figures"]
            lines.append(
                [
                    row.label,
                    f"{f['book_fit_s']:.1f} s",
                    f"{f['convlab_fit_s']:.1f} s",
                    f"**{f['fit_s_ratio']:.2f}x** ({f['fit_s_ratio_range']}, {f['pairs']} pairs)",
                    f"{f['book_wall_s']:.1f} s",
                    f"{f['convlab_wall_s']:.1f} s",
                    f"{f['book_test_acc']:.4f}",
                    f"{f['convlab_test_acc']:.4f}",
                    when(m),
                ]
            )
    header = [
        *("LeNet", "book fit", "convlab fit", "fit ratio", "book, whole process"),
        *("convlab, whole process", "book test acc", "convlab test acc", "measured"),
    ]
    return table(header, lines)


def pipeline_table(store: dict) -> str:
    m = store["rows"].get("pipeline")
    lines = [
        [
            f["resize"],
            f"{f['convlab_img_s']:,.0f}",
            f"{f['book_img_s']:,.0f}",
            f"**{f['ratio']:.1f}x** ({f['ratio_range']})",
            f["target"],
            f"{f['pixel_difference']:.2f}/255",
            when(m),
        ]
        for f in (m["figures"] if m else [])
    ]
    header = [
        "resize",
        "convlab img/s",
        "book img/s",
        "ratio (range over pairs)",
        "goal",
        "mean pixel difference",
        "measured",
    ]
    return table(header, lines)


def epoch_table(store: dict) -> str:
    m = store["rows"].get("epoch")
    lines = [
        [
            f"`python train.py`, {f['variant']}",
            f"{f['trainpy_epoch_s']:.2f} s",
            f"{f['plain_epoch_s']:.2f} s",
            f"**{f['ratio']:.2f}x** ({f['ratio_range']})",
            when(m),
        ]
        for f in (m["figures"] if m else [])
    ]
    header = [
        "the epoch of",
        "train.py",
        "plain loop",
        "speed, plain = 1 (range over pairs)",
        "measured",
    ]
    return table(header, lines)


def ablation_table(name: str, store: dict) -> str:
    m = store["rows"].get(name)
    if m is None:
        return "not measured"

    def stat(f: dict, key: str) -> str:
        mean, std = f[f"{key}_mean"], f[f"{key}_std"]
        text = f"{float(mean):.4f}" + (f" ± {float(std):.4f}" if std else "")
        return f"**{text}**" if f["best"] else text

    lines = [
        [
            f["configuration"],
            f["n"],
            stat(f, "val_acc"),
            stat(f, "test_acc"),
            f"{float(f['wall_s_mean']):.1f}",
        ]
        for f in m["figures"]
    ]
    header = ["configuration", "seeds", "val/acc", "test/acc", "wall s (mean)"]
    return table(header, lines) + f"\n\nMeasured {when(m)}: `{m['commands'][0]}`."


def summary_table(store: dict) -> str:
    """The README's table: one line per recipe, linking to the page for the rest."""
    lines = []
    for name, row in ROWS.items():
        if row.table == "models" and (m := store["rows"].get(name)):
            acc, wall, _ = recipe_cells(m)
            lines.append(
                [
                    row.label,
                    command_of(name),
                    acc.split(" (")[0],
                    wall.split(" (")[0],
                    m["date"][:10],
                ]
            )
    if m := store["rows"].get("book_sigmoid_avg"):
        (f,) = m["figures"]
        lines.insert(1, ["LeNet-5, the book's run", "`python train.py experiment=lenet_book`",
                         f"**{f['convlab_test_acc']:.4f}**", f"{f['convlab_wall_s']:.1f} s",
                         m["date"][:10]])  # fmt: skip
    measured = [n for n in GPU_RUNS if n in (store.get("gpu") or {}).get("runs", {})]
    lines.append(
        [
            "the GPU recipes",
            ", ".join(f"`{n}`" for n in GPU_RUNS),
            f"{len(measured)} of {len(GPU_RUNS)} measured",
            "",
            "",
        ]
    )
    return table(["model", "recipe", "test acc", "wall time", "measured"], lines)


TABLES = {
    "summary": summary_table,
    "models": models_table,
    "book": book_table,
    "pipeline": pipeline_table,
    "epoch": epoch_table,
    "ablation_adamw": lambda store: ablation_table("ablation_adamw", store),
    "ablation_sgd": lambda store: ablation_table("ablation_sgd", store),
}


def render(text: str, store: dict) -> str:
    """The text with every marked table rendered anew from the store."""
    for name, make in TABLES.items():
        start, end = f"<!-- results:{name} -->", f"<!-- /results:{name} -->"
        if start in text:
            before, rest = text.split(start, 1)
            _, after = rest.split(end, 1)
            text = f"{before}{start}\n{make(store)}\n{end}{after}"
    return text


def gpu_results(out_dir: Path) -> dict:
    """The GPU rows from scripts/gpu_run.sh's results.json: each run's test accuracy, wall time
    and epochs, with the GPU, commit and date of that measurement."""
    saved = json.loads((out_dir / "results.json").read_text())
    if saved.get("dry_run"):
        sys.exit(f"results: {out_dir} holds a --dry-run (tiny, synthetic data): no figure to keep")
    status = {r["name"]: r for r in saved["status"]}
    runs = {}
    for name, record in saved["runs"].items():
        if name in GPU_RUNS and name in status:
            runs[name] = {
                "status": status[name]["status"],
                "test_acc": record.get("metrics", {}).get("test/acc"),
                "wall_s": float(status[name]["wall_s"]),
                "epochs": record.get("epochs_run"),
            }
    return {"gpu": saved["gpu"], "commit": saved["commit"], "date": saved["date"], "runs": runs}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="+", choices=list(ROWS), default=[], help="measure these")
    parser.add_argument("--quick", action="store_true", help="measure the quick rows (--list)")
    parser.add_argument("--gpu", type=Path, help="scripts/gpu_run.sh's OUT_DIR to take rows from")
    parser.add_argument("--list", action="store_true", help="list the rows and stop")
    parser.add_argument("--store", type=Path, default=STORE, help=argparse.SUPPRESS)
    parser.add_argument("--pages", type=Path, nargs="*", default=PAGES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.list:
        for name, row in ROWS.items():
            quick = ", in --quick" if row.quick else ""
            print(f"{name}: {row.label} ({row.table} table, ~{row.minutes:g} min{quick})")
            for command in row.command(Path("<tmp>")):
                print(f"    python {shlex.join(command[1:])}")
        return
    store = json.loads(args.store.read_text()) if args.store.exists() else {"rows": {}}
    if args.gpu:
        store["gpu"] = gpu_results(args.gpu)
    names = [n for n in ROWS if ROWS[n].quick] if args.quick else []
    for name in [*names, *(n for n in args.rows if n not in names)]:
        store["rows"][name] = measure(name, ROWS[name])
        write(args.store, json.dumps(store, indent=1) + "\n")  # a later row's failure loses none
    write(args.store, json.dumps(store, indent=1) + "\n")
    for page in args.pages:
        write(page, render(page.read_text(), store))
    print(f"results: {', '.join(str(p) for p in [args.store, *args.pages])} written")


def write(path: Path, text: str) -> None:
    """Whole or not at all, and never through a link: convlab's own atomic write."""
    write_text(path.parent, path.name, text)


if __name__ == "__main__":
    main()
