"""The TensorBoard dashboards: what a run writes, and the prediction logic behind the pictures."""

from functools import partial
from pathlib import Path

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf
from tensorboard.backend.event_processing.event_accumulator import IMAGES, EventAccumulator
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from convlab.callbacks.dashboards import feature_maps, predict
from convlab.callbacks.pictures import (
    confusion_figure,
    feature_map_grid,
    filter_grid,
    prediction_grid,
)
from convlab.classifier import Classifier
from convlab.data.preprocess import Preprocess
from convlab.errors import ConvlabError
from convlab.paths import CONF_DIR
from convlab.registry import constructor_args, min_input_size
from convlab.train import run
from tests.helpers import MODEL_CONFIGS, TINY, cli

DASHBOARDS_ON = [o for o in TINY if not o.startswith("callbacks.dashboards")]
PNG = b"\x89PNG"


def logged_images(run_dir: Path) -> dict[str, list]:
    """Tag -> every image event written under it, from all of the run's event files."""
    images: dict[str, list] = {}
    for events in run_dir.glob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(events), size_guidance={IMAGES: 0})  # 0: keep them all
        accumulator.Reload()
        for tag in accumulator.Tags()["images"]:
            images.setdefault(tag, []).extend(accumulator.Images(tag))
    return images


def test_a_run_draws_every_dashboard_after_its_validation_epochs_and_after_testing(run_dir):
    run(
        overrides=[
            *DASHBOARDS_ON,
            f"hydra.run.dir={run_dir}",
            "trainer.max_epochs=2",
            "callbacks.dashboards.every_n_epochs=2",
            "callbacks.dashboards.classes=[2,'7']",  # an index and a (synthetic) class name
        ]
    )
    images = logged_images(run_dir)
    steps_per_epoch = 3  # trainer.limit_train_batches
    # LeNet: 6 kernels of 5x5; the input and 6 maps of 28x28 in one row; the input and 16 maps of
    # 10x10 in three rows of 8; tiles are enlarged to 60 and 56 pixels and framed by 2. The maps
    # are what comes out of each conv's ReLU.
    expected = {
        "1_predictions": None,
        "2_confusion_matrix": None,
        "3_filters/conv1": (374, 64),
        "4_activations/conv1_relu/2": (408, 60),
        "4_activations/conv1_relu/7": (408, 60),
        "4_activations/conv2_relu/2": (498, 188),
        "4_activations/conv2_relu/7": (498, 188),
    }
    assert set(images) == {f"{stage}/{name}" for stage in ("val", "test") for name in expected}
    for tag, events in images.items():
        (event,) = events  # validation in epoch 1 only (not 0), and testing once
        assert event.step == 2 * steps_per_epoch
        assert event.encoded_image_string.startswith(PNG)
        size = expected[tag.split("/", 1)[1]]
        if size is None:  # figures: a readable size, whatever matplotlib's layout makes of it
            assert event.width >= 600 and event.height >= 500, tag
        else:
            assert (event.width, event.height) == size, tag


@pytest.mark.slow
def test_under_ddp_every_rank_joins_the_confusion_sync_and_rank_0_alone_draws(run_dir):
    # compute() of the confusion matrix is a collective: a rank that skipped it would hang the run
    done = cli(
        *DASHBOARDS_ON,
        "trainer=ddp_cpu",
        "trainer.max_epochs=2",
        f"hydra.run.dir={run_dir}",
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    images = logged_images(run_dir)
    assert [len(images[f"{stage}/2_confusion_matrix"]) for stage in ("val", "test")] == [1, 1]


def test_an_unknown_class_is_refused_with_the_key_and_the_choices(run_dir):
    with pytest.raises(ConvlabError, match=r"callbacks.dashboards.classes: 'Sweater' .* 0-9"):
        run(
            overrides=[
                *DASHBOARDS_ON,
                f"hydra.run.dir={run_dir}",
                "callbacks.dashboards.classes=[Sweater]",
            ]
        )


class AlwaysThree(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.one_hot(torch.full((len(x),), 3), 10).float()


def test_a_net_that_always_says_3_fills_one_column_and_every_other_class_is_marked_wrong():
    classifier = Classifier(
        AlwaysThree(), Preprocess(), num_classes=10, optimizer=partial(torch.optim.SGD, lr=0.1)
    )
    images = torch.randint(0, 256, (20, 28, 28), dtype=torch.uint8)
    labels = torch.arange(20) % 10
    names = [f"class{i}" for i in range(10)]
    trainer = L.Trainer(
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    batches = DataLoader(TensorDataset(images, labels), batch_size=7)  # batches of 7, 7 and 6
    for _ in range(2):  # the second epoch counts from zero, not on top of the first
        trainer.validate(classifier, batches, verbose=False)
    counts = classifier.val_confusion.compute()  # (true, predicted)
    assert counts[:, 3].tolist() == [2] * 10 and counts.sum() == 20
    assert trainer.callback_metrics["val/acc"] == pytest.approx(0.1)  # the diagonal's accuracy
    assert confusion_figure(counts, names).axes[0].get_title() == "accuracy 0.1000 on 20 images"

    predicted = predict(classifier, images, batch_size=7)
    assert predicted.tolist() == [3] * 20

    (ax,) = prediction_grid(images, predicted, labels, names).axes
    (grid,) = ax.images
    # 5 rows of 4 tiles, each 28 high under 14 rows of title room, 2 pixels of padding around
    assert grid.get_array().shape == (2 + 5 * (14 + 28 + 2), 2 + 4 * (28 + 2), 3)
    titles = ax.texts
    assert [t.get_color() for t in titles] == ["black" if y == 3 else "red" for y in labels]
    assert titles[0].get_text() == "class3\n(true: class0)" and titles[3].get_text() == "class3"
    # each title sits over its own tile: the 9th starts the third row (4 to a row)
    assert titles[8].get_position() == (2 + 14, 2 * 44 + 2 + 7)


class RegisteredBackwards(nn.Module):
    """The layer that runs first is registered last, as a ResNet's shortcut conv can be."""

    def __init__(self):
        super().__init__()
        self.second = nn.Conv2d(4, 8, 3)
        self.first = nn.Conv2d(1, 4, 3)

    def forward(self, x):
        return self.second(self.first(x))


def test_conv_layers_are_found_in_the_order_the_forward_pass_runs_them():
    net = RegisteredBackwards()
    (first, a, first_maps), (second, b, second_maps) = feature_maps(net, torch.zeros(2, 1, 9, 9), 2)
    assert first is net.first and second is net.second
    assert (a, b) == ("conv1_output", "conv2_output")  # no activation module follows either
    assert first_maps.shape == (2, 4, 7, 7) and second_maps.shape == (2, 8, 5, 5)
    assert not net.first._forward_hooks and not net.second._forward_hooks


@pytest.mark.parametrize("model", MODEL_CONFIGS)
def test_every_model_has_filters_and_feature_maps_to_draw(model):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        model_cfg = compose("train", [f"model={model}"]).model
        size = max(min_input_size(OmegaConf.to_container(model_cfg, resolve=True)), 28)
        cfg = compose("train", [f"model={model}", f"data.resize={size}"])
    net = instantiate(constructor_args(cfg.model)).eval()
    with torch.no_grad():
        (first, _, maps), (_, _, second_maps) = feature_maps(net, torch.rand(1, 1, size, size), 2)
    assert first.in_channels == 1 and maps.shape[:2] == (1, first.out_channels)
    assert filter_grid(first.weight).shape[0] == 3 and feature_map_grid(second_maps[0]).dim() == 3


@pytest.mark.parametrize(("activation", "low"), [("sigmoid", 0.0), ("relu", 0.0)])
def test_activation_pictures_show_what_comes_out_of_the_activation(activation, low):
    from convlab.models.lenet import LeNet

    net = LeNet(activation=activation).eval()
    with torch.no_grad():
        (_, label, maps), _ = feature_maps(net, torch.randn(1, 1, 28, 28), 2)
    assert label == f"conv1_{activation}"
    assert maps.min() >= low and (activation != "sigmoid" or maps.max() <= 1.0)
    raw = net.net[0](torch.randn(1, 1, 28, 28))
    assert raw.min() < 0  # the conv's own output has negatives: the picture is not of it


@pytest.mark.parametrize(("key", "value"), [("num_images", 0), ("every_n_epochs", -1)])
def test_nonsense_dashboard_settings_are_refused_by_name(key, value):
    from convlab.callbacks.dashboards import Dashboards

    with pytest.raises(ConvlabError, match=f"callbacks.dashboards.{key}={value} is invalid"):
        Dashboards(**{key: value})
