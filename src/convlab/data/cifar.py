"""CIFAR-10 from its python batches, read as data: a pickle that names any callable but numpy's
array reconstruction (and the encoder protocol 2 writes bytes with) is refused before it runs.

CIFAR ships its batches as pickles, and ``pickle.load`` calls whatever a file names, so a batch
from anywhere would be code. torchvision's CIFAR10 guards ``pickle.load`` with an MD5 of each
official file, which rules out every other file, however harmless; convlab reads any batch in
CIFAR's format with an unpickler whose only globals are numpy's ndarray, dtype and array
reconstruction, and the latin-1 encoder that Python 3 writes bytes with at pickle protocol 2.
Everything else a pickle builds without a global is a dict, list, tuple, bytes, str or number.
"""

import pickle
from pathlib import Path

import numpy as np
import torch
from torchvision.datasets.utils import download_and_extract_archive

from convlab.data.datamodule import Split, TensorDataModule
from convlab.errors import ConvlabError

FOLDER = "cifar-10-batches-py"
TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
TEST = "test_batch"
META = "batches.meta"
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
MD5 = "c58f30108f718f92721af3b95e74349a"  # of the archive, as published with it
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
SIDE = 32  # 32x32 RGB images, stored as rows of 3 * 32 * 32 bytes: the red plane, green, blue
FIX = "delete it and set data.download=true to fetch the official archive again"


def _latin1(text: str, encoding: str) -> bytes:
    """``_codecs.encode`` as Python 3 pickles bytes at protocol 2, with no other codec."""
    if not isinstance(text, str) or encoding != "latin1":
        raise _Refused(f"_codecs.encode with {encoding!r}")
    return text.encode("latin1")


_RECONSTRUCT = np.empty(0).__reduce__()[0]  # numpy's own, wherever this numpy version keeps it
_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,  # numpy 1 (and CIFAR's own files)
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,  # numpy 2
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1,
}


class _Refused(pickle.UnpicklingError):
    """A global a CIFAR batch never names."""


class _DataOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _GLOBALS:
            raise _Refused(f"{module}.{name}")
        return _GLOBALS[module, name]


def unpickle(path: Path) -> dict:
    """A CIFAR pickle's dict, its keys bytes as CIFAR wrote them (Python 2 strings)."""
    try:
        with open(path, "rb") as f:
            entries = _DataOnly(f, encoding="bytes").load()
    except _Refused as e:
        raise ConvlabError(
            f"refusing to read {path}: it names {e}, which a CIFAR batch never holds (a pickled "
            f"call could run code); {FIX}"
        ) from None
    except OSError as e:
        raise ConvlabError(f"{path}: cannot be read ({e.strerror or e}); {FIX}") from None
    except Exception as e:  # whatever else a corrupt pickle raises: the file's fault, not ours
        raise ConvlabError(f"{path}: not a CIFAR batch ({type(e).__name__}); {FIX}") from None
    if not isinstance(entries, dict):
        raise ConvlabError(f"{path}: not a CIFAR batch (a {type(entries).__name__}); {FIX}")
    return entries


def read_batch(path: Path) -> Split:
    """One batch's images (N, 3, 32, 32) uint8 and labels (N,) int64, checked."""
    entries = unpickle(path)
    data, labels = entries.get(b"data"), entries.get(b"labels")
    row = 3 * SIDE * SIDE
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.shape[1:] != (row,):
        raise ConvlabError(
            f"{path}: its b'data' is not a uint8 array of rows of {row} bytes; {FIX}"
        )
    if not (isinstance(labels, list) and all(type(y) is int for y in labels)):
        raise ConvlabError(f"{path}: its b'labels' is not a list of integers; {FIX}")
    if len(labels) != len(data) or not all(0 <= y < len(CLASSES) for y in labels):
        raise ConvlabError(
            f"{path}: {len(labels)} labels for {len(data)} images, or a label outside "
            f"[0, {len(CLASSES)}); {FIX}"
        )
    return torch.from_numpy(data).reshape(-1, 3, SIDE, SIDE), torch.tensor(labels)


def read_cifar10(folder: Path) -> tuple[Split, Split]:
    """The training split (the five data batches) and the test split, after checking that the
    folder's batches.meta names CIFAR-10's classes."""
    if unpickle(folder / META).get(b"label_names") != [name.encode() for name in CLASSES]:
        raise ConvlabError(
            f"{folder / META} does not name CIFAR-10's ten classes; point data.root at the "
            f"folder that holds CIFAR-10's {FOLDER}/"
        )
    return _joined(folder, TRAIN), _joined(folder, [TEST])


def _joined(folder: Path, names: list[str]) -> Split:
    batches = [read_batch(folder / name) for name in names]
    return torch.cat([x for x, _ in batches]), torch.cat([y for _, y in batches])


class CIFAR10DataModule(TensorDataModule):
    """CIFAR-10: 50,000 training and 10,000 test images, 32x32 RGB, in ten classes.

    Reads ``<root>/cifar-10-batches-py/`` (as the official archive unpacks) by the restricted
    unpickler above; with ``download`` true and the batches missing, torchvision downloads the
    archive, checks its MD5 and unpacks it there first.
    """

    stored_size = SIDE

    def __init__(self, root: str, download: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.root, self.download = Path(root), download
        self.check_num_classes("CIFAR-10")

    @property
    def class_names(self) -> list[str]:
        return list(CLASSES)

    def _missing(self) -> list[str]:
        names = [*TRAIN, TEST, META]
        return [name for name in names if not (self.root / FOLDER / name).is_file()]

    def prepare_data(self) -> None:
        if self._missing() and self.download:
            try:
                download_and_extract_archive(URL, str(self.root), md5=MD5)
            except (OSError, RuntimeError) as e:
                raise ConvlabError(f"downloading CIFAR-10 into {self.root} failed: {e}") from None

    def load(self) -> tuple[Split, Split]:
        if missing := self._missing():
            raise ConvlabError(
                f"CIFAR-10 not found ({', '.join(missing)} missing in {self.root / FOLDER}): set "
                f"data.download=true to download it, or point data.root at the folder that holds "
                f"{FOLDER}/"
            )
        return read_cifar10(self.root / FOLDER)
