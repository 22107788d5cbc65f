"""The debugging presets: they do what their names say."""

import pytest

from convlab.train import run
from tests.helpers import TINY


@pytest.mark.slow
def test_debug_overfit_drives_the_loss_to_zero_on_three_batches(run_dir):
    record = run(
        overrides=[
            "data=synthetic",
            "debug=overfit",
            "model=lenet_modern",
            "trainer.enable_progress_bar=false",
            "callbacks.dashboards=null",
            f"hydra.run.dir={run_dir}",
        ]
    )
    losses = [row["train/loss"] for row in record.history]
    steps = 3 * len(losses)  # overfit_batches=3: three optimizer steps an epoch
    assert steps <= 500 and losses[-1] < 0.01, (steps, losses[-5:])
    # validation stays off (overfit_batches would turn it on): the record is of the final weights
    assert not record.validation and not any("val/acc" in row for row in record.history)
    assert record.best_epoch is None and record.tested == "final weights (validation off)"


def test_overfit_batches_are_the_same_batches_every_epoch(run_dir):
    from convlab.data.datamodule import SyntheticDataModule

    class Trainer:  # what the DataModule reads of its trainer
        overfit_batches, current_epoch, global_rank, world_size = 3, 0, 0, 1

        class strategy:  # noqa: N801
            class root_device:  # noqa: N801
                type = "cpu"

    datamodule = SyntheticDataModule(batch_size=8, val_size=200)
    datamodule.trainer = Trainer()
    datamodule.setup()
    first = [y.tolist() for _, y in datamodule.train_dataloader()][:3]
    Trainer.current_epoch = 1
    assert [y.tolist() for _, y in datamodule.train_dataloader()][:3] == first
    Trainer.overfit_batches = 0  # and training proper still reshuffles
    assert [y.tolist() for _, y in datamodule.train_dataloader()][:3] != first


@pytest.mark.parametrize("preset", ["fdr", "limit", "profiler"])
def test_debug_presets_run(preset, run_dir):
    record = run(overrides=[*TINY, f"debug={preset}", f"hydra.run.dir={run_dir}"])
    assert 0.0 <= record.metrics["test/acc"] <= 1.0


def test_early_stopping_is_one_key(run_dir):
    record = run(
        overrides=[
            *TINY,
            "callbacks=early_stopping",
            "callbacks.early_stopping.patience=1",
            "trainer.max_epochs=6",
            "callbacks.dashboards=null",
            "optimizer.lr=1e-7",
            "scheduler=none",
            f"hydra.run.dir={run_dir}",
        ]
    )
    assert record.epochs_run < 6  # no better val/acc with a learning rate this small
