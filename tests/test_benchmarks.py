"""The bench_*.py scripts still run and print their ratio tables: smallest settings, no timing."""

import importlib.util
import json
import logging

import pytest
import torch

from tests.helpers import ROOT, TINY, lightning_log_at

# one thread: on a busy machine two threads wait for each other at every small op
FAST = ["--batches", "2", "--warmup", "1", "--repeats", "1", "--threads", "1"]


@pytest.fixture
def bench(monkeypatch):
    """Scripts import bench_harness as a top-level module, as `python scripts/x.py` lets them."""
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))
    threads = torch.get_num_threads()
    yield __import__
    torch.set_num_threads(threads)


def check_table(out: str, rows: list[dict], key: str = "ratio", header: str = "ratio") -> None:
    """The printed table has the column's header; each row has a positive value under its key."""
    first = next(line for line in out.splitlines() if line.startswith("| "))
    assert f"| {header} |" in first and "|---|" in out
    assert all(row[key] > 0 for row in rows)


def test_paired_ratio_divides_within_pairs_not_medians(bench):
    # medians alone would say 4 / 1 = 4; the three pairs' ratios are 2, 4 and 3
    assert bench("bench_harness").paired_ratio([2.0, 4.0, 9.0], [1.0, 1.0, 3.0]) == (3.0, 2.0, 4.0)


def test_bench_data_compares_both_pipelines_on_the_same_pixels(bench, idx_dir, tmp_path, capsys):
    saved = tmp_path / "data.json"
    rows = bench("bench_data").main(
        [*FAST, "--sizes", "28", "96", "--batch-size", "64", "--data-dir", str(idx_dir)]
        + ["--root", str(tmp_path / "book"), "--json", str(saved)]
    )
    check_table(capsys.readouterr().out, rows)
    assert [r["resize"] for r in rows] == [28, 96]
    assert rows[0]["pixel_difference"] == 0  # no resize: both only divide by 255
    assert 0 < rows[1]["pixel_difference"] <= 1
    assert json.loads(saved.read_text())["rows"][1]["resize"] == 96
    assert (tmp_path / "book" / "FashionMNIST" / "raw" / "t10k-images-idx3-ubyte").is_file()


def test_bench_data_refuses_pipelines_that_disagree(bench, idx_dir, tmp_path, monkeypatch):
    bench_data = bench("bench_data")
    monkeypatch.setattr(bench_data, "TOLERANCE", 0.0)
    with pytest.raises(SystemExit, match="disagree at resize 96"):
        bench_data.main(
            [*FAST, "--sizes", "96", "--data-dir", str(idx_dir), "--root", str(tmp_path / "book")]
        )


def test_bench_ops_pairs_scratch_correlation_with_conv2d(bench, tmp_path, capsys):
    saved = tmp_path / "ops.json"
    (row,) = bench("bench_ops").main(["--repeats", "3", "--threads", "1", "--json", str(saved)])
    check_table(capsys.readouterr().out, [row])
    assert row["scratch_ms"] > 0 and row["conv2d_ms"] > 0 and row["verdict"] in ("met", "MISSED")
    data = json.loads(saved.read_text())
    assert data["columns"]["scratch_ms"] == "corr2d_multi_in_out ms" and data["rows"] == [row]


def test_bench_overhead_times_lightning_against_a_plain_loop(bench, capsys):
    with lightning_log_at(logging.DEBUG) as lightning_log:
        rows = bench("bench_overhead").main(
            [*FAST, "--models", "lenet_modern", "--data", "synthetic"]
        )
        # quiet during the fits only: the test process gets its logging back
        assert lightning_log.level == logging.DEBUG
    check_table(capsys.readouterr().out, rows)
    assert rows[0]["model"] == "lenet_modern" and rows[0]["plain_img_s"] > 0


def test_bench_gpu_validates_on_the_cpu(bench, capsys):
    rows = bench("bench_gpu").main(
        [*FAST, "--device", "cpu", "--data", "synthetic", "--cases", "lenet_modern:28"]
        + ["--variants", "base", "pre", "--batch-size", "32"]
    )
    check_table(capsys.readouterr().out, rows)
    assert [r["variant"] for r in rows] == ["base", "pre"] and rows[0]["ratio"] == 1.0
    assert all(r["data_free_img_s"] > 0 and 0 <= r["waits_for_data_pct"] < 100 for r in rows)


def test_bench_gpu_names_an_unknown_feature(bench):
    with pytest.raises(SystemExit, match="unknown feature \\['fp8'\\]"):
        bench("bench_gpu").main(["--device", "cpu", "--variants", "base", "fp8"])


@pytest.mark.slow
def test_bench_epoch_times_train_py_epochs_against_a_plain_loop(bench, tmp_path, capsys):
    """Both sides in their own processes, train.py as a user runs it plus the epoch stamps."""
    saved = tmp_path / "epoch.json"
    rows = bench("bench_epoch").main(
        ["--epochs", "2", "--repeats", "1", "--overrides", "data=synthetic", "threads=1"]
        + ["--json", str(saved)]
    )
    check_table(capsys.readouterr().out, rows)
    (row,) = rows
    assert row["variant"] == "as run" and row["trainpy_epoch_s"] > 0 and row["plain_epoch_s"] > 0
    assert json.loads(saved.read_text())["rows"] == rows


@pytest.mark.slow
def test_bench_tta_times_train_py_and_reads_its_accuracy(bench, tmp_path, capsys):
    rows = bench("bench_tta").main(
        ["--seeds", "0", "--out", str(tmp_path), "--overrides", *TINY, "threads=1"]
    )
    out = capsys.readouterr().out
    assert "| seed | wall s | test acc | epochs |\n" in out  # convlab's columns, nothing to compare
    assert 0 <= rows[0]["test_acc"] <= 1 and rows[0]["epochs"] == 1 and rows[0]["wall_s"] > 0
    assert (tmp_path / "seed0_r0" / "metrics.json").is_file()


def test_bench_tta_takes_medians_over_seeds(bench, tmp_path, monkeypatch, capsys):
    bench_tta = bench("bench_tta")
    times = iter([20.0, 40.0, 30.0])
    monkeypatch.setattr(  # no train.py runs: the table and the medians are what is tested
        bench_tta,
        "timed_run",
        lambda overrides, seed, run_dir: (
            next(times),
            {"metrics": {"test/acc": 0.5 + seed / 10}, "epochs_run": 2},
        ),
    )
    rows = bench_tta.main(["--seeds", "0", "1", "2", "--out", str(tmp_path)])
    assert "book" not in capsys.readouterr().out
    assert [r["wall_s"] for r in rows] == [20.0, 40.0, 30.0, 30.0]
    assert rows[-1]["seed"] == "median" and rows[-1]["test_acc"] == pytest.approx(0.6)


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("d2l") is None,
    reason="the book's d2l package: python scripts/bench_book.py --setup (.ci/run does)",
)
def test_bench_book_runs_the_books_code_beside_convlab(bench, idx_dir, tmp_path, capsys):
    saved = tmp_path / "book.json"
    rows = bench("bench_book").main(
        ["--epochs", "1", "--repeats", "1", "--variants", "relu_max", "--json", str(saved)]
        + ["--data-dir", str(idx_dir), "--root", str(tmp_path), "--out", str(tmp_path / "runs")]
    )
    check_table(capsys.readouterr().out, rows, "fit_s_ratio", "fit ratio")
    (row,) = rows
    assert row["variant"] == "relu_max" and row["pairs"] == 1
    assert all(0 <= row[f"{side}_test_acc"] <= 1 for side in ("book", "convlab"))
    assert row["book_wall_s"] > row["book_fit_s"] > 0 and row["convlab_wall_s"] > 0
    # convlab's side did the book's per-epoch evaluation, and its run directories are kept
    records = sorted((tmp_path / "runs").glob("relu_max_seed*/metrics.json"))
    assert [r.parent.name for r in records] == ["relu_max_seed0"]
    config = (records[0].parent / ".hydra" / "config.yaml").read_text()
    assert "bench_book.TestEachEpoch" in config and "activation: relu" in config
    assert json.loads(saved.read_text())["rows"][0]["variant"] == "relu_max"


@pytest.mark.slow
def test_bench_startup_splits_the_time_to_the_first_step(bench, tmp_path, capsys):
    saved = tmp_path / "startup.json"
    rows = bench("bench_startup").main(
        ["--repeats", "1", "--overrides", "data=synthetic", "--json", str(saved)]
    )
    parts = {row["part"]: row["median_s"] for row in rows}
    assert list(parts) == ["interpreter start", "imports", "rest", "to first step"]
    assert all(seconds > 0 for seconds in parts.values())
    total = parts["interpreter start"] + parts["imports"] + parts["rest"]
    assert parts["to first step"] == pytest.approx(total)
    assert "| median s |" in capsys.readouterr().out
