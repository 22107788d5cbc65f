"""A search's rerun reads the interrupted trial's checkpoints and nothing else: no link is
followed, its files are never changed (the end-to-end run: tests/test_optuna_stops.py)."""

import os

import pytest

from convlab.errors import ConvlabError
from convlab.trial_rerun import _regular, copy_checkpoints


def interrupted(tmp_path):
    source = tmp_path / "sweep" / "trial_0"
    (source / "checkpoints").mkdir(parents=True)
    (source / "checkpoints" / "last.ckpt").write_bytes(b"last")
    (source / "checkpoints" / "epoch=0.ckpt").write_bytes(b"best")
    (source / "checkpoints" / ".last.ckpt.123-ab.tmp").write_bytes(b"half written")
    (source / "metrics.json").write_text("{}")
    return source


def test_the_checkpoints_are_copied_and_nothing_else(tmp_path):
    source, rerun = interrupted(tmp_path), tmp_path / "sweep" / "trial_1"
    rerun.mkdir()
    copy_checkpoints(source, rerun)
    copied = {p.name: p.read_bytes() for p in (rerun / "checkpoints").iterdir()}
    assert copied == {"last.ckpt": b"last", "epoch=0.ckpt": b"best"}
    assert sorted(p.name for p in rerun.iterdir()) == ["checkpoints"]


def test_a_link_among_the_checkpoints_is_refused_and_never_read(tmp_path):
    source, rerun = interrupted(tmp_path), tmp_path / "sweep" / "trial_1"
    rerun.mkdir()
    secret = tmp_path / "secret"
    secret.write_text("not a checkpoint")
    os.symlink(secret, source / "checkpoints" / "stolen.ckpt")
    with pytest.raises(ConvlabError, match="stolen.ckpt.*link"):
        copy_checkpoints(source, rerun)
    assert not (rerun / "checkpoints" / "stolen.ckpt").exists()


@pytest.mark.parametrize("linked", ["trial", "checkpoints", "last.ckpt"])
def test_an_interrupted_trial_reached_through_a_link_is_not_continued(tmp_path, linked):
    real = interrupted(tmp_path / "elsewhere")
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    if linked == "trial":
        os.symlink(real, sweep / "trial_0")
    else:
        (sweep / "trial_0" / "checkpoints").mkdir(parents=True)
        if linked == "checkpoints":
            os.rmdir(sweep / "trial_0" / "checkpoints")
            os.symlink(real / "checkpoints", sweep / "trial_0" / "checkpoints")
        else:
            os.symlink(real / "checkpoints" / "last.ckpt", sweep / "trial_0/checkpoints/last.ckpt")
    assert _regular(real / "checkpoints" / "last.ckpt")
    assert not _regular(sweep / "trial_0" / "checkpoints" / "last.ckpt")
