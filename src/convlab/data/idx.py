"""Reading the IDX files of MNIST and FashionMNIST into uint8 tensors.

torchvision's ``read_sn3_pascalvincent_tensor`` reads the whole file before checking it and reports
a bad file with a bare ``assert``; this reader checks the header first, reads exactly the bytes the
header promises (so a corrupt header claiming 10**12 images cannot allocate), and names the file in
every error.
"""

import gzip
import math
from pathlib import Path

import torch

from convlab.errors import ConvlabError

# The third byte of the magic number gives the element type; MNIST and FashionMNIST use only 0x08.
_UINT8 = 0x08
_MAX_ELEMENTS = 2**30  # 20x the 60k training images; refuses headers that would exhaust memory
_CHUNK = 1 << 20


class IDXError(ConvlabError):
    """An IDX file that is missing, truncated or not an IDX file."""


def _open(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def _read_at_most(f, n: int) -> bytes:
    """Read up to n bytes in chunks: memory follows the file's real size, not its header's claim."""
    chunks, left = [], n
    while left > 0 and (chunk := f.read(min(left, _CHUNK))):
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_idx(path: str | Path, ndim: int | None = None) -> torch.Tensor:
    """Read an unsigned-byte IDX file (raw or .gz) as a uint8 tensor of the shape its header gives.

    IDX layout: 2 zero bytes, a type byte (0x08 = uint8), a byte with the number of dimensions d,
    d big-endian uint32 sizes, then the data in C order.
    """
    path = Path(path)
    fix = "re-download it or reinstall the dataset"
    try:
        with _open(path) as f:
            header = f.read(4)
            if len(header) < 4 or header[0] != 0 or header[1] != 0 or header[2] != _UINT8:
                raise IDXError(f"{path}: not an unsigned-byte IDX file (bad magic number); {fix}")
            dims = header[3]
            if dims == 0 or (ndim is not None and dims != ndim):
                want = f"{ndim}" if ndim is not None else "at least 1"
                raise IDXError(f"{path}: has {dims} dimensions, expected {want}; {fix}")
            raw_shape = f.read(4 * dims)
            if len(raw_shape) < 4 * dims:
                raise IDXError(f"{path}: truncated header; {fix}")
            shape = [int.from_bytes(raw_shape[4 * i : 4 * i + 4], "big") for i in range(dims)]
            count = math.prod(shape)
            if count > _MAX_ELEMENTS:
                raise IDXError(f"{path}: header claims shape {shape}, too large to be real; {fix}")
            data = _read_at_most(f, count + 1)  # one byte more than promised reveals garbage
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise IDXError(f"{path}: cannot be read ({e}); {fix}") from None
    if len(data) != count:
        what = "truncated" if len(data) < count else "longer than its header says"
        raise IDXError(f"{path}: {what} (header promises {count} bytes of data); {fix}")
    if count == 0:  # frombuffer refuses an empty buffer
        return torch.empty(shape, dtype=torch.uint8)
    return torch.frombuffer(bytearray(data), dtype=torch.uint8).reshape(shape)


def read_split(images: Path, labels: Path, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One split's images (N, H, W) and labels (N,), checked against each other."""
    x, y = read_idx(images, ndim=3), read_idx(labels, ndim=1)
    if len(x) != len(y):
        raise IDXError(
            f"{images} has {len(x)} images but {labels} has {len(y)} labels; "
            "the two files come from different downloads: re-download both"
        )
    if len(y) and int(y.max()) >= num_classes:
        raise IDXError(
            f"{labels}: label {int(y.max())} is out of range for {num_classes} classes; "
            "re-download it or set data.num_classes"
        )
    return x, y.long()
