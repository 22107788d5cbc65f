"""Datasets beyond FashionMNIST: a class of your own, CIFAR-10's python batches read as data, a
folder of images; per-channel normalization, the grey-to-RGB repeat as its own key, and version 1
checkpoints (whose channels=3 meant that repeat) still loading."""

import itertools
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.datasets import CIFAR10
from torchvision.io import decode_image, read_file, write_jpeg, write_png

from convlab.checkpoint_io import META_KEY, CheckpointMeta
from convlab.config import compose_run
from convlab.data import cifar, image_folder
from convlab.data.cifar import CIFAR10DataModule
from convlab.data.datamodule import TensorDataModule
from convlab.data.image_folder import ImageFolderDataModule
from convlab.data.preprocess import Preprocess
from convlab.errors import ConvlabError
from convlab.inference import load_classifier
from convlab.train import run
from tests.helpers import TINY, printed_command, unfinished_copy

CIFAR_IMAGES = 30  # per batch: 150 training images, 30 test images
REFUSALS = itertools.count()


def refusal(tmp_path: Path, *overrides: str) -> str:
    """The one-line refusal of a tiny in-process run, which leaves its run directory unmade."""
    run_dir = tmp_path / f"refused{next(REFUSALS)}"
    with pytest.raises(ConvlabError) as refused:
        run(overrides=[*TINY, *overrides, f"hydra.run.dir={run_dir}"])
    assert "\n" not in str(refused.value)
    assert not run_dir.exists()  # refused before a logger or the run wrote anything
    return str(refused.value)


def cifar_batch(path: Path, n: int, seed: int, extra: dict | None = None) -> np.ndarray:
    """A batch as CIFAR writes one: a dict with bytes keys, pickled at protocol 2."""
    data = np.random.default_rng(seed).integers(0, 256, (n, 3 * 32 * 32), dtype=np.uint8)
    entries = {b"batch_label": path.name.encode(), b"labels": [i % 10 for i in range(n)]}
    entries |= {b"data": data, b"filenames": [b"%d.png" % i for i in range(n)], **(extra or {})}
    path.write_bytes(pickle.dumps(entries, protocol=2))
    return data


def write_cifar(root: Path) -> dict[str, np.ndarray]:
    """``root/cifar-10-batches-py/`` with CIFAR-10's file names, its classes and random images."""
    folder = root / cifar.FOLDER
    folder.mkdir(parents=True)
    names = [c.encode() for c in cifar.CLASSES]
    meta = {b"label_names": names, b"num_cases_per_batch": CIFAR_IMAGES, b"num_vis": 3072}
    (folder / cifar.META).write_bytes(pickle.dumps(meta, protocol=2))
    return {
        name: cifar_batch(folder / name, CIFAR_IMAGES, seed)
        for seed, name in enumerate([*cifar.TRAIN, cifar.TEST])
    }


def cifar_run(root: Path, run_dir: Path, *overrides: str):
    return run(
        overrides=[
            *TINY,
            "data=cifar10",
            f"data.root={root}",
            "data.val_size=30",
            "model=resnet18",
            f"hydra.run.dir={run_dir}",
            *overrides,
        ]
    )


def test_each_channel_is_normalized_by_its_own_mean_and_std():
    x = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    mean, std = [0.49, 0.48, 0.45], [0.25, 0.24, 0.26]
    out = Preprocess(8, mean, std, channels=3)(x)
    expected = (x.float() / 255 - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[
        :, None, None
    ]
    assert torch.allclose(out, expected, atol=1e-5)
    # one number for every channel is the same as a list of it, to the bit
    assert torch.equal(
        Preprocess(8, 0.3, 0.2, channels=3)(x), Preprocess(8, [0.3] * 3, [0.2] * 3, 3)(x)
    )


def test_augmented_pixels_are_each_channels_black():
    mean, std = [0.5, 0.25, 0.0], [0.25, 0.5, 1.0]
    augment = {"translate": 3, "erase_p": 1.0}
    pre = Preprocess(8, mean, std, channels=3, augment=augment).train()
    torch.manual_seed(0)
    out = pre(torch.full((8, 3, 8, 8), 255, dtype=torch.uint8))
    for c in range(3):
        white, black = (1 - mean[c]) / std[c], -mean[c] / std[c]
        assert set(out[:, c].unique().tolist()) == {black, white}


def test_channels_are_the_stored_images_and_grey_to_rgb_repeats_a_grey_one():
    grey = torch.randint(0, 256, (2, 28, 28), dtype=torch.uint8)
    out = Preprocess(28, grey_to_rgb=True)(grey)
    assert out.shape == (2, 3, 28, 28) and torch.equal(out[:, 0], out[:, 2])
    with pytest.raises(ConvlabError, match=r"takes 3-channel images, \(N, 3, H, W\)"):
        Preprocess(28, channels=3)(grey)


def test_per_channel_and_grey_to_rgb_mistakes_are_one_line_naming_the_fix(idx_dir, tmp_path):
    assert refusal(tmp_path, "data.channels=3", "data.mean=[0.49,0.48]") == (
        "data.mean=[0.49, 0.48] has 2 numbers, one per channel, and data.channels=3: give one "
        "number or 3, or set data.channels to the images' channels"
    )
    assert "set data.grey_to_rgb=false" in refusal(
        tmp_path, "data.channels=3", "data.grey_to_rgb=true"
    )
    assert "data.std=[0.2, 0, 0.2] is invalid" in refusal(
        tmp_path, "data.channels=3", "data.std=[0.2,0,0.2]"
    )
    # the old spelling of the repeat, on grey files: the stored images have one channel
    fashion = ["data=fashion_mnist", f"data.root={idx_dir}", "data.val_size=50"]
    assert refusal(tmp_path, *fashion, "data.channels=3") == (
        "data.channels=3, but IDXDataModule's training images have 1: set data.channels=1; "
        "data.grey_to_rgb=true repeats a grey channel for RGB networks"
    )


class Stripes(TensorDataModule):
    """A dataset of one's own as the README writes it: the stored size and ``load()``, nothing
    else. Class c is a bright horizontal stripe in channel c % 3 at row 2c."""

    stored_size = 20

    def load(self):
        def split(n: int, seed: int):
            g = torch.Generator().manual_seed(seed)
            y = torch.randint(0, self.num_classes, (n,), generator=g)
            x = torch.randint(0, 100, (n, 3, 20, 20), generator=g, dtype=torch.uint8)
            x[torch.arange(n), y % 3, 2 * y] = 255
            return x, y

        return split(240, 0), split(60, 1)


def test_a_class_of_ones_own_trains_with_only_load_and_a_per_channel_mean(run_dir):
    record = run(
        overrides=[
            *TINY,
            "data=synthetic",
            "data._target_=tests.data.test_own_dataset.Stripes",
            "~data.num_train",
            "~data.num_test",
            "~data.image_size",
            "data.channels=3",
            "data.resize=20",
            "data.val_size=40",
            "data.mean=[0.25,0.25,0.25]",
            "data.std=[0.3,0.3,0.3]",
            f"hydra.run.dir={run_dir}",
        ]
    )
    assert 0.0 <= record.test_acc <= 1.0
    model = load_classifier(record.paths["checkpoint"])
    assert model.preprocess.config["mean"] == [0.25, 0.25, 0.25]
    assert len(model.predict(Stripes(channels=3).load()[1][0])) == 60


def test_cifar_batches_are_read_as_written_and_train(tmp_path, run_dir):
    written = write_cifar(tmp_path / "cifar")
    dm = CIFAR10DataModule(root=str(tmp_path / "cifar"), channels=3, val_size=30)
    (train_x, train_y), (test_x, test_y) = dm.load()
    assert train_x.shape == (150, 3, 32, 32) and train_x.dtype == torch.uint8
    rows = np.concatenate([written[name] for name in cifar.TRAIN])
    assert np.array_equal(train_x.reshape(150, -1).numpy(), rows)  # R plane, G plane, B plane
    assert np.array_equal(test_x.reshape(30, -1).numpy(), written[cifar.TEST])
    assert train_y.tolist() == [i % 10 for i in range(CIFAR_IMAGES)] * 5 and len(test_y) == 30
    record = cifar_run(tmp_path / "cifar", run_dir)
    model = load_classifier(record.paths["checkpoint"])
    assert model.class_names == cifar.CLASSES
    assert model.preprocess.config["mean"] == [0.4914, 0.4822, 0.4465]
    assert set(model.predict(test_x[:4])) <= set(cifar.CLASSES)


class Call:
    """A pickled call: what ``pickle.load`` runs when it meets this object."""

    def __init__(self, function, argument: str):
        self.function, self.argument = function, argument

    def __reduce__(self):
        return self.function, (self.argument,)


@pytest.mark.parametrize(
    "call",
    [
        lambda marker: Call(os.system, f"touch {marker}"),
        lambda marker: Call(exec, f"open({str(marker)!r}, 'w').close()"),
    ],
    ids=["os.system", "exec"],
)
def test_a_cifar_batch_carrying_a_pickled_call_is_refused_unrun(call, tmp_path):
    root = tmp_path / "cifar"
    write_cifar(root)
    batch = root / cifar.FOLDER / "data_batch_3"
    proof, marker = tmp_path / "proof", tmp_path / "marker"
    cifar_batch(batch, CIFAR_IMAGES, 0, {b"x": call(proof)})
    pickle.loads(batch.read_bytes())  # the file is live code
    assert proof.is_file()
    cifar_batch(batch, CIFAR_IMAGES, 0, {b"x": call(marker)})
    message = refusal(tmp_path, "data=cifar10", f"data.root={root}")
    # as pickle writes them: os.system is posix's (nt's on Windows), builtins at protocol 2 are
    # Python 2's __builtin__
    name = f"{os.name}.system" if call(marker).function is os.system else "__builtin__.exec"
    assert message.startswith(f"refusing to read {batch}: it names {name}, which a CIFAR batch")
    assert not marker.exists()


def test_cifar_downloads_through_torchvision_with_the_official_checksum(tmp_path, monkeypatch):
    calls = []

    def download(url, root, md5=None):  # torchvision's, without the network
        calls.append((url, md5))
        write_cifar(Path(root))

    monkeypatch.setattr(cifar, "download_and_extract_archive", download)
    root = tmp_path / "cifar"
    missing = CIFAR10DataModule(root=str(root), channels=3)
    with pytest.raises(ConvlabError, match="set data.download=true to download it"):
        missing.setup()
    dm = CIFAR10DataModule(root=str(root), download=True, channels=3, val_size=30)
    dm.prepare_data()
    dm.prepare_data()  # the batches are there: nothing downloads again
    dm.setup()
    assert calls == [(CIFAR10.url, CIFAR10.tgz_md5)] and len(dm.splits["train"][1]) == 120


def test_cifar_mistakes_are_one_line_naming_the_fix(tmp_path):
    root = tmp_path / "cifar"
    write_cifar(root)
    (root / cifar.FOLDER / "test_batch").write_bytes(b"not a pickle")
    where = [tmp_path, "data=cifar10", f"data.root={root}"]
    assert "test_batch: not a CIFAR batch (UnpicklingError)" in refusal(*where)
    cifar_batch(root / cifar.FOLDER / "test_batch", CIFAR_IMAGES, 0, {b"labels": [3]})
    assert "1 labels for 30 images" in refusal(*where)
    cifar_batch(root / cifar.FOLDER / "test_batch", CIFAR_IMAGES, 0)
    assert refusal(*where, "data.channels=1", "data.mean=0.5", "data.std=0.25").startswith(
        "data.channels=1, but CIFAR10DataModule's training images have 3: set data.channels=3"
    )
    assert refusal(*where, "data.num_classes=100") == (
        "data.num_classes=100 does not match CIFAR-10, which has 10 classes; set "
        "data.num_classes=10"
    )


def write_folder(root: Path) -> dict[str, torch.Tensor]:
    """Three class folders of 8 images each, 12x10 RGB: PNG, and one JPEG in each."""
    images = {}
    g = torch.Generator().manual_seed(0)
    for c, name in enumerate(["cat", "dog", "emu"]):
        (root / name).mkdir(parents=True)
        for i in range(8):
            image = torch.randint(0, 200, (3, 12, 10), generator=g, dtype=torch.uint8)
            image[c] = 255  # each class bright in its own channel
            path = root / name / f"{i}.{'jpg' if i == 7 else 'png'}"
            (write_jpeg if i == 7 else write_png)(image, str(path))
            images[f"{name}/{path.name}"] = image
    (root / "dog" / "notes.txt").write_text("not an image, and not read")
    (root / ".ipynb_checkpoints").mkdir()  # a hidden folder: no class
    return images


def test_an_image_folder_is_decoded_once_as_uint8_and_trains(tmp_path, run_dir, capsys):
    written = write_folder(tmp_path / "images")
    folder = dict(root=str(tmp_path / "images"), num_classes=3, test_size=6, val_size=3)
    dm = ImageFolderDataModule(**folder, stored_size=[12, 10], channels=3)
    dm.setup()
    assert dm.class_names == ["cat", "dog", "emu"]
    x, test_y = dm.splits["train"][0], dm.splits["test"][1]
    assert x.dtype == torch.uint8 and x.shape == (15, 3, 12, 10) and len(test_y) == 6
    pngs = {bytes(image.numpy()) for name, image in written.items() if name.endswith(".png")}
    stored = {bytes(image.numpy()) for split in dm.splits.values() for image in split[0]}
    assert pngs < stored  # PNGs exactly as written; the JPEGs as their decoder gives them
    small = ImageFolderDataModule(**folder, stored_size=6, channels=1)
    small.setup()
    assert small.splits["test"][0].shape == (6, 1, 6, 6)
    record = run(
        overrides=[
            *TINY,
            "data=image_folder",
            f"data.root={tmp_path / 'images'}",
            "data.num_classes=3",
            "data.stored_size=16",
            "data.test_size=6",
            "data.val_size=3",
            f"hydra.run.dir={run_dir}",
        ]
    )
    model = load_classifier(record.paths["checkpoint"])
    image = decode_image(read_file(str(tmp_path / "images" / "emu" / "0.png")))
    assert model.class_names == ["cat", "dog", "emu"] and len(model.predict(image[None])) == 1
    # the printed command evaluates the checkpoint again on the same test images
    again = printed_command(capsys.readouterr().out, "evaluate again: ")
    evaluated = run(overrides=[*again, f"hydra.run.dir={tmp_path / 'again'}"])
    assert evaluated.test_acc == pytest.approx(record.test_acc, abs=1e-6)


def test_an_image_folder_beyond_the_memory_limit_is_refused_with_the_memory_needed(
    tmp_path, monkeypatch
):
    write_folder(tmp_path / "images")
    folder = ["data=image_folder", f"data.root={tmp_path / 'images'}", "data.num_classes=3"]
    folder += ["data.test_size=6", "data.val_size=3"]
    assert refusal(tmp_path, *folder, "data.max_memory_gb=1e-6") == (
        f"the 24 images in {tmp_path / 'images'} need 7.37e-05 GB of memory at 3x32x32 bytes "
        "each, over the 1e-06 GB of data.max_memory_gb=1e-06; lower data.stored_size, or raise "
        "data.max_memory_gb"
    )
    assert image_folder.available_memory() > 73_728
    monkeypatch.setattr(image_folder, "available_memory", lambda: 100_000)
    assert refusal(tmp_path, *folder).endswith(
        "need 7.37e-05 GB of memory at 3x32x32 bytes each, over the 5e-05 GB of half the memory "
        "available; lower data.stored_size, or raise data.max_memory_gb"
    )


def test_image_folder_mistakes_are_one_line_naming_the_fix(tmp_path):
    root = tmp_path / "images"
    write_folder(root)
    where = [tmp_path, "data=image_folder", "data.val_size=3"]
    folder = [*where, f"data.root={root}", "data.num_classes=3", "data.test_size=6"]
    assert refusal(*where, f"data.root={tmp_path / 'nowhere'}").startswith(
        f"data.root={tmp_path / 'nowhere'} is not a folder; point data.root at a folder"
    )
    assert refusal(*where, f"data.root={root}") == (
        f"data.num_classes=10 does not match the folders in {root}, which has 3 classes; set "
        "data.num_classes=3"
    )
    one = tmp_path / "one"
    (one / "cat").mkdir(parents=True)  # one class: no fix of data.num_classes could make it train
    assert refusal(*where, f"data.root={one}").startswith(
        f"data.root={one} holds 1 class folders; put each class's images in a folder of its own"
    )
    assert refusal(*folder, "data.test_size=21") == (
        f"data.test_size=21 and data.val_size=3 leave no training images of the 24 in {root}; "
        "lower them"
    )
    (root / "cat" / "broken.png").write_bytes(b"not a png")
    assert refusal(*folder) == (
        f"{root / 'cat' / 'broken.png'}: not an image torchvision can decode; replace it, or "
        "move it out of data.root"
    )
    (root / "cat" / "broken.png").unlink()
    (root / "fox").mkdir()
    assert refusal(*folder, "data.num_classes=4") == (
        f"{root / 'fox'} holds no PNG or JPEG images; add some, or move it out of data.root"
    )


def as_version_1(meta: dict) -> None:
    """A version 2 checkpoint's metadata edited back to version 1, where channels=3 on grey data
    repeated the grey channel and grey_to_rgb did not exist."""
    for keys in (meta["preprocess"], meta["config"]["data"]):
        keys["channels"] = 3 if keys.pop("grey_to_rgb") else keys["channels"]
    meta["version"] = 1


def test_a_version_1_checkpoint_loads_evaluates_and_resumes_as_the_repeat(idx_dir, tmp_path):
    fashion = ["data=fashion_mnist", f"data.root={idx_dir}", "data.val_size=50"]
    trained = tmp_path / "trained"
    record = run(
        overrides=[
            *TINY,
            *fashion,
            "data.grey_to_rgb=true",
            "model=lenet",
            f"hydra.run.dir={trained}",
        ]
    )
    ckpt = torch.load(trained / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt[META_KEY]["version"] == 2
    as_version_1(ckpt[META_KEY])
    assert ckpt[META_KEY]["preprocess"]["channels"] == 3
    old = tmp_path / "v1.ckpt"
    torch.save(ckpt, old)

    images = torch.randint(0, 256, (16, 28, 28), dtype=torch.uint8)  # grey, as FashionMNIST stores
    model = load_classifier(old)
    assert (model.preprocess.channels, model.preprocess.grey_to_rgb) == (1, True)
    assert model.predict(images) == load_classifier(trained / "checkpoints" / "last.ckpt").predict(
        images
    )
    evaluated = run(
        overrides=[
            *TINY,
            *fashion,
            "train=false",
            f"ckpt_path={old}",
            f"hydra.run.dir={tmp_path / 'e'}",
        ]
    )
    assert evaluated.test_acc == record.test_acc
    unfinished = unfinished_copy(trained, tmp_path / "unfinished")
    (unfinished / "checkpoints" / "last.ckpt").write_bytes(old.read_bytes())
    resumed = run(overrides=[f"resume={unfinished}", f"data.root={idx_dir}"])
    assert resumed.status == "finished" and resumed.epochs_run == 1
    # synthetic data was the one module of version 1 that stored 3 channels
    meta = ckpt[META_KEY]
    meta["config"]["data"]["_target_"] = "convlab.data.datamodule.SyntheticDataModule"
    upgraded = CheckpointMeta.from_checkpoint(ckpt, "x")
    assert (upgraded.preprocess["channels"], upgraded.preprocess["grey_to_rgb"]) == (3, False)
    assert upgraded.config["data"]["grey_to_rgb"] is False and upgraded.version == 2


def test_the_cifar_recipes_train_on_cifar_from_its_rgb_images():
    for recipe in ("resnet18_cifar_cpu", "vgg_cifar_cpu"):
        cfg = compose_run([f"experiment={recipe}"])
        assert cfg.data._target_ == "convlab.data.cifar.CIFAR10DataModule"
        assert (cfg.data.channels, cfg.data.grey_to_rgb, cfg.model.in_channels) == (3, False, 3)
        assert cfg.data.resize == 32 and cfg.trainer.precision == "bf16-mixed"
