"""Start-up: how long ``python train.py`` takes to its first training step, split in two.

- interpreter start, then the imports: ``import convlab.train`` (torch, Lightning, Hydra,
  torchmetrics), the floor that any Lightning program pays;
- the rest: Hydra's composition, the run directory, reading the dataset, building the model and
  the Trainer, Lightning's fit set-up, until the first training batch starts.

Each repeat is a fresh process running train.py's own ``__main__`` (the default recipe unless
--overrides says otherwise) for a few batches; a callback stamps the first training step.

    python scripts/bench_startup.py [--repeats 5] [--overrides model=resnet18] [--json PATH]
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lightning as L
from bench_harness import ROOT, bench_parser, parse, report, with_scripts_on_path

STAMP_ENV = "CONVLAB_BENCH_STARTUP_STAMPS"
CHILD = r"""
import json, os, runpy, sys, time
imported = time.perf_counter()
import convlab.train  # noqa: F401  (what train.py's run imports)
stamps = {"imports_done": time.perf_counter(), "child_start": imported}
with open(os.environ["CONVLAB_BENCH_STARTUP_STAMPS"], "w") as f:
    json.dump(stamps, f)
sys.argv = ["train.py", *sys.argv[1:]]
runpy.run_path("train.py", run_name="__main__")
"""


class FirstStep(L.Callback):
    """Adds the first training step's time to the stamps file the parent reads."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if batch_idx:
            return
        path = Path(os.environ[STAMP_ENV])
        stamps = json.loads(path.read_text()) | {"first_step": time.perf_counter()}
        path.write_text(json.dumps(stamps))


def startup(overrides: list[str], work: Path, repeat: int) -> dict:
    """Seconds from launch to the end of the imports, and from there to the first step."""
    stamps = work / f"stamps{repeat}.json"
    command = [
        sys.executable,
        "-c",
        CHILD,
        *overrides,
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=2",
        "trainer.limit_val_batches=1",
        "trainer.limit_test_batches=1",
        "+callbacks.first_step._target_=bench_startup.FirstStep",
        f"hydra.run.dir={work / f'run{repeat}'}",
    ]
    env = os.environ | {STAMP_ENV: str(stamps), "PYTHONPATH": with_scripts_on_path()}
    launched = time.perf_counter()  # CLOCK_MONOTONIC: the same clock in the child
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"bench_startup: train.py failed:\n{done.stderr[-3000:]}")
    t = json.loads(stamps.read_text())
    return {
        "interpreter start": t["child_start"] - launched,
        "imports": t["imports_done"] - t["child_start"],
        "rest": t["first_step"] - t["imports_done"],
        "to first step": t["first_step"] - launched,
    }


def main(argv: list[str] | None = None) -> list[dict]:
    parser = bench_parser(__doc__, repeats=5, threads=False)
    parser.add_argument("--overrides", nargs="*", default=[], help="train.py overrides")
    args = parse(parser, argv)
    with tempfile.TemporaryDirectory(prefix="convlab-startup-") as work:
        runs = [startup(args.overrides, Path(work), r) for r in range(args.repeats)]
    rows = [
        {
            "part": part,
            "median_s": statistics.median(r[part] for r in runs),
            "min_s": min(r[part] for r in runs),
            "max_s": max(r[part] for r in runs),
        }
        for part in runs[0]
    ]
    print(f"{' '.join(args.overrides) or 'the default recipe'}: {args.repeats} fresh processes")
    columns = {"part": "part", "median_s": "median s", "min_s": "min s", "max_s": "max s"}
    report(rows, columns, args, __file__)
    return rows


if __name__ == "__main__":
    main()
