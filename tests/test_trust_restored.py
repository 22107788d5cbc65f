"""What Lightning restores from last.ckpt is data: an edited checkpoint state never deletes, reads
or tests a file outside its run's checkpoints folder, and a copied run resumes as itself."""

import os
import shutil
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convlab.errors import ConvlabError
from convlab.record import RunRecord
from convlab.restored_state import checked_restore
from convlab.train import run
from tests.helpers import KILL, cli, one_line_error, tree_state

CHECKPOINT_STATE = "ModelCheckpoint{"


def edit_state(last: Path, **changes) -> None:
    """Set fields of the ModelCheckpoint state saved in a last.ckpt (weights and config as they
    were), as someone editing the file would."""
    ckpt = torch.load(last, weights_only=True)
    key = next(k for k in ckpt["callbacks"] if k.startswith(CHECKPOINT_STATE))
    ckpt["callbacks"][key].update(changes)
    torch.save(ckpt, last)


def saved_state(last: Path) -> dict:
    ckpt = torch.load(last, weights_only=True)
    return next(v for k, v in ckpt["callbacks"].items() if k.startswith(CHECKPOINT_STATE))


@pytest.fixture
def bystanders(tmp_path, killed_run) -> dict[str, Path]:
    """A sentinel file and a finished-looking run beside the resumed one: what an edited state
    aimed at."""
    sentinel = tmp_path / "sentinel.txt"
    sentinel.write_text("keep me\n")
    other = tmp_path / "other_run"
    shutil.copytree(killed_run, other)
    (other / "metrics.json").write_text('{"metrics": {}}\n')
    return {"sentinel": sentinel, "other": other}


def states(paths: dict[str, Path]) -> dict:
    return {name: tree_state(p) if p.is_dir() else p.read_bytes() for name, p in paths.items()}


@pytest.mark.parametrize(
    "aim",
    [
        "{dirpath}/../../sentinel.txt",  # passes Lightning's lexical "inside dirpath" test
        "local://{tmp}/sentinel.txt",  # another protocol skips that test altogether
        "file://{tmp}/sentinel.txt",
        "{tmp}/other_run",  # a whole run directory, removed recursively
        "{tmp}/other_run/checkpoints/last.ckpt",  # another run's checkpoint, tested as this one's
    ],
)
def test_an_edited_checkpoint_state_is_refused_and_nothing_outside_changes(
    killed_copy, bystanders, tmp_path, aim
):
    last = killed_copy / "checkpoints" / "last.ckpt"
    dirpath = saved_state(last)["dirpath"]
    target = aim.format(dirpath=dirpath, tmp=tmp_path)
    edit_state(last, best_model_path=target, kth_best_model_path=target, best_k_models={target: 1})
    before, run_before = states(bystanders), tree_state(killed_copy)
    if aim.startswith("{dirpath}"):  # once as a user runs it: one line, no traceback
        assert "refusing to resume from it" in one_line_error(cli(f"resume={killed_copy}", KILL))
    else:
        with pytest.raises(ConvlabError, match="refusing to resume from it"):
            run(overrides=[f"resume={killed_copy}", KILL])
    assert states(bystanders) == before
    assert tree_state(killed_copy) == run_before  # a refused resume changes nothing


def test_the_same_state_with_this_runs_paths_resumes(killed_copy):
    """The check is no blanket refusal: a copied run (every saved path names the original
    folder) resumes, tests its own best checkpoint and records it."""
    run(overrides=[f"resume={killed_copy}", KILL])
    record = RunRecord.read(killed_copy / "metrics.json")
    assert Path(record.paths["checkpoint"]).parent == killed_copy / "checkpoints"
    assert [row["epoch"] for row in record.history] == [0, 1]


def test_scores_and_history_are_checked(killed_copy):
    last = killed_copy / "checkpoints" / "last.ckpt"
    ckpt = torch.load(last, weights_only=True)
    folder = last.parent
    key = next(k for k in ckpt["callbacks"] if k.startswith(CHECKPOINT_STATE))
    assert checked_restore(ckpt, folder, last)["callbacks"][key]["dirpath"] == str(folder)
    nan = {**ckpt["callbacks"][key], "best_model_score": torch.tensor(float("nan"))}
    with pytest.raises(ConvlabError, match="best_model_score .* is not a finite number"):
        checked_restore({**ckpt, "callbacks": {**ckpt["callbacks"], key: nan}}, folder, last)
    history = {"epochs": ckpt["callbacks"]["History"]["epochs"] * 2}  # rows the run never had
    with pytest.raises(ConvlabError, match="history does not cover its epochs 0 to 0"):
        checked_restore(
            {**ckpt, "callbacks": {**ckpt["callbacks"], "History": history}}, folder, "x"
        )
    with pytest.raises(ConvlabError, match="its epoch -1 is not a count"):
        checked_restore({**ckpt, "epoch": -1}, folder, last)


# what an attacker may put in a saved path: anything, and the usual escapes
_escapes = st.sampled_from(
    ["..", ".", "", "/", "//", "last.ckpt", "best.ckpt", "link.ckpt", "folder", "~", "\x00"]
)
_paths = st.one_of(
    st.text(max_size=40),
    st.lists(_escapes, min_size=1, max_size=5).map("/".join),
    st.tuples(
        st.sampled_from(["local://", "file://", "memory://", "s3://", "/", ""]), st.text()
    ).map("".join),
)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """A checkpoints folder with two checkpoints, a link to one and a subfolder."""
    root = tmp_path_factory.mktemp("restored")
    checkpoints = root / "checkpoints"
    checkpoints.mkdir()
    (checkpoints / "last.ckpt").write_bytes(b"x")
    (checkpoints / "best.ckpt").write_bytes(b"x")
    (checkpoints / "folder").mkdir()
    (root / "outside.ckpt").write_bytes(b"x")
    os.symlink(root / "outside.ckpt", checkpoints / "link.ckpt")
    return checkpoints


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(path=_paths, saved_dir=st.sampled_from(["/saved/checkpoints", "SAME"]))
def test_any_restored_path_is_a_regular_file_of_the_folder_or_refused(folder, path, saved_dir):
    saved_dir = str(folder) if saved_dir == "SAME" else saved_dir
    if not path.startswith(("local:", "file:", "memory:", "s3:", "/")):
        path = f"{saved_dir}/{path}"  # also what the saved folder's own name plus a tail gives
    state = {"dirpath": saved_dir, "best_model_path": path, "best_k_models": {path: 0.5}}
    ckpt = {"epoch": 0, "global_step": 1, "callbacks": {"ModelCheckpoint{}": state}}
    try:
        restored = checked_restore(ckpt, folder, "x")["callbacks"]["ModelCheckpoint{}"]
    except ConvlabError:
        return
    for kept in (restored["best_model_path"], *restored["best_k_models"]):
        kept = Path(kept)
        assert kept.parent == folder and kept.name in ("last.ckpt", "best.ckpt")
        assert kept.is_file() and not kept.is_symlink()


def test_a_planted_requeue_checkpoint_is_refused(killed_copy):
    """Lightning loads hpc_ckpt_N.ckpt on SLURM when it finds one; convlab never writes one."""
    shutil.copy(killed_copy / "checkpoints" / "last.ckpt", killed_copy / "hpc_ckpt_1.ckpt")
    with pytest.raises(ConvlabError, match="was not written by convlab"):
        run(overrides=[f"resume={killed_copy}", KILL])


def test_slurm_requeue_is_off(monkeypatch, tmp_path):
    from convlab.rundir import RunDir
    from convlab.train import _cluster

    monkeypatch.setenv("SLURM_NTASKS", "1")
    monkeypatch.setenv("SLURM_JOB_NAME", "train")
    (environment,) = _cluster(RunDir(tmp_path, resuming=False))
    assert environment.auto_requeue is False
    monkeypatch.delenv("SLURM_NTASKS")
    assert _cluster(RunDir(tmp_path, resuming=False)) == []


def test_what_lightning_removes_is_a_file_of_the_folder(tmp_path):
    from convlab.checkpoint_io import AtomicCheckpointIO

    io = AtomicCheckpointIO(tmp_path)
    (tmp_path / "checkpoints").mkdir()
    outside = tmp_path / "keep.ckpt"
    outside.write_bytes(b"x")
    for aim in (outside, tmp_path / "checkpoints" / ".." / "keep.ckpt", tmp_path):
        with pytest.raises(ConvlabError, match="convlab keeps a run's checkpoints there"):
            io.remove_checkpoint(aim)
    (tmp_path / "checkpoints" / "sub.ckpt").mkdir()
    with pytest.raises(ConvlabError, match="is not a regular file"):
        io.remove_checkpoint(tmp_path / "checkpoints" / "sub.ckpt")
    assert outside.read_bytes() == b"x" and (tmp_path / "checkpoints" / "sub.ckpt").is_dir()


def test_weights_that_do_not_fit_the_config_are_refused_before_training(killed_copy):
    last = killed_copy / "checkpoints" / "last.ckpt"
    ckpt = torch.load(last, weights_only=True)
    ckpt["state_dict"]["net.extra"] = torch.zeros(3)
    torch.save(ckpt, last)
    before = tree_state(killed_copy)
    with pytest.raises(ConvlabError, match="its weights do not fit its own model"):
        run(overrides=[f"resume={killed_copy}", KILL])
    assert tree_state(killed_copy) == before
