"""The predicted run length printed after the first steps."""

import re

from convlab.train import run
from tests.helpers import TINY


def test_first_steps_predict_the_epoch_and_the_run(tmp_path, capsys):
    run(
        overrides=[
            *TINY,
            "trainer.max_epochs=3",
            "trainer.limit_train_batches=6",
            "callbacks.epoch_time.warmup_steps=1",
            "callbacks.epoch_time.timed_steps=3",
            f"hydra.run.dir={tmp_path}",
        ]
    )
    out = capsys.readouterr().out
    (line,) = [line for line in out.splitlines() if "ms a step" in line]  # once, not per epoch
    pattern = r"([\d.]+) ms a step: ([\d.]+) s a training epoch, ~([\d.]+) s for the 3 left"
    step_ms, epoch_s, run_s = map(float, re.search(pattern, line).groups())
    # 6 steps an epoch, 3 epochs; each figure is rounded to 0.1 in the message
    assert abs(epoch_s - step_ms * 6 / 1000) <= 0.051
    assert abs(run_s - step_ms * 18 / 1000) <= 0.051
    assert "validation and test not included" in line


def test_an_epoch_shorter_than_the_timed_steps_predicts_nothing(tmp_path, capsys):
    run(overrides=[*TINY, "callbacks.epoch_time.timed_steps=50", f"hydra.run.dir={tmp_path}"])
    assert "ms a step" not in capsys.readouterr().out
