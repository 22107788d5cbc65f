"""The record says what code ran: a new, uncommitted model file makes the source dirty, and the
kept patch recreates the source from the commit."""

import shutil
import subprocess
from pathlib import Path

import pytest

from convlab.provenance import PATCH, source_state
from convlab.record import RunRecord
from convlab.train import run
from tests.helpers import TINY


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture
def repo(tmp_path) -> Path:
    """A small checkout shaped like convlab's: the package, the configs, a root script."""
    root = tmp_path / "repo"
    for name, text in {
        "src/pkg/model.py": "WIDTH = 8\n",
        "conf/model/net.yaml": "width: 8\n",
        "train.py": "print('train')\n",
        ".gitignore": "data/\n*.log\n",
    }.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    git(root, "init", "-q")
    git(root, "-c", "user.email=a@b", "-c", "user.name=a", "add", ".")
    git(root, "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-qm", "start")
    return root


def test_a_clean_tree_is_its_commit(repo):
    source = source_state(repo)
    assert source.commit == git(repo, "rev-parse", "HEAD").strip()
    assert source.dirty is False and source.patch == ""


def test_untracked_source_makes_it_dirty_and_the_patch_recreates_it(repo, tmp_path):
    clean = source_state(repo)
    (repo / "src" / "pkg" / "mynet.py").write_text("class MyNet:\n    pass\n")  # a new model
    (repo / "conf" / "model" / "net.yaml").write_text("width: 16\n")  # an edited config
    (repo / "data").mkdir()
    (repo / "data" / "big.bin").write_bytes(b"\0" * 100)  # ignored: not source
    (repo / "notes.log").write_text("ignored too\n")
    dirty = source_state(repo)
    assert dirty.dirty is True and dirty.sha256 != clean.sha256
    assert "mynet.py" in dirty.patch and "width: 16" in dirty.patch and "big.bin" not in dirty.patch
    copy = tmp_path / "recreated"  # as the README says: the commit, then the patch
    git(tmp_path, "clone", "-q", str(repo), str(copy))
    git(copy, "checkout", "-q", dirty.commit)
    (copy / PATCH).write_text(dirty.patch)
    git(copy, "apply", PATCH)
    (copy / PATCH).unlink()
    assert source_state(copy).sha256 == dirty.sha256


def test_a_run_records_its_source_and_keeps_the_patch_when_dirty(tmp_path):
    record = run(overrides=[*TINY, f"hydra.run.dir={tmp_path / 'run'}"])
    source = record.environment["source"]
    assert len(source["sha256"]) == 64
    assert (tmp_path / "run" / PATCH).is_file() == bool(source["dirty"])
    assert source["patch"] == (PATCH if source["dirty"] else None)
    assert RunRecord.read(tmp_path / "run" / "metrics.json").environment["source"] == source


def test_without_git_the_source_is_still_hashed(repo):
    shutil.rmtree(repo / ".git")
    source = source_state(repo)
    assert source.commit is None and source.dirty is None and len(source.sha256) == 64
