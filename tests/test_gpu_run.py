"""scripts/gpu_run.sh: the one-shot GPU measurement script must not fail on the GPU machine for a
reason its CPU dry run could have shown (the dry run runs the same command lines, tiny)."""

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT

SCRIPTS = [ROOT / "scripts" / "gpu_prepare.sh", ROOT / "scripts" / "gpu_run.sh"]
TRAINING = [
    *("resnet18_tuned", "vgg_tuned", "resnet18_book", "vgg_book", "alexnet_book", "nin_book"),
    *("resnet18_notes", "vgg_notes"),
]
BENCH = [
    "fp32",
    "bf16_cl",
    "bf16_cl_compile_lenet_modern",
    "bf16_cl_compile_vgg_small",
    "bf16_cl_compile_resnet18",
]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_parses(script: Path):
    done = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.slow
def test_dry_run_runs_every_step(tmp_path: Path):
    out = tmp_path / "out"
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "gpu_run.sh"), str(out), "--dry-run"],
        cwd=ROOT,
        env={**os.environ, "RUNS": str(tmp_path / "runs")},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # the GPU machine sends back a few files from OUT_DIR, not a tree of run directories
    assert sorted(p.name for p in out.iterdir()) == [
        "events.tar.gz",
        "results.json",
        "runs.tar.gz",
        "status.tsv",
        "summary.md",
    ]
    rows = list(csv.DictReader((out / "status.tsv").open(), delimiter="\t"))
    assert [r["name"] for r in rows] == [TRAINING[0], *BENCH, *TRAINING[1:], "ddp"]
    assert all(r["status"] == "ok" for r in rows), rows

    results = json.loads((out / "results.json").read_text())
    assert all("test/acc" in results["runs"][name]["metrics"] for name in [*TRAINING, "ddp"])
    # the results page takes GPU rows from it, never a dry run's
    store = tmp_path / "results.json"
    page = [sys.executable, "scripts/results.py", "--gpu", str(out), "--store", str(store)]
    refused = subprocess.run([*page, "--pages"], cwd=ROOT, capture_output=True, text=True)
    assert refused.returncode == 1
    assert refused.stderr.endswith("holds a --dry-run (tiny, synthetic data): no figure to keep\n")
    assert not store.exists()

    summary = (out / "summary.md").read_text()
    for name in [*TRAINING, "ddp"]:  # each training run's row ends in a test accuracy
        assert re.search(rf"\| {name} \| ok \| [\d.]+ \| \d\.\d{{4}} \|", summary), name
    for name in BENCH:
        assert f"| bench_gpu {name} | ok |" in summary
    for variant in ("fp32", "bf16+cl", "bf16+cl+compile"):  # every case in every variant
        for case in ("| lenet_modern | 28 |", "| vgg_small | 224 |", "| resnet18 | 96 |"):
            assert re.search(rf"{re.escape(case)} \d+ \| {re.escape(variant)} \|", summary)
