"""Your own images: one folder per class of PNG or JPEG files, decoded once into uint8 tensors."""

import os
from pathlib import Path

import torch
from torchvision.io import ImageReadMode, decode_image, read_file
from torchvision.transforms.v2.functional import resize

from convlab.data.datamodule import Split, TensorDataModule
from convlab.errors import ConvlabError
from convlab.sizes import pair

EXTENSIONS = (".png", ".jpg", ".jpeg")


def available_memory() -> int:
    """Bytes a new allocation can have: Linux's MemAvailable (free memory and the cache it can
    drop); elsewhere, the machine's whole memory."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def _gb(size: float) -> str:
    return f"{size / 1e9:.3g} GB"


def decoded(path: Path, mode: ImageReadMode, size: tuple[int, int]) -> torch.Tensor:
    """One image file as uint8 (C, *size): resized (bilinear, antialiased) where it differs."""
    try:
        image = decode_image(read_file(str(path)), mode=mode)
    except (RuntimeError, ValueError):
        raise ConvlabError(
            f"{path}: not an image torchvision can decode; replace it, or move it out of data.root"
        ) from None
    return image if tuple(image.shape[-2:]) == size else resize(image, list(size), antialias=True)


class ImageFolderDataModule(TensorDataModule):
    """The images under ``root``, one folder per class, named after it: PNG or JPEG, decoded with
    torchvision as RGB (``channels=3``) or grey (``channels=1``), resized once to
    ``stored_size`` and held in memory as uint8; ``test_size`` of them are held out for the test
    by ``split_seed``, then ``val_size`` of the rest for validation.

    The memory the images take is worked out before any is decoded, and refused above
    ``max_memory_gb`` (None: half the memory available, as making the splits copies the training
    images once).
    """

    def __init__(
        self,
        root: str | None = None,
        stored_size: int | list[int] = 32,
        test_size: int = 1000,
        max_memory_gb: float | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not root or not Path(root).is_dir():
            raise ConvlabError(
                f"data.root={root} is not a folder; point data.root at a folder that holds one "
                "folder of images per class"
            )
        self.root, self.stored_size = Path(root), pair(stored_size)
        self.test_size, self.max_memory_gb = test_size, max_memory_gb
        # hidden folders (.ipynb_checkpoints, .git) are no classes
        self.folders = sorted(
            p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")
        )
        if len(self.folders) < 2:  # a classifier needs two classes to tell apart
            raise ConvlabError(
                f"data.root={root} holds {len(self.folders)} class folders; put each class's "
                "images in a folder of its own, named after the class, at least two classes"
            )
        self.check_num_classes(f"the folders in {root}")

    @property
    def class_names(self) -> list[str]:
        return [folder.name for folder in self.folders]

    def _files(self) -> list[tuple[Path, int]]:
        """Every image file with its class's index, in a fixed order."""
        files = []
        for label, folder in enumerate(self.folders):
            images = sorted(p for p in folder.iterdir() if p.suffix.lower() in EXTENSIONS)
            if not images:
                raise ConvlabError(
                    f"{folder} holds no PNG or JPEG images; add some, or move it out of data.root"
                )
            files += [(path, label) for path in images]
        return files

    def _check_memory(self, n: int) -> None:
        (h, w), c = self.stored_size, self.preprocess.channels
        need = n * c * h * w
        if self.max_memory_gb is None:
            limit, which = available_memory() / 2, "half the memory available"
        else:
            limit, which = self.max_memory_gb * 1e9, f"data.max_memory_gb={self.max_memory_gb}"
        if need > limit:
            raise ConvlabError(
                f"the {n:,} images in {self.root} need {_gb(need)} of memory at {c}x{h}x{w} "
                f"bytes each, over the {_gb(limit)} of {which}; lower data.stored_size, or raise "
                "data.max_memory_gb"
            )

    def load(self) -> tuple[Split, Split]:
        files = self._files()
        n = len(files)
        if self.test_size + self.val_size >= n:  # now, not once every image is decoded
            raise ConvlabError(
                f"data.test_size={self.test_size} and data.val_size={self.val_size} leave no "
                f"training images of the {n} in {self.root}; lower them"
            )
        self._check_memory(n)
        mode = ImageReadMode.GRAY if self.preprocess.channels == 1 else ImageReadMode.RGB
        # decoded in the split's order, into one tensor: the test and training parts are views
        order = torch.randperm(n, generator=torch.Generator().manual_seed(self.split_seed))
        images = torch.empty((n, self.preprocess.channels, *self.stored_size), dtype=torch.uint8)
        for i, j in enumerate(order.tolist()):
            images[i] = decoded(files[j][0], mode, self.stored_size)
        labels = torch.tensor([files[j][1] for j in order.tolist()])
        t = self.test_size
        return (images[t:], labels[t:]), (images[:t], labels[:t])
