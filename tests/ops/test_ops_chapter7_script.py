"""scripts/chapter7.py runs end to end, prints the book's numbers and writes its figures."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT

FIGURES = ["edge_detection.png", "learned_kernel.png", "padding_stride.png", "pooling.png"]
PRINTED = [
    "dense, 1000x1000 image -> 1000x1000 hidden image: 1e+12",  # 7.1
    "V[a, b] over all offsets: 3,996,001 ~ 4e+06",
    "total: 93,322",  # the notes' small CNN
    "[[19., 25.],\n        [37., 43.]]",  # corr2d
    "[ 0.,  1.,  0.,  0.,  0., -1.,  0.]",  # edge detection
    "[[ 5., 11.],\n        [23., 29.]]",  # strict convolution = flipped correlation
    "receptive field of z after two 2x2 layers: 9 inputs",
    # the book's recipe at torch.manual_seed(0), printed as the book prints it
    "    epoch 2, loss 8.330\n    epoch 4, loss 1.722\n    epoch 6, loss 0.422\n"
    "    epoch 8, loss 0.125\n    epoch 10, loss 0.043\n"
    "    learned kernel: tensor([[ 1.0063, -0.9662]])",
    "seeds 0-9: median epoch-10 loss 0.012, worst kernel error 0.080 (seed 3)",
    "diverged",  # the book's recipe on the 8x10 image
    "[-1.,  1.,  0.,  0.],",  # the diagonal exercise
    "200x200, 30.6% of the pixels gone",
    "[[ 0.,  3.,  8.,  4.],\n        [ 9., 19., 25., 10.],",  # padding figure
    "[[0., 8.],\n        [6., 8.]]",  # stride figure
    "comp_conv2d -> (2, 2)",
    "floor((8 - 3 + 0 + 3) / 3) = 2, floor((8 - 5 + 2 + 4) / 4) = 2 -> (2, 2)",
    "[[ 56.,  72.],\n        [104., 120.]]",  # multi-input
    "[[ 96., 128.],\n         [192., 224.]]",  # third output channel
    "operations: 53,687,091,200",
    "[[4., 5.],\n        [7., 8.]]",  # max pooling
    "[[2., 3.],\n        [5., 6.]]",  # average pooling
    "tensor([[[[10.]]]])",
    "[[[[ 0.,  3.],\n          [ 8., 11.],\n          [12., 15.]]]]",  # MXNet's pooling
    "min_pool2d(X, 2, stride=2) = -max-pool(-X):\ntensor([[[[ 0.,  2.],",
    "Total parameters: 61,706",  # LeNet
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
    assert "exercise 7: 2 blocks, multiply-adds per pixel: 8 instead of 16" in result.stdout
    assert not list(tmp_path.glob("*.png"))  # 7.4 draws no figure
