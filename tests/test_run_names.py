"""Default run directories: the model (and experiment) after the time, and debug presets and
evaluations apart from the training runs, so that `tensorboard --logdir outputs/runs` lists real
runs by what they were."""

import re

import pytest

from convlab.config import compose_run
from convlab.train import run
from tests.helpers import TINY

TIME = r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d-\d{6}"


@pytest.mark.parametrize(
    ("overrides", "kind", "suffix"),
    [
        ([], "runs", "_lenet_modern"),
        (["experiment=lenet_notes"], "runs", "_lenet_notes"),  # the model's name once
        (["experiment=book", "model=nin"], "runs", "_nin_book"),
        (["debug=overfit"], "debug", "_lenet_modern"),
        (["train=false"], "evals", ""),  # the network will be the checkpoint's, not an option's
        (["init_from=/x/last.ckpt"], "runs", ""),  # so it is with a warm start
    ],
)
def test_a_runs_default_directory_says_what_it_is(overrides, kind, suffix, tmp_path):
    cfg = compose_run([*overrides, f"paths.log_dir={tmp_path}"])
    relative = cfg.paths.output_dir.removeprefix(f"{tmp_path}/")
    assert re.fullmatch(f"{kind}/{TIME}{suffix}", relative), relative


def test_the_last_line_names_the_runs_tensorboard_shows(tmp_path, capsys):
    record = run(overrides=[*TINY, f"paths.log_dir={tmp_path}"])
    assert record.paths["run_dir"].startswith(f"{tmp_path}/runs/")
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == f"dashboards: tensorboard --logdir {tmp_path / 'runs'}"
