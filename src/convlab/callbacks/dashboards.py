"""TensorBoard pictures of a run: predictions, confusion matrix, first filters and feature maps."""

from collections.abc import Callable, Sequence

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from torch import Tensor, nn

from convlab.callbacks.pictures import (
    confusion_figure,
    feature_map_grid,
    filter_grid,
    prediction_grid,
)
from convlab.errors import ConvlabError

_KEY = "callbacks.dashboards"


class Dashboards(L.Callback):
    """Draws each stage's pictures from the split that stage evaluates, on global rank 0 only.

    After validation in epochs N, 2N, ... (N = ``every_n_epochs``; 0: never) and after testing,
    under the tags ``val/...`` and ``test/...``, numbered so TensorBoard (which sorts tags by name)
    shows the answers before the internals:

    - ``1_predictions``: the split's first ``num_images`` images, wrong predictions in red;
    - ``2_confusion_matrix``: the Classifier's ``val_confusion`` or ``test_confusion``, counted in
      the stage's own steps (all DDP ranks, limit_*_batches respected), so it agrees with val/acc
      or test/acc;
    - ``3_filters/conv1``: the kernels of the first conv layer the forward pass runs;
    - ``4_activations/conv1/<class>`` and ``4_activations/conv2/<class>``: the first two conv layers'
      outputs for the split's first image of each class in ``classes`` (indices or names).

    The only extra forward pass is over the ``num_images`` shown and the one image per class;
    nothing runs per training step.
    """

    def __init__(
        self, every_n_epochs: int = 2, num_images: int = 32, classes: Sequence[int | str] = (2, 4)
    ):
        self.every_n_epochs, self.num_images, self.classes = every_n_epochs, num_images, classes
        self.class_indices: list[int] = []

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # checked here, not in __init__: Hydra's instantiate would bury a ConvlabError in its own
        for key, least in (("every_n_epochs", 0), ("num_images", 1)):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise ConvlabError(
                    f"{_KEY}.{key}={value} is invalid: expected an integer >= {least}, "
                    f"e.g. {_KEY}.{key}=2"
                )
        names = trainer.datamodule.class_names
        if not self.classes:
            raise ConvlabError(f"{_KEY}.classes is empty: name at least one class, e.g. [2, 4]")
        self.class_indices = [_class_index(c, names) for c in self.classes]

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        due = self.every_n_epochs and (trainer.current_epoch + 1) % self.every_n_epochs == 0
        if due and not trainer.sanity_checking:
            self._draw(trainer, pl_module, "val")

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._draw(trainer, pl_module, "test")

    def _draw(self, trainer: L.Trainer, pl_module: L.LightningModule, split: str) -> None:
        # compute() all-gathers the counts of every DDP rank, a collective that each rank must
        # join: all ranks compute (the same result), rank 0 alone draws. Turning its sync off
        # instead would draw rank 0's shard only.
        counts = getattr(pl_module, f"{split}_confusion").compute()  # (true, predicted)
        writers = [lg.experiment for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]
        if not (trainer.is_global_zero and writers and counts.sum()):
            return
        datamodule = trainer.datamodule
        images, labels = datamodule.splits[split]
        shown = slice(0, self.num_images)
        names = datamodule.class_names
        # the eager network, past torch.compile: these batch sizes and hooks would recompile it
        net = getattr(pl_module.net, "_orig_mod", pl_module.net)
        firsts = first_of_each(labels, self.class_indices)
        was_training = pl_module.training
        pl_module.eval()
        try:
            with torch.no_grad(), trainer.precision_plugin.forward_context():
                predicted = predict(
                    lambda batch: net(pl_module.preprocess(batch.to(pl_module.device))),
                    images[shown],
                    datamodule.eval_batch_size,
                )
                inputs = images[list(firsts.values())].to(pl_module.device)  # one per class
                convs = conv_outputs(net, pl_module.preprocess(inputs), 2) if firsts else []
        finally:
            pl_module.train(was_training)

        figures = {
            "1_predictions": prediction_grid(images[shown], predicted, labels[shown], names),
            "2_confusion_matrix": confusion_figure(counts, names),
        }
        pictures = {"3_filters/conv1": filter_grid(convs[0][0].weight)} if convs else {}
        for depth, (_, maps) in enumerate(convs, start=1):  # maps: (len(firsts), C, H, W)
            for class_index, one_input in zip(firsts, maps, strict=True):
                tag = names[class_index].replace("/", "-")  # "T-shirt/top" is one tag, not two
                pictures[f"4_activations/conv{depth}/{tag}"] = feature_map_grid(one_input)
        for writer in writers:
            for tag, figure in figures.items():
                writer.add_figure(f"{split}/{tag}", figure, trainer.global_step)
            for tag, picture in pictures.items():
                writer.add_image(f"{split}/{tag}", picture, trainer.global_step)


def predict(classify: Callable[[Tensor], Tensor], images: Tensor, batch_size: int) -> Tensor:
    """The class that ``classify`` (images -> logits) picks for each image, batch by batch."""
    return torch.cat([classify(batch).argmax(1).cpu() for batch in images.split(batch_size)])


def first_of_each(labels: Tensor, classes: list[int]) -> dict[int, int]:
    """Class -> index of its first image, for the classes that the split has at all."""
    return {c: int(hits[0]) for c in classes if len(hits := (labels == c).nonzero()) > 0}


def conv_outputs(net: nn.Module, inputs: Tensor, count: int) -> list[tuple[nn.Conv2d, Tensor]]:
    """The first ``count`` conv layers in the order the forward pass runs them (which in a ResNet
    is not the order they were registered in), each with its output for ``inputs``."""
    calls: list[tuple[nn.Conv2d, Tensor]] = []

    def keep(module: nn.Module, args, output: Tensor) -> None:
        if len(calls) < count and all(module is not seen for seen, _ in calls):
            calls.append((module, output))

    hooks = [m.register_forward_hook(keep) for m in net.modules() if isinstance(m, nn.Conv2d)]
    try:
        net(inputs)
    finally:
        for hook in hooks:
            hook.remove()
    return calls


def _class_index(wanted: int | str, names: list[str]) -> int:
    if wanted in names:
        return names.index(wanted)
    if isinstance(wanted, int) and not isinstance(wanted, bool) and 0 <= wanted < len(names):
        return wanted
    raise ConvlabError(
        f"{_KEY}.classes: {wanted!r} is not a class of this dataset; give an index "
        f"0-{len(names) - 1} or one of the names {', '.join(names)}"
    )
