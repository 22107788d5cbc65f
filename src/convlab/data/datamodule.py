"""DataModules that hold whole datasets as uint8 tensors and serve them as TensorBatches."""

from pathlib import Path

import lightning as L
import torch
import torchvision

from convlab.data.batches import TensorBatches
from convlab.data.idx import read_split
from convlab.data.preprocess import Preprocess
from convlab.errors import ConvlabError
from convlab.sizes import pair

# MNIST-format datasets, with the Debian package that installs each (None: none known)
IDX_DATASETS = {"FashionMNIST": "dataset-fashion-mnist", "MNIST": None}
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

Split = tuple[torch.Tensor, torch.Tensor]  # uint8 images, int64 labels


class TensorDataModule(L.LightningDataModule):
    """The base of every dataset: a subclass's ``load()`` gives the whole dataset as tensors.

    Images stay uint8 in host memory, (N, H, W) when grey or (N, C, H, W); a batch is sliced out,
    moved to the device and resized, augmented and normalized there (``Preprocess``), so a dataset
    is read once and an epoch costs no per-sample work. A subclass sets ``stored_size`` and
    implements ``load()``, and ``class_names`` where it knows them.

    ``channels`` is the stored images' (1 or 3); ``grey_to_rgb`` repeats a grey channel for
    networks that expect RGB; ``mean`` and ``std`` are one number or one per channel. The
    validation images are held out of the training split by ``split_seed``, independent of the
    training ``seed``, so every run of a sweep validates on the same images. ``batch_size`` is per
    device: under DDP the global batch is batch_size * devices * num_nodes.
    """

    stored_size: int | tuple[int, int] = 28  # one stored image's side, or (h, w)

    def __init__(
        self,
        resize: int | list[int] = 28,
        batch_size: int = 128,
        eval_batch_size: int | None = None,
        val_size: int = 5000,
        split_seed: int = 0,
        seed: int = 0,
        channels: int = 1,
        grey_to_rgb: bool = False,
        num_classes: int = 10,
        mean: float | list[float] = 0.0,
        std: float | list[float] = 1.0,
        augment: dict | None = None,
        pin_memory: bool = True,
    ):
        super().__init__()
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size or batch_size
        self.val_size, self.split_seed, self.seed = val_size, split_seed, seed
        self.num_classes, self.pin_memory = num_classes, pin_memory
        self.preprocess = Preprocess(
            resize, mean, std, channels=channels, grey_to_rgb=grey_to_rgb, augment=augment
        )
        self.splits: dict[str, Split] = {}

    @property
    def stored_shape(self) -> tuple[int, ...]:
        """One stored image's shape: a batch of zeros of it shows each layer's shapes in Lightning's
        model summary before anything is loaded."""
        channels = self.preprocess.channels
        return (*((channels,) if channels > 1 else ()), *pair(self.stored_size))

    def load(self) -> tuple[Split, Split]:
        """(train images, train labels), (test images, test labels): uint8 and int64 tensors."""
        raise NotImplementedError

    @property
    def class_names(self) -> list[str]:
        return [str(i) for i in range(self.num_classes)]

    def check_num_classes(self, dataset: str) -> None:
        """data.num_classes must be the dataset's own count; checked when built, not after
        training."""
        if self.num_classes != len(self.class_names):
            raise ConvlabError(
                f"data.num_classes={self.num_classes} does not match {dataset}, which has "
                f"{len(self.class_names)} classes; set data.num_classes={len(self.class_names)}"
            )

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        (x, y), test = self.load()
        for split, (images, labels) in (("training", (x, y)), ("test", test)):
            self._check(split, images, labels)
        if not 0 <= self.val_size < len(y):
            raise ConvlabError(
                f"data.val_size={self.val_size} must be in [0, {len(y)}): there are {len(y)} images"
            )
        order = torch.randperm(len(y), generator=torch.Generator().manual_seed(self.split_seed))
        train_idx, val_idx = order[self.val_size :], order[: self.val_size]
        self.splits = {
            "train": (x[train_idx], y[train_idx]),
            "val": (x[val_idx], y[val_idx]),
            "test": test,
        }

    def _check(self, split: str, images: torch.Tensor, labels: torch.Tensor) -> None:
        """What ``load()`` gave, against the config: a mismatch is named now, not as a shape error
        deep in the network."""
        name, channels = type(self).__name__, self.preprocess.channels
        shapes = images.dim() in (3, 4) and labels.shape == images.shape[:1]
        if images.dtype != torch.uint8 or labels.dtype != torch.int64 or not shapes:
            raise ConvlabError(
                f"{name}.load() gave {split} images {images.dtype} {tuple(images.shape)} and "
                f"labels {labels.dtype} {tuple(labels.shape)}; convlab takes uint8 (N, H, W) or "
                "(N, C, H, W) images and int64 (N,) labels"
            )
        stored = 1 if images.dim() == 3 else images.shape[1]
        if stored != channels:
            rgb = "; data.grey_to_rgb=true repeats a grey channel for RGB networks" * (stored == 1)
            raise ConvlabError(
                f"data.channels={channels}, but {name}'s {split} images have {stored}: set "
                f"data.channels={stored}{rgb}"
            )
        if len(labels) and not 0 <= int(labels.min()) <= int(labels.max()) < self.num_classes:
            raise ConvlabError(
                f"{name}'s {split} labels run from {int(labels.min())} to {int(labels.max())}, "
                f"outside [0, {self.num_classes}); set data.num_classes to the number of classes"
            )

    def _batches(self, split: str, train: bool = False) -> TensorBatches:
        trainer = self.trainer
        pin = (
            self.pin_memory and trainer is not None and trainer.strategy.root_device.type == "cuda"
        )
        return TensorBatches(
            *self.splits[split],
            batch_size=self.batch_size if train else self.eval_batch_size,
            # overfit_batches must see the same batches every epoch; Lightning cannot turn off the
            # shuffling of a loader without a sampler, so it is done here
            shuffle=train and not (trainer is not None and trainer.overfit_batches),
            seed=self.seed,
            epoch=lambda: trainer.current_epoch if trainer is not None else 0,
            rank=trainer.global_rank if trainer is not None else 0,
            world_size=trainer.world_size if trainer is not None else 1,
            pin_memory=pin,
        )

    def train_dataloader(self) -> TensorBatches:
        return self._batches("train", train=True)

    def val_dataloader(self) -> TensorBatches:
        return self._batches("val")

    def test_dataloader(self) -> TensorBatches:
        return self._batches("test")


class IDXDataModule(TensorDataModule):
    """MNIST-format datasets (FashionMNIST, MNIST) read from their four official IDX files.

    Looks in ``root``, then in torchvision's download folder under it, then in ``system_dir``
    (where Debian's dataset package installs the files); downloads with torchvision only when
    ``download`` is true.
    """

    def __init__(
        self,
        root: str,
        name: str = "FashionMNIST",
        system_dir: str | None = None,
        download: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if name not in IDX_DATASETS:
            raise ConvlabError(
                f"data.name={name} is not an IDX dataset; choose one of {', '.join(IDX_DATASETS)}"
            )
        self.root, self.name, self.download = Path(root), name, download
        self.system_dir = Path(system_dir) if system_dir else None
        self.check_num_classes(name)

    @property
    def class_names(self) -> list[str]:
        return list(getattr(torchvision.datasets, self.name).classes)

    def _candidates(self) -> list[Path]:
        dirs = [self.root, self.root / self.name / "raw"]
        return dirs + ([self.system_dir] if self.system_dir else [])

    def _find(self, stem: str) -> Path | None:
        for d in self._candidates():
            for path in (d / stem, d / f"{stem}.gz"):
                if path.is_file():
                    return path
        return None

    def _missing(self) -> list[str]:
        return [s for pair in IDX_FILES.values() for s in pair if self._find(s) is None]

    def prepare_data(self) -> None:
        if self._missing() and self.download:
            try:
                getattr(torchvision.datasets, self.name)(str(self.root), download=True)
            except (OSError, RuntimeError) as e:
                raise ConvlabError(
                    f"downloading {self.name} into {self.root} failed: {e}"
                ) from None

    def load(self):
        if missing := self._missing():
            where = ", ".join(str(d) for d in self._candidates())
            package = IDX_DATASETS[self.name]
            apt = f", install Debian's package (apt-get install {package})" if package else ""
            raise ConvlabError(
                f"{self.name} not found ({', '.join(missing)} missing in {where}): set "
                f"data.download=true to download it{apt}, or point data.root at the IDX files"
            )
        return tuple(
            read_split(self._find(img), self._find(lbl), self.num_classes)
            for img, lbl in IDX_FILES.values()
        )


class SyntheticDataModule(TensorDataModule):
    """A small generated dataset, grey (as FashionMNIST) or RGB with ``channels=3`` (as CIFAR), for
    tests, benchmarks and machines without the data.

    Each class is a brighter square at its own place on a noisy background.
    """

    def __init__(self, num_train: int = 1200, num_test: int = 200, image_size: int = 28, **kwargs):
        super().__init__(**kwargs)
        self.num_train, self.num_test = num_train, num_test
        self.image_size = self.stored_size = image_size

    def _make(self, n: int, g: torch.Generator) -> Split:
        s, k = self.image_size, self.num_classes
        y = torch.randint(0, k, (n,), generator=g)
        # a faint square on strong noise: learnable, but not in a handful of steps, so tests that
        # compare accuracies compare something
        channels = self.preprocess.channels
        x = torch.randint(0, 200, (n, channels, s, s), generator=g, dtype=torch.uint8)
        side = max(s // 4, 1)
        # class c puts its square at a point of a regular grid over the image
        per_row = int(k**0.5 + 0.999)
        top = (y // per_row) * (s - side) // max(per_row - 1, 1)
        left = (y % per_row) * (s - side) // max(per_row - 1, 1)
        rows, cols = torch.arange(s), torch.arange(s)
        in_rows = (rows >= top[:, None]) & (rows < (top + side)[:, None])  # (N, S)
        in_cols = (cols >= left[:, None]) & (cols < (left + side)[:, None])  # (N, S)
        square = (in_rows[:, :, None] & in_cols[:, None, :])[:, None]  # (N, 1, S, S)
        x = torch.where(square, x + 55, x)
        return (x[:, 0] if channels == 1 else x), y

    def load(self):
        g = torch.Generator().manual_seed(self.split_seed)
        return self._make(self.num_train, g), self._make(self.num_test, g)
