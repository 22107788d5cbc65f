"""One log, kept: each line once on the console, the same lines in the run's convlab.log
(appended to by a resume), and the last lines name the dashboards the run actually wrote."""

import os

import pytest

from convlab.errors import ConvlabError
from convlab.runlog import LOG, run_log
from convlab.train import run
from tests.helpers import KILL, TINY, cli


def test_each_line_shows_once_and_the_run_keeps_them(tmp_path):
    out = cli(*TINY, f"hydra.run.dir={tmp_path / 'run'}")
    assert out.returncode == 0, out.stderr
    console = out.stdout + out.stderr
    assert console.count("GPU available") == 1 and "INFO:" not in console
    assert "log_every_n_steps" not in console  # an epoch of 3 steps logs every 3
    kept = (tmp_path / "run" / LOG).read_text()
    for line in ("GPU available", "test/acc ", "run directory: ", "dashboards: tensorboard"):
        assert line in kept


def test_a_resume_appends_to_the_log(killed_copy):
    before = (killed_copy / LOG).read_text()  # what the killed process said
    run(overrides=[f"resume={killed_copy}", KILL])
    after = (killed_copy / LOG).read_text()
    assert after.startswith(before) and "test/acc " in after[len(before) :]


def test_the_last_lines_name_the_dashboards_that_were_written(tmp_path, capsys):
    run(overrides=[*TINY, "logger=csv", f"hydra.run.dir={tmp_path / 'csv'}"])
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("dash")]
    assert lines == [f"dashboards: {tmp_path / 'csv' / 'metrics.csv'}"]
    run(overrides=[*TINY, "logger=[tensorboard,csv]", f"hydra.run.dir={tmp_path / 'both'}"])
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("dash")]
    assert [line.split()[1] for line in lines] == [
        "tensorboard",
        str(tmp_path / "both" / "metrics.csv"),
    ]


def test_a_hard_linked_log_is_refused_not_appended_through(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("someone else's\n")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    os.link(victim, run_dir / LOG)
    with pytest.raises(ConvlabError, match="is a hard link to another"), run_log(run_dir, True):
        pass
    assert victim.read_text() == "someone else's\n"
