"""Pictures of a run for TensorBoard, MLflow and W&B: predictions, confusion matrix, first filters
and feature maps."""

from collections.abc import Callable, Sequence

import lightning as L
import torch
from torch import Tensor, nn

from convlab.callbacks.loggers import as_image, picture_sinks
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
    - ``4_activations/conv1_<activation>/<class>`` and ``.../conv2_<activation>/<class>``: what
      comes out of the activation after each of the first two conv layers (``conv2_output``
      where none follows as a module) for the split's first image of each class in ``classes``
      (indices or names), the input image first in each strip.

    The only extra forward pass is over the ``num_images`` shown and the one image per class;
    nothing runs per training step.
    """

    def __init__(
        self, every_n_epochs: int = 2, num_images: int = 16, classes: Sequence[int | str] = (0, 1)
    ):
        for key, value, least in (
            ("every_n_epochs", every_n_epochs, 0),
            ("num_images", num_images, 1),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise ConvlabError(
                    f"{_KEY}.{key}={value} is invalid: expected an integer >= {least}, "
                    f"e.g. {_KEY}.{key}=2"
                )
        self.every_n_epochs, self.num_images, self.classes = every_n_epochs, num_images, classes
        self.class_indices: list[int] = []

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        names = trainer.datamodule.class_names
        if not self.classes:
            raise ConvlabError(f"{_KEY}.classes is empty: name at least one class, e.g. [0, 1]")
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
        counts = pl_module.stage_metrics(split).confusion.compute()  # (true, predicted)
        sinks = picture_sinks(trainer.loggers)  # TensorBoard, MLflow, W&B: those that show images
        if not (trainer.is_global_zero and sinks and counts.sum()):
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
                shown_inputs = pl_module.preprocess(inputs)  # (classes, C, H, W), as the net sees
                convs = feature_maps(net, shown_inputs, 2) if firsts else []
        finally:
            pl_module.train(was_training)

        figures = {
            "1_predictions": prediction_grid(images[shown], predicted, labels[shown], names),
            "2_confusion_matrix": confusion_figure(counts, names),
        }
        pictures = {"3_filters/conv1": filter_grid(convs[0][0].weight)} if convs else {}
        for _, label, maps in convs:  # maps: (len(firsts), C, H, W)
            for class_index, one_maps, image in zip(firsts, maps, shown_inputs, strict=True):
                tag = names[class_index].replace("/", "-")  # "T-shirt/top" is one tag, not two
                pictures[f"4_activations/{label}/{tag}"] = feature_map_grid(one_maps, image)
        rendered = {tag: as_image(picture) for tag, picture in {**figures, **pictures}.items()}
        for sink in sinks:
            for tag, picture in rendered.items():
                sink(f"{split}/{tag}", picture, trainer.global_step)


def predict(classify: Callable[[Tensor], Tensor], images: Tensor, batch_size: int) -> Tensor:
    """The class that ``classify`` (images -> logits) picks for each image, batch by batch."""
    return torch.cat([classify(batch).argmax(1).cpu() for batch in images.split(batch_size)])


def first_of_each(labels: Tensor, classes: list[int]) -> dict[int, int]:
    """Class -> index of its first image, for the classes that the split has at all."""
    return {c: int(hits[0]) for c in classes if len(hits := (labels == c).nonzero()) > 0}


ACTIVATIONS = (nn.ReLU, nn.Sigmoid, nn.Tanh, nn.GELU, nn.LeakyReLU, nn.ELU, nn.SiLU)


def feature_maps(net: nn.Module, inputs: Tensor, count: int) -> list[tuple[nn.Conv2d, str, Tensor]]:
    """The first ``count`` conv layers in the order the forward pass runs them (which in a ResNet
    is not the order they were registered in), each with a label and what comes out of the
    activation that follows it (``conv1_sigmoid``), so a sigmoid-vs-ReLU sweep shows what the
    activation does; where no activation module follows (ResNet's functional ``F.relu``), the conv's
    own output, labelled ``conv2_output``."""
    calls: list[tuple[nn.Module, Tensor]] = []  # every conv and activation call, in order

    def keep(module: nn.Module, args, output: Tensor) -> None:
        calls.append((module, output))

    watched = [m for m in net.modules() if isinstance(m, (nn.Conv2d, *ACTIVATIONS))]
    hooks = [m.register_forward_hook(keep) for m in watched]
    try:
        net(inputs)
    finally:
        for hook in hooks:
            hook.remove()
    found: list[tuple[nn.Conv2d, str, Tensor]] = []
    for i, (module, output) in enumerate(calls):
        if not isinstance(module, nn.Conv2d) or any(module is conv for conv, _, _ in found):
            continue
        if len(found) == count:
            break
        after = next(
            (c for c in calls[i + 1 :] if isinstance(c[0], (nn.Conv2d, *ACTIVATIONS))), (None, None)
        )
        name = f"conv{len(found) + 1}"
        if isinstance(after[0], ACTIVATIONS):
            found.append((module, f"{name}_{type(after[0]).__name__.lower()}", after[1]))
        else:
            found.append((module, f"{name}_output", output))
    return found


def _class_index(wanted: int | str, names: list[str]) -> int:
    if wanted in names:
        return names.index(wanted)
    if isinstance(wanted, int) and not isinstance(wanted, bool) and 0 <= wanted < len(names):
        return wanted
    raise ConvlabError(
        f"{_KEY}.classes: {wanted!r} is not a class of this dataset; give an index "
        f"0-{len(names) - 1} or one of the names {', '.join(names)}"
    )
