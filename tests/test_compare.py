"""The comparison of a sweep's runs, on sweep directories written by hand: no training."""

import csv
import errno
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convlab import compare as compare_module
from convlab import safe_files
from convlab.compare import (
    compare,
    find_jobs,
    group_by_configuration,
    summarize,
    val_acc_figure,
)
from convlab.errors import ConvlabError
from convlab.rundir import resume_command
from tests.helpers import failure_job, run_script, write_job


def table(text: str) -> list[list[str]]:
    """The markdown table's body rows, as lists of cells."""
    rows = [line for line in text.splitlines() if line.startswith("| ")][2:]  # header, rule
    return [[c.strip() for c in row.strip("|").split(" | ")] for row in rows]


def test_seeds_of_one_configuration_give_mean_and_sample_std(tmp_path):
    for seed, acc in enumerate([0.80, 0.85, 0.90]):
        write_job(tmp_path, f"{seed}_seed={seed}", ["model=lenet", f"seed={seed}"], acc)
    write_job(tmp_path, "3_model=vgg", ["model=vgg", "seed=0"], 0.5)
    text = compare(tmp_path)
    lenet, vgg = table(text)
    assert lenet[:3] == ["model=lenet", "3", "**0.8500 ± 0.0500**"]
    assert vgg[:4] == ["model=vgg", "1", "0.5000", "0.4900"]  # no ± for a single run
    rows = list(csv.DictReader((tmp_path / "comparison.csv").open()))
    assert [(r["configuration"], r["n"], r["best"]) for r in rows] == [
        ("model=lenet", "3", "yes"),
        ("model=vgg", "1", ""),
    ]
    assert float(rows[0]["val_acc_std"]) == pytest.approx(0.05) and rows[1]["val_acc_std"] == ""
    assert (tmp_path / "val_acc.png").read_bytes().startswith(b"\x89PNG")


def test_configurations_group_in_sweep_order_and_name_only_what_varies(tmp_path):
    shared = ["experiment=lenet_ablation", "trainer.max_epochs=10"]
    for num, (seed, pool) in enumerate([(0, "avg"), (0, "max"), (1, "avg"), (1, "max")]):
        write_job(tmp_path, f"{num}", [f"model.pool={pool}", *shared, f"seed={seed}"], 0.1 * num)
    jobs = find_jobs([tmp_path])
    assert [(j.name, j.state) for j in jobs] == [(str(n), "finished") for n in range(4)]
    configurations = group_by_configuration([j.record for j in jobs], [j.name for j in jobs])
    assert [c.jobs for c in configurations] == [["0", "2"], ["1", "3"]]
    rows = summarize(configurations)
    assert [r["configuration"] for r in rows] == ["model.pool=avg", "model.pool=max"]
    assert rows[1]["val/acc"][0] == pytest.approx(0.2)  # jobs 1 and 3: (0.1 + 0.3) / 2
    assert rows[0]["overrides"] == "model.pool=avg experiment=lenet_ablation trainer.max_epochs=10"
    assert "shared overrides: experiment=lenet_ablation trainer.max_epochs=10" in compare(tmp_path)


def test_sampled_floats_are_shortened_in_names_but_kept_where_that_would_merge_two(tmp_path):
    lrs = ["0.004430375245218269", "1e+30", "0.0123451", "0.0123449"]
    for num, lr in enumerate(lrs):
        write_job(tmp_path, f"trial_{num}", [f"optimizer.lr={lr}", "trainer.max_epochs=10"], 0.5)
    rows = summarize(group_by_configuration([j.record for j in find_jobs([tmp_path])]))
    assert [r["configuration"] for r in rows] == [
        "optimizer.lr=0.00443",
        "optimizer.lr=1e+30",
        "optimizer.lr=0.0123451",  # both would read optimizer.lr=0.0123
        "optimizer.lr=0.0123449",
    ]
    assert rows[0]["overrides"] == "optimizer.lr=0.004430375245218269 trainer.max_epochs=10"


def test_rows_are_ranked_by_mean_val_acc_and_the_best_shows_its_checkpoints(tmp_path):
    for num, (act, acc) in enumerate([("sigmoid", 0.70), ("relu", 0.90), ("tanh", 0.80)]):
        for seed in (0, 1):
            name = f"{2 * num + seed}_act={act},seed={seed}"
            write_job(tmp_path, name, [f"model.activation={act}", f"seed={seed}"], acc)
    text = compare(tmp_path)
    assert [row[0] for row in table(text)] == [
        "model.activation=relu",
        "model.activation=tanh",
        "model.activation=sigmoid",
    ]
    assert [row[2].startswith("**") for row in table(text)] == [True, False, False]
    assert "Best by mean val/acc: model.activation=relu" in text
    best = tmp_path / "2_act=relu,seed=0"
    assert f"  - 2_act=relu,seed=0; checkpoint: {best}/checkpoints/best.ckpt\n" in text
    assert "  - 0_act=sigmoid,seed=0\n" in text  # other configurations: their jobs, no checkpoint
    assert text.count("checkpoint:") == 2
    rows = list(csv.DictReader((tmp_path / "comparison.csv").open()))
    assert [(r["configuration"], r["best"]) for r in rows] == [
        ("model.activation=relu", "yes"),
        ("model.activation=tanh", ""),
        ("model.activation=sigmoid", ""),
    ]
    assert rows[0]["jobs"] == "2_act=relu,seed=0 3_act=relu,seed=1"


def test_runs_without_a_validation_split_come_last_and_are_never_ranked_by_test_acc(tmp_path):
    write_job(tmp_path, "0", ["data.val_size=0"], 0.0, validation=False, metrics={"test/acc": 0.99})
    write_job(tmp_path, "1", ["data.val_size=10"], 0.0, metrics={"test/acc": 0.98})  # no val/acc
    write_job(tmp_path, "2", ["data.val_size=5000"], 0.5)
    text = compare(tmp_path)
    assert [row[:5] for row in table(text)] == [  # configuration, n, val, test, best epoch
        ["data.val_size=5000", "1", "**0.5000**", "0.4900", "1"],
        ["data.val_size=0", "1", "no validation split", "0.9900", "–"],
        ["data.val_size=10", "1", "no validation split", "0.9800", "–"],
    ]
    for job in ("0", "1"):
        (tmp_path / job / "metrics.json").rename(tmp_path / job / "old.json")
        write_job(tmp_path / "only", job, [f"x={job}"], 0.0, validation=False, metrics={})
    text = compare(tmp_path / "only")
    assert "**" not in text and "Best by" not in text and "checkpoint:" not in text


def test_failed_and_interrupted_jobs_are_reported_from_their_failure_records(tmp_path):
    write_job(tmp_path, "0_lr=0.01", ["optimizer.lr=0.01"], 0.8)
    failure_job(
        tmp_path,
        "1_lr=1e30",
        "failed",
        "training diverged at step 3: loss is nan; lower optimizer.lr",
        overrides=["optimizer.lr=1e30"],
    )
    recorded = "python train.py resume='/runs/2_lr=0.1'"
    failure_job(tmp_path, "2_lr=0.1", "interrupted", "interrupted by SIGTERM", resume=recorded)
    (tmp_path / "3_lr=1" / ".hydra").mkdir(parents=True)  # still running, or killed with -9
    (tmp_path / ".submitit" / "1234").mkdir(parents=True)  # a launcher's folder, not a job
    text = compare(tmp_path)
    assert "Skipped" not in text
    assert "Runs: 1 finished, 1 failed, 1 interrupted, 1 without a record;" in text
    assert (
        "Failed: 1 job(s)\n- 1_lr=1e30 (optimizer.lr=1e30): failed: training diverged at step 3: "
        "loss is nan; lower optimizer.lr\n"
    ) in text
    assert (
        "Interrupted: 1 job(s)\n- 2_lr=0.1: interrupted: interrupted by SIGTERM; "
        f"continue it with {resume_command(tmp_path / '2_lr=0.1')}\n"  # convlab's, not the record's
    ) in text
    assert text.endswith("before one was written): 1 job(s)\n- 3_lr=1\n")
    assert [row[0] for row in table(text)] == ["all runs"]


def test_a_finished_record_wins_over_the_failure_record_of_its_interruption(tmp_path):
    job = write_job(tmp_path, "0", ["seed=0"], 0.8)
    (job / "failure.json").write_text(json.dumps({"status": "interrupted", "error": "SIGTERM"}))
    (job / "metrics.json").write_text(
        json.dumps(
            {
                k: v
                for k, v in json.loads((job / "metrics.json").read_text()).items()
                if k != "status"
            }
        )  # an older record: no status means finished
    )
    assert [(j.name, j.state) for j in find_jobs([tmp_path])] == [("0", "finished")]
    assert "interrupted" not in compare(tmp_path)


def test_pruned_trials_are_listed_apart_from_the_finished_runs(tmp_path):
    write_job(tmp_path, "trial_0", ["optimizer.lr=0.01"], 0.8)
    write_job(tmp_path, "trial_1", ["optimizer.lr=0.1"], 0.3, status="pruned", epochs_run=1)
    text = compare(tmp_path)
    assert [row[0] for row in table(text)] == ["all runs"]  # trial_0 alone
    assert "Runs: 1 finished, 1 pruned;" in text
    assert "- trial_1 (optimizer.lr=0.1): pruned after 1 epoch(s), val/acc 0.3000\n" in text


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty"),
        (b'{"metrics": {"val/acc": 0.9', "not JSON, or cut short"),
        (b"not json at all", "not JSON, or cut short"),
        (b"null", "holds null, not a JSON object"),
        (b"[1, 2]", "holds list, not a JSON object"),
        (b'"text"', "holds str, not a JSON object"),
        (b"\xff\xfe\x00garbage", "cannot be read"),
        (b"[" * 100_000, "not JSON, or cut short"),
        (b'{"status": "exploded", "metrics": {}}', "unknown status 'exploded'"),
        (b'{"metrics": null}', "has no 'metrics' object"),
        (b'{"metrics": {}, "overrides": "seed=1"}', "'overrides' is not a list of strings"),
    ],
)
def test_an_unreadable_metrics_json_is_listed_with_its_reason(tmp_path, content, reason):
    write_job(tmp_path, "0_good", ["seed=0"], 0.8)
    (tmp_path / "1_bad").mkdir()
    (tmp_path / "1_bad" / "metrics.json").write_bytes(content)
    text = compare(tmp_path)
    assert "Unreadable records (not in the table): 1 job(s)\n- 1_bad: metrics.json: " in text
    line = next(line for line in text.splitlines() if line.startswith("- 1_bad"))
    assert reason in line
    assert len(table(text)) == 1


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b'{"status": "failed", "err', "not JSON, or cut short"),
        (b"null", "holds null"),
        (b'{"error": "no status"}', "unknown status None (expected failed or interrupted)"),
        (b'{"status": "finished"}', "unknown status 'finished'"),
    ],
)
def test_an_unreadable_failure_json_is_listed_with_its_reason(tmp_path, content, reason):
    write_job(tmp_path, "0_good", ["seed=0"], 0.8)
    (tmp_path / "1_bad" / ".hydra").mkdir(parents=True)
    (tmp_path / "1_bad" / "failure.json").write_bytes(content)
    assert f"- 1_bad: failure.json: {reason}" in compare(tmp_path)


def test_a_record_that_cannot_be_read_is_listed(tmp_path, monkeypatch):
    write_job(tmp_path, "0_good", ["seed=0"], 0.8)
    write_job(tmp_path, "1_denied", ["seed=1"], 0.9)
    real_read = Path.read_text

    def read_text(self, *args, **kwargs):
        if self.parent.name == "1_denied":
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_read(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", read_text)
    text = compare(tmp_path)
    assert "- 1_denied: metrics.json: cannot be read (Permission denied)\n" in text
    assert [row[:3] for row in table(text)] == [["all runs", "1", "**0.8000**"]]


def test_values_of_the_wrong_type_show_as_missing(tmp_path):
    write_job(
        tmp_path,
        "0",
        ["seed=0"],
        0.0,
        metrics={"val/acc": "0.9", "test/acc": True},
        best_epoch=[1],
        epochs_run=None,
        history=[None, {"epoch": "x", "val/acc": 0.5}, {"epoch": 0, "val/acc": float("nan")}],
        model=[],
        timing="fast",
        paths=None,
    )
    write_job(tmp_path, "1", ["seed=0", "x=1"], 0.5, model={"params": "many"})
    text = compare(tmp_path)
    assert [row for row in table(text)] == [
        ["x=1", "1", "**0.5000**", "0.4900", "1", "2", "10.0", "–"],
        ["all runs", "1", "no validation split", "–", "–", "–", "–", "–"],
    ]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.recursive(
        st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=5),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
        max_leaves=12,
    ),
    st.sampled_from(["metrics", "history", "overrides", "best_epoch", "model", "paths", "status"]),
)
def test_fuzz_any_json_in_a_record_is_reported_never_raised(tmp_path, monkeypatch, value, key):
    monkeypatch.setattr(compare_module, "png", lambda figure: b"")  # the figure is built, not drawn
    sweep = tmp_path / "fuzz"
    if sweep.exists():
        for file in sorted(sweep.rglob("*"), reverse=True):
            file.rmdir() if file.is_dir() else file.unlink()
    write_job(sweep, "0", ["seed=0"], 0.5)
    job = write_job(sweep, "1", ["seed=1", "x=1"], 0.6)
    record = json.loads((job / "metrics.json").read_text())
    (job / "metrics.json").write_text(json.dumps({**record, key: value}))
    text = compare(sweep, tmp_path / "report")
    state = {j.name: j.state for j in find_jobs([sweep])}["1"]
    listed = {"finished": "  - 1", "pruned": "- 1: pruned", "unreadable": "- 1: metrics.json: "}
    assert listed[state] in text


def test_integers_are_shown_as_integers(tmp_path):
    write_job(tmp_path, "0", ["seed=0"], 0.5, best_epoch=0, epochs_run=3, model={"params": 1234567})
    write_job(tmp_path, "1", ["seed=1"], 0.5, best_epoch=0, epochs_run=3, model={"params": 1234567})
    write_job(tmp_path, "2", ["x=1"], 0.4, best_epoch=1, epochs_run=3)
    write_job(tmp_path, "3", ["x=1", "seed=1"], 0.4, best_epoch=2, epochs_run=3)
    text = compare(tmp_path)
    assert [row[:2] + row[4:] for row in table(text)] == [
        ["all runs", "2", "0", "3", "10.0 ± 0.0", "1,234,567"],
        ["x=1", "2", "1.5 ± 0.7", "3", "10.0 ± 0.0", "61,706"],  # epochs that differ: a mean
    ]
    rows = list(csv.DictReader((tmp_path / "comparison.csv").open()))
    assert [(r["best_epoch_mean"], r["epochs_mean"], r["params"]) for r in rows] == [
        ("0", "3", "1234567"),
        ("1.5", "3", "61706"),
    ]


def _figure(sweep: Path):
    jobs = find_jobs([sweep])
    rows = summarize(group_by_configuration([j.record for j in jobs]))
    return val_acc_figure(
        group_by_configuration([j.record for j in jobs]), [r["configuration"] for r in rows]
    ).axes[0]


def test_one_epoch_runs_are_plotted_as_one_dot_per_configuration(tmp_path):
    for num, act in enumerate(["sigmoid", "relu"]):
        history = [{"epoch": 0, "val/acc": 0.5 + 0.1 * num}]
        write_job(tmp_path, str(num), [f"model.activation={act}"], 0.5, history=history)
    ax = _figure(tmp_path)
    assert ax.get_xlabel() == "val/acc" and "min–max" not in ax.get_title()
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        "model.activation=sigmoid (n=1)",
        "model.activation=relu (n=1)",
    ]
    dots = [line.get_xdata()[0] for line in ax.get_lines() if line.get_marker() == "o"]
    assert dots == pytest.approx([0.5, 0.6])
    write_job(tmp_path, "2", ["model.activation=relu", "seed=1"], 0.5, history=history)
    assert "min–max over seeds" in _figure(tmp_path).get_title()


def test_curves_per_epoch_say_min_max_over_seeds_only_when_there_are_seeds(tmp_path):
    write_job(tmp_path, "0", ["model=lenet"], 0.8)
    write_job(tmp_path, "1", ["model=vgg"], 0.7)
    ax = _figure(tmp_path)
    assert ax.get_xlabel() == "epoch" and ax.get_title() == "validation accuracy: mean"
    assert [list(line.get_xdata()) for line in ax.get_lines()] == [[0, 1], [0, 1]]
    write_job(tmp_path, "2", ["model=vgg", "seed=1"], 0.7)
    assert _figure(tmp_path).get_title() == "validation accuracy: mean, min–max over seeds"


def test_several_sweep_directories_make_one_report_written_to_out(tmp_path):
    for process in ("a", "b"):
        for trial in (0, 1):
            lr = f"optimizer.lr=0.0{trial + 1}"
            acc = 0.6 + 0.1 * trial + (0.05 if process == "b" else 0)
            write_job(tmp_path / process, f"trial_{trial}", [lr, f"seed={process}"], acc)
    failure_job(tmp_path / "b", "trial_2", "failed", "out of memory")
    sweeps = [tmp_path / "a", tmp_path / "b", tmp_path / "a"]  # a directory twice counts once
    with pytest.raises(ConvlabError, match="2 sweep directories .* pass --out DIR"):
        compare(sweeps)
    text = compare(sweeps, tmp_path / "study")
    assert text.startswith(f"Sweep directories: {tmp_path / 'a'}, {tmp_path / 'b'}\n")
    assert [row[:3] for row in table(text)] == [
        ["optimizer.lr=0.02", "2", "**0.7250 ± 0.0354**"],
        ["optimizer.lr=0.01", "2", "0.6250 ± 0.0354"],
    ]
    assert "  - a/trial_1; checkpoint: " in text and "  - b/trial_1; checkpoint: " in text
    assert "- b/trial_2: failed: out of memory" in text
    assert sorted(p.name for p in (tmp_path / "study").iterdir()) == [
        "comparison.csv",
        "comparison.md",
        "val_acc.png",
    ]
    assert not (tmp_path / "a" / "comparison.md").exists()


def test_a_directory_without_jobs_is_refused_and_one_without_finished_runs_reported(tmp_path):
    with pytest.raises(ConvlabError, match="no jobs under .* pass a multirun directory"):
        compare(tmp_path)
    with pytest.raises(ConvlabError, match="not a directory"):
        compare(tmp_path / "missing")
    failure_job(tmp_path, "0", "failed", "no data")
    text = compare(tmp_path)
    assert "No finished runs to compare." in text and "- 0: failed: no data" in text


@pytest.mark.parametrize(
    "error",
    [
        PermissionError(errno.EACCES, "Permission denied"),
        OSError(errno.EROFS, "Read-only file system"),
    ],
)
def test_a_sweep_that_cannot_be_written_asks_for_out(tmp_path, monkeypatch, error):
    write_job(tmp_path, "0", ["seed=0"], 0.8)

    def refuse(self, *args, **kwargs):
        raise error

    monkeypatch.setattr(safe_files, "write_bytes", refuse)
    with pytest.raises(ConvlabError) as e:
        compare(tmp_path)
    assert str(e.value) == (
        f"cannot write the comparison into {tmp_path} ({error.strerror}): pass --out DIR, "
        "a directory you can write"
    )


def test_an_out_that_cannot_be_a_directory_is_refused_in_one_line(tmp_path):
    write_job(tmp_path, "0", ["seed=0"], 0.8)
    (tmp_path / "file").write_text("")
    for out in (tmp_path / "file", tmp_path / "file" / "report"):
        with pytest.raises(ConvlabError, match=rf"cannot write the comparison into {out} .*--out"):
            compare(tmp_path, out)


def test_the_report_is_never_written_into_a_run_directory(tmp_path):
    run = write_job(tmp_path, "run", ["seed=0"], 0.8)
    before = sorted(p.name for p in run.iterdir())
    with pytest.raises(ConvlabError, match=f"^{run} is a run's directory, .* pass --out DIR"):
        compare(run)
    with pytest.raises(ConvlabError, match=f"^{run / 'report'} is inside {run}, a run's directory"):
        compare(run, run / "report")
    assert sorted(p.name for p in run.iterdir()) == before
    assert "all runs" in compare(run, tmp_path / "report")


def test_the_script_takes_several_directories_and_errs_in_one_line(tmp_path, monkeypatch, capsys):
    write_job(tmp_path / "a", "0", ["x=1"], 0.8)
    write_job(tmp_path / "b", "0", ["x=2"], 0.7)
    code, out, err = run_script(monkeypatch, capsys, str(tmp_path / "a"), str(tmp_path / "b"))
    assert code == 1 and out == ""
    assert err == (
        "convlab: error: 2 sweep directories are compared into one report: pass --out DIR to say "
        "where it goes\n"
    )
    args = (str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "out"))
    code, out, err = run_script(monkeypatch, capsys, *args)
    assert code == 0 and out == (tmp_path / "out" / "comparison.md").read_text()
    assert [row[0] for row in table(out)] == ["x=1", "x=2"]
