"""Reading the IDX files of MNIST and FashionMNIST into uint8 tensors.

torchvision's ``read_sn3_pascalvincent_tensor`` reads the whole file before checking it and reports
a bad file with a bare ``assert``; this reader checks the header first, reads exactly the bytes the
header promises into one buffer (so a corrupt header claiming 10**12 images cannot allocate, and a
small .gz that unpacks to gigabytes costs no more than its header's size), and names the file in
every error.
"""

import gzip
import math
import mmap
import zlib
from pathlib import Path

import numpy as np
import torch

from convlab.errors import ConvlabError

# The third byte of the magic number gives the element type; MNIST and FashionMNIST use only 0x08.
_UINT8 = 0x08
_MAX_ELEMENTS = 2**30  # 20x the 60k training images; refuses headers that would exhaust memory
_CHUNK = 1 << 20
_GZIP_MAGIC = b"\x1f\x8b\x08"  # how every gzip member starts
_PROBE = 4096


class IDXError(ConvlabError):
    """An IDX file that is missing, truncated or not an IDX file."""


def _open(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def _read_into(f, buffer: np.ndarray) -> int:
    """Fill buffer from f and return how many bytes came. In chunks: a gzip stream's readinto goes
    through read, so one call for the whole buffer would hold a second copy of it."""
    view, filled = memoryview(buffer), 0
    while filled < len(buffer) and (n := f.readinto(view[filled : filled + _CHUNK])):
        filled += n
    return filled


def _inflates(member: bytes) -> bool:
    """Whether bytes that start like a gzip member also unpack like one (random bytes soon fail)."""
    try:
        zlib.decompressobj(wbits=31).decompress(member, _PROBE)
    except zlib.error:
        return False
    return True


def _single_member_size(path: Path, expected: int) -> int | None:
    """The unpacked size a one-member .gz file's trailer gives, where it disagrees with expected.

    A trailer (ISIZE, the size mod 2**32) gives only its own member's size, so this gives None,
    leaving the decision to the bounded read, when another member may start after the first
    (1f 8b 08 that unpacks) or when the tail can be the expected trailer followed by the zero
    padding gzip allows.
    """
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        at = m.find(_GZIP_MAGIC, 1)
        while at != -1:
            if _inflates(m[at : at + _PROBE]):
                return None
            at = m.find(_GZIP_MAGIC, at + 1)
        tail = m[-_PROBE:]  # the trailer, and any zero padding after it
    trailer = (expected % 2**32).to_bytes(4, "little")
    if len(tail) < 4 or tail.rstrip(b"\0").endswith(trailer.rstrip(b"\0")):
        return None
    return int.from_bytes(tail[-4:], "little")


def read_idx(path: str | Path, ndim: int | None = None) -> torch.Tensor:
    """Read an unsigned-byte IDX file (raw or .gz) as a uint8 tensor of the shape its header gives.

    IDX layout: 2 zero bytes, a type byte (0x08 = uint8), a byte with the number of dimensions d,
    d big-endian uint32 sizes, then the data in C order. Memory is one buffer of the header's size:
    a small .gz that unpacks to far more than its header says is refused by its gzip trailer before
    its data is unpacked, and no read goes past one byte more than the header promises.
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
            # the sizes beside a 0 count too: torch refuses a shape whose non-zero sizes'
            # product overflows, even with no element in it
            if math.prod(max(size, 1) for size in shape) > _MAX_ELEMENTS:
                raise IDXError(f"{path}: header claims shape {shape}, too large to be real; {fix}")
            expected = 4 + 4 * dims + count
            if path.suffix == ".gz" and (size := _single_member_size(path, expected)) is not None:
                raise IDXError(
                    f"{path}: {_mismatch(size < expected)} (unpacks to {size:,} bytes by its "
                    f"gzip trailer, its header implies {expected:,}); {fix}"
                )
            data = np.empty(count, dtype=np.uint8)  # pages are taken as the data fills them
            got = _read_into(f, data)
            longer = got == count and f.read(1) != b""  # one byte more than promised: garbage
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise IDXError(f"{path}: cannot be read ({e}); {fix}") from None
    if got < count or longer:
        raise IDXError(
            f"{path}: {_mismatch(got < count)} (header promises {count:,} bytes of data); {fix}"
        )
    return torch.from_numpy(data).reshape(shape)


def _mismatch(shorter: bool) -> str:
    return "truncated: shorter than its header says" if shorter else "longer than its header says"


def read_split(images: Path, labels: Path, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One split's images (N, H, W) and labels (N,), checked against each other."""
    x, y = read_idx(images, ndim=3), read_idx(labels, ndim=1)
    if len(x) == 0 or 0 in x.shape[1:]:  # caught here, not as a crash in training or testing
        raise IDXError(
            f"{images}: holds no images (its header gives shape {list(x.shape)}); "
            "re-download it or reinstall the dataset"
        )
    if len(x) != len(y):
        raise IDXError(
            f"{images} has {len(x)} images but {labels} has {len(y)} labels; "
            "the two files come from different downloads: re-download both"
        )
    if int(y.max()) >= num_classes:
        raise IDXError(
            f"{labels}: label {int(y.max())} is out of range for {num_classes} classes; "
            "re-download it or set data.num_classes"
        )
    return x, y.long()
