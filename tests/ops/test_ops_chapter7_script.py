"""scripts/chapter7.py runs end to end, prints the book's numbers and writes its figures."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIGURES = ["edge_detection.png", "learned_kernel.png", "padding_stride.png", "pooling.png"]
PRINTED = [
    "[[19., 25.],\n        [37., 43.]]",  # corr2d
    "[ 0.,  1.,  0.,  0.,  0., -1.,  0.]",  # edge detection
    "epoch 10, loss",
    "diverged",  # the book's recipe on the 8x10 image
    "comp_conv2d -> (2, 2)",
    "[[ 56.,  72.],\n        [104., 120.]]",  # multi-input
    "[[ 96., 128.],\n         [192., 224.]]",  # third output channel
    "[[4., 5.],\n        [7., 8.]]",  # max pooling
    "[[2., 3.],\n        [5., 6.]]",  # average pooling
    "tensor([[[[10.]]]])",
]


@pytest.mark.slow
def test_tour_prints_the_numbers_and_writes_the_figures(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "chapter7.py"), "--out", str(tmp_path / "figs")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=True,
    )
    for text in PRINTED:
        assert text in result.stdout, text
    for name in FIGURES:
        assert (tmp_path / "figs" / name).read_bytes().startswith(b"\x89PNG"), name


@pytest.mark.slow
def test_sections_can_be_picked(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    script = str(ROOT / "scripts" / "chapter7.py")
    result = subprocess.run(
        [sys.executable, script, "--sections", "7.4", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    assert "=== 7.4 ===" in result.stdout and "=== 7.2 ===" not in result.stdout
    assert not list(tmp_path.glob("*.png"))  # 7.4 draws no figure
