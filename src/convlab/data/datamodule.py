"""DataModules that hold whole datasets as uint8 tensors and serve them as TensorBatches."""

from pathlib import Path

import lightning as L
import torch
import torchvision

from convlab.data.batches import TensorBatches
from convlab.data.idx import read_split
from convlab.data.preprocess import Preprocess
from convlab.errors import ConvlabError

# MNIST-format datasets, with the Debian package that installs each (None: none known)
IDX_DATASETS = {"FashionMNIST": "dataset-fashion-mnist", "MNIST": None}
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


class TensorDataModule(L.LightningDataModule):
    """Train/val/test splits of an in-memory image dataset; subclasses only load the tensors.

    The validation images are held out of the training split by ``split_seed``, independent of the
    training ``seed``, so every run of a sweep validates on the same images. ``batch_size`` is per
    device: under DDP the global batch is batch_size * devices * num_nodes.
    """

    def __init__(
        self,
        resize: int | list[int] = 28,
        batch_size: int = 128,
        eval_batch_size: int | None = None,
        val_size: int = 5000,
        split_seed: int = 0,
        seed: int = 0,
        channels: int = 1,
        num_classes: int = 10,
        mean: float = 0.0,
        std: float = 1.0,
        augment: dict | None = None,
        pin_memory: bool = True,
    ):
        super().__init__()
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size or batch_size
        self.val_size, self.split_seed, self.seed = val_size, split_seed, seed
        self.num_classes, self.pin_memory = num_classes, pin_memory
        self.preprocess = Preprocess(resize, mean, std, channels, augment)
        self.splits: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    stored_shape: tuple[int, ...] = (28, 28)  # one stored image, before Preprocess

    def load(self) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
        """(train images, train labels), (test images, test labels) as uint8 / int64 tensors."""
        raise NotImplementedError

    @property
    def class_names(self) -> list[str]:
        return [str(i) for i in range(self.num_classes)]

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        (x, y), test = self.load()
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
        if self.num_classes != len(self.class_names):  # now, not after training
            raise ConvlabError(
                f"data.num_classes={self.num_classes} does not match {name}, which has "
                f"{len(self.class_names)} classes; set data.num_classes={len(self.class_names)}"
            )

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
    """A small generated dataset shaped like FashionMNIST, for tests and machines without the data.

    Each class is a brighter square at its own place on a noisy background.
    """

    def __init__(self, num_train: int = 1200, num_test: int = 200, image_size: int = 28, **kwargs):
        super().__init__(**kwargs)
        self.num_train, self.num_test, self.image_size = num_train, num_test, image_size
        channels = self.preprocess.channels
        self.stored_shape = (
            (image_size, image_size) if channels == 1 else (channels, image_size, image_size)
        )

    def _make(self, n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
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
