import pytest
import torch
import torch.nn.functional as F

from convlab.data.batches import TensorBatches
from convlab.data.datamodule import IDXDataModule, SyntheticDataModule
from convlab.data.preprocess import Preprocess
from convlab.errors import ConvlabError


def make(root, **kw):
    dm = IDXDataModule(root=str(root), system_dir=None, val_size=50, **kw)
    dm.setup()
    return dm


def test_splits_are_disjoint_and_complete(idx_dir):
    dm = make(idx_dir)
    (xt, yt), (xv, _), (xs, _) = dm.splits["train"], dm.splits["val"], dm.splits["test"]
    assert (len(xt), len(xv), len(xs)) == (250, 50, 50)
    assert xt.dtype == torch.uint8 and xt.shape[1:] == (28, 28) and yt.dtype == torch.int64
    # every training image lands in exactly one of train and val
    rows = {bytes(x.numpy()) for x in torch.cat([xt, xv])}
    assert len(rows) == 300


def test_val_split_depends_on_split_seed_not_training_seed(idx_dir):
    a, b, c = make(idx_dir, seed=1), make(idx_dir, seed=2), make(idx_dir, split_seed=5)
    assert torch.equal(a.splits["val"][0], b.splits["val"][0])
    assert not torch.equal(a.splits["val"][0], c.splits["val"][0])


def test_missing_data_names_both_fixes(tmp_path):
    dm = IDXDataModule(root=str(tmp_path / "nowhere"), system_dir=None)
    with pytest.raises(ConvlabError, match="data.download=true.*dataset-fashion-mnist"):
        dm.setup()


def test_val_size_out_of_range(idx_dir):
    with pytest.raises(ConvlabError, match="data.val_size=300"):
        IDXDataModule(root=str(idx_dir), val_size=300).setup()


def test_finds_files_in_system_dir(idx_dir, tmp_path):
    dm = IDXDataModule(root=str(tmp_path / "empty"), system_dir=str(idx_dir), val_size=10)
    dm.setup()
    assert len(dm.splits["test"][0]) == 50


@pytest.mark.parametrize("resize", [28, 96, [32, 48], 14, [20, 40]])  # same, up, down
def test_preprocess_resizes_and_normalizes_batches(resize):
    x = torch.randint(0, 256, (4, 28, 28), dtype=torch.uint8)
    out = Preprocess(resize, mean=0.5, std=0.25)(x)
    size = (resize, resize) if isinstance(resize, int) else tuple(resize)
    assert out.shape == (4, 1, *size) and out.dtype == torch.float32
    ref = F.interpolate(x[:, None].float() / 255, size=size, mode="bilinear", antialias=True)
    # convlab normalizes before resizing: equal to normalizing after, as bilinear weights sum to 1
    assert torch.allclose(out, (ref - 0.5) / 0.25, atol=1e-5)


def test_preprocess_repeats_grey_for_rgb_networks():
    out = Preprocess(28, grey_to_rgb=True)(torch.zeros(2, 28, 28, dtype=torch.uint8))
    assert out.shape == (2, 3, 28, 28)


def test_augmentation_only_in_training_mode_and_seeded():
    pre = Preprocess(28, augment={"flip": True, "translate": 3, "erase_p": 0.5})
    x = torch.randint(0, 256, (16, 28, 28), dtype=torch.uint8)
    assert torch.equal(pre.eval()(x), Preprocess(28)(x))
    pre.train()
    torch.manual_seed(0)
    a = pre(x)
    torch.manual_seed(0)
    assert torch.equal(a, pre(x)) and not torch.equal(a, pre.eval()(x))


def test_augmented_pixels_are_black_after_normalization():
    # normalizing comes before resizing and augmenting, so "black" is (0 - mean) / std, not 0
    pre = Preprocess(28, mean=0.5, std=0.25, augment={"translate": 3, "erase_p": 1.0}).train()
    torch.manual_seed(0)
    out = pre(torch.full((8, 28, 28), 255, dtype=torch.uint8))
    white, black = (1 - 0.5) / 0.25, (0 - 0.5) / 0.25
    assert set(out.unique().tolist()) == {black, white}


def test_translation_moves_pixels_without_changing_them():
    from convlab.data.preprocess import Augment

    x = torch.zeros(1, 1, 8, 8)
    x[0, 0, 4, 4] = 1.0
    torch.manual_seed(3)
    out = Augment(translate=2)(x)
    assert out.sum() == 1.0 and out.max() == 1.0  # the bright pixel moved by at most 2 rows/cols
    r, c = (out[0, 0] == 1).nonzero()[0].tolist()
    assert abs(r - 4) <= 2 and abs(c - 4) <= 2


def test_batches_cover_each_sample_once_per_epoch_and_order_follows_seed_and_epoch():
    x, y = torch.arange(103)[:, None], torch.arange(103)
    epoch = [0]
    b = TensorBatches(x, y, batch_size=10, shuffle=True, seed=1, epoch=lambda: epoch[0])
    first = torch.cat([lbl for _, lbl in b])
    assert sorted(first.tolist()) == list(range(103)) and len(b) == 11
    assert torch.equal(first, torch.cat([lbl for _, lbl in b]))  # same epoch, same order
    epoch[0] = 1
    assert not torch.equal(first, torch.cat([lbl for _, lbl in b]))


@pytest.mark.parametrize("shuffle", [True, False])
def test_ddp_shards_are_disjoint_and_equal_length_for_training(shuffle):
    x, y = torch.arange(103)[:, None], torch.arange(103)
    shards = [
        torch.cat([lbl for _, lbl in TensorBatches(x, y, 8, shuffle=shuffle, rank=r, world_size=2)])
        for r in range(2)
    ]
    seen = torch.cat(shards).tolist()
    assert len(seen) == len(set(seen))  # no sample twice
    if shuffle:  # ranks step together: equal shards, at most world_size-1 samples dropped
        assert len(shards[0]) == len(shards[1]) == 51
    else:  # evaluation keeps every sample
        assert sorted(seen) == list(range(103))


def test_synthetic_rgb():
    dm = SyntheticDataModule(channels=3, num_train=100, num_test=20, val_size=10)
    dm.setup()
    assert dm.splits["train"][0].shape == (90, 3, 28, 28)


def test_the_same_module_serves_mnist(idx_dir):
    dm = make(idx_dir, name="MNIST")
    assert dm.class_names[0] == "0 - zero" and len(dm.splits["test"][0]) == 50


def test_unknown_dataset_name(idx_dir):
    with pytest.raises(ConvlabError, match="data.name=Nope is not an IDX dataset"):
        make(idx_dir, name="Nope")
