"""The book's figure: the held-out set after every epoch (the test set only where there is no
validation split, as in the book), logged beside the training curves, kept in the record and drawn
as book_figure.png."""

from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from convlab.callbacks.book_figure import FIGURE, HELD_OUT, draw
from convlab.train import run

# two short epochs on the synthetic data, every test image evaluated
SHORT = [
    "data=synthetic",
    "trainer.max_epochs=2",
    "trainer.limit_train_batches=4",
    "trainer.enable_progress_bar=false",
    "callbacks.dashboards=null",
]
PNG = b"\x89PNG\r\n\x1a\n"


def scalars(run_dir: Path) -> dict[str, list[float]]:
    accumulator = EventAccumulator(str(run_dir))
    accumulator.Reload()
    return {t: [e.value for e in accumulator.Scalars(t)] for t in accumulator.Tags()["scalars"]}


def test_without_a_validation_split_the_test_set_is_evaluated_after_every_epoch(tmp_path):
    record = run(overrides=[*SHORT, "experiment=book", f"hydra.run.dir={tmp_path}"])
    held_out = [row[f"{HELD_OUT}/acc"] for row in record.history]
    assert len(held_out) == 2 and all(f"{HELD_OUT}/loss" in row for row in record.history)
    # the last epoch's figure is the final weights on the whole test set: the test's own number
    assert held_out[-1] == pytest.approx(record.metrics["test/acc"], abs=1e-6)
    assert record.tested == "final weights (no validation split)"  # nothing was chosen by it
    assert scalars(tmp_path)[f"{HELD_OUT}/acc"] == pytest.approx(held_out)
    assert (tmp_path / FIGURE).read_bytes().startswith(PNG)


def test_with_a_validation_split_the_figure_is_validations_and_the_test_runs_once(tmp_path):
    record = run(overrides=[*SHORT, f"hydra.run.dir={tmp_path}"])
    assert not any(key.startswith(HELD_OUT) for row in record.history for key in row)
    assert all("val/acc" in row for row in record.history)
    assert (tmp_path / FIGURE).read_bytes().startswith(PNG)


def test_the_figure_draws_the_history_per_epoch_as_the_book_does():
    history = [
        {"epoch": 0, "train/loss": 2.0, "val/loss": 1.5, "val/acc": 0.4},
        {"epoch": 1, "train/loss": 1.0, "val/loss": 0.9, "val/acc": 0.7},
    ]
    (ax,) = draw(history, "val").axes
    lines = {ln.get_label(): (list(ln.get_xdata()), list(ln.get_ydata())) for ln in ax.lines}
    assert lines == {
        "train loss": ([1, 2], [2.0, 1.0]),
        "val loss": ([1, 2], [1.5, 0.9]),
        "val acc": ([1, 2], [0.4, 0.7]),
    }
    (ax,) = draw([{"epoch": 0, "train/loss": 2.0, f"{HELD_OUT}/acc": 0.5}], HELD_OUT).axes
    assert [line.get_label() for line in ax.lines] == ["train loss", "test acc"]
