"""scripts/activations.py, the book's exercise 7.6.5: a trained checkpoint's activations for
inputs unlike its training data."""

import importlib.util

import pytest
import torch

from tests.helpers import ROOT, checkpoint_of, write_idx

_SPEC = importlib.util.spec_from_file_location("activations", ROOT / "scripts" / "activations.py")
SCRIPT = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(SCRIPT)


@pytest.fixture
def test_images(tmp_path):
    images = torch.randint(0, 256, (3, 28, 28), generator=torch.Generator().manual_seed(1))
    return write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images)


def test_every_input_gets_an_answer_and_two_layers_of_activations(finished, test_images, tmp_path):
    out = tmp_path / "activations.png"
    assert (
        SCRIPT.main([str(checkpoint_of(finished)), "--images", str(test_images), "--out", str(out)])
        == 0
    )
    assert out.read_bytes().startswith(b"\x89PNG")
    found = SCRIPT.activations(checkpoint_of(finished), SCRIPT.inputs(test_images))
    assert list(found) == ["a test image", "a drawn digit", "uniform noise", "a blank image"]
    for one in found.values():
        assert 0 < one["confidence"] <= 1 and list(one["layers"]) == [
            "conv1_sigmoid",
            "conv2_sigmoid",
        ]
    # a blank image is one value everywhere: away from the zero padding, every conv1 channel is
    # constant, where noise gives each pixel its own response
    blank, noise = (
        found[k]["layers"]["conv1_sigmoid"][:, 3:-3, 3:-3]
        for k in ("a blank image", "uniform noise")
    )
    assert blank.flatten(1).std(1).max() < 1e-6 < noise.flatten(1).std(1).min()


def test_the_drawn_digit_is_white_on_black_as_mnist_draws():
    digit = SCRIPT.drawn_digit()
    assert digit.shape == (28, 28) and digit.dtype == torch.uint8
    assert digit[0].max() == 0 and digit.max() == 255  # black border, white strokes
    rows, cols = (digit > 0).nonzero().unbind(1)
    assert rows.max() - rows.min() >= 14 and cols.max() - cols.min() >= 8  # digit-sized, centred


def test_allow_names_ones_own_class_to_the_loader(finished, test_images, tmp_path, monkeypatch):
    """The script builds only what load_classifier builds; --allow passes one's own classes on."""
    from convlab.inference import load_classifier

    asked = []

    def loader(path, allow=()):
        asked.append(list(allow))
        return load_classifier(path, allow)

    monkeypatch.setattr(SCRIPT, "load_classifier", loader)
    out = str(tmp_path / "a.png")
    args = [str(checkpoint_of(finished)), "--images", str(test_images), "--out", out]
    assert SCRIPT.main([*args, "--allow", "mypkg.MyNet"]) == 0
    assert asked == [["mypkg.MyNet"]]
