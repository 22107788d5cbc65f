import gzip

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convlab.data.idx import IDXError, read_idx, read_split
from tests.conftest import idx_bytes, write_idx


@pytest.mark.parametrize("gz", [True, False])
def test_reads_what_was_written(tmp_path, gz):
    images = torch.randint(0, 256, (7, 28, 28), dtype=torch.uint8)
    path = write_idx(tmp_path / "img", images, gz=gz)
    out = read_idx(path, ndim=3)
    assert out.dtype == torch.uint8 and torch.equal(out, images)


def test_bad_magic_number(tmp_path):
    path = tmp_path / "bad"
    path.write_bytes(b"\x00\x00\x0d\x03" + bytes(100))  # 0x0d = float, not uint8
    with pytest.raises(IDXError, match="bad magic number"):
        read_idx(path)


def test_truncated_file_names_the_file(tmp_path):
    data = idx_bytes(torch.zeros(10, 28, 28))
    path = tmp_path / "short-images.gz"
    path.write_bytes(gzip.compress(data[:-100]))
    with pytest.raises(IDXError, match=r"short-images.*truncated"):
        read_idx(path)


def test_trailing_garbage(tmp_path):
    path = tmp_path / "long"
    path.write_bytes(idx_bytes(torch.zeros(3, 2, 2)) + b"xx")
    with pytest.raises(IDXError, match="longer than its header"):
        read_idx(path)


def test_absurd_header_is_refused_without_allocating(tmp_path):
    path = tmp_path / "huge"
    path.write_bytes(
        bytes([0, 0, 8, 3])
        + (10**12 // 784).to_bytes(4, "big")
        + (28).to_bytes(4, "big")
        + (28).to_bytes(4, "big")
    )
    with pytest.raises(IDXError, match="too large"):
        read_idx(path)


def test_wrong_dimensions(tmp_path):
    path = write_idx(tmp_path / "labels", torch.zeros(5))
    with pytest.raises(IDXError, match="has 1 dimensions, expected 3"):
        read_idx(path, ndim=3)


def test_counts_that_differ(tmp_path):
    images = write_idx(tmp_path / "i", torch.zeros(5, 4, 4))
    labels = write_idx(tmp_path / "l", torch.zeros(4))
    with pytest.raises(IDXError, match="5 images but .* 4 labels"):
        read_split(images, labels, num_classes=10)


def test_label_out_of_range(tmp_path):
    images = write_idx(tmp_path / "i", torch.zeros(3, 4, 4))
    labels = write_idx(tmp_path / "l", torch.tensor([0, 10, 2]))
    with pytest.raises(IDXError, match="label 10 is out of range"):
        read_split(images, labels, num_classes=10)


def test_not_gzip_despite_name(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(b"not gzip at all")
    with pytest.raises(IDXError, match="cannot be read"):
        read_idx(path)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(max_size=200), st.booleans())
def test_fuzz_random_bytes_load_or_raise_idx_error(tmp_path, blob, gz):
    path = tmp_path / ("f.gz" if gz else "f")
    path.write_bytes(gzip.compress(blob) if gz else blob)
    try:
        out = read_idx(path)
    except IDXError:
        return
    assert out.dtype == torch.uint8 and out.numel() == len(blob) - 4 - 4 * out.dim()


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=4), st.binary(max_size=64))
def test_fuzz_headers_claiming_any_shape(tmp_path, shape, body):
    path = tmp_path / "h"
    path.write_bytes(
        bytes([0, 0, 8, len(shape)]) + b"".join(s.to_bytes(4, "big") for s in shape) + body
    )
    try:
        out = read_idx(path)
    except IDXError:
        return
    assert list(out.shape) == shape
