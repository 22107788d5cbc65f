"""What Lightning restores from a checkpoint is data too, checked before Lightning acts on it.

``ModelCheckpoint`` restores its paths (``best_model_path``, ``last_model_path``,
``kth_best_model_path``, ``best_k_models``) and later deletes "the previous checkpoint" with
``fs.rm(..., recursive=True)``, and tests whatever ``best_model_path`` names. A path is therefore
kept only when it names a regular file of this run's own ``checkpoints/`` folder: the folder it
was saved in (``dirpath``), a plain file name, no URL scheme, no ``..``, no link. It is then moved
to this run's folder, so a run directory that was copied or moved resumes as itself. Every score
must be finite. convlab's ``History`` (it becomes the record) must agree with the checkpoint's
epoch, and ``EarlyStopping`` must keep the configured patience. Anything else is refused in one
line, naming the file.
"""

import math
import os
import stat
from pathlib import Path

import torch

from convlab.errors import ConvlabError

_PATHS = ("best_model_path", "last_model_path", "kth_best_model_path")
_SCORES = ("best_model_score", "current_score")


def _number(value) -> float | None:
    """A score as Lightning keeps it (a 0-d tensor or a float), or None if it is not one."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


class _Checked:
    """One checkpoint's restored state, checked against the run directory it resumes."""

    def __init__(self, ckpt: dict, checkpoints: Path, where):
        self.ckpt, self.checkpoints, self.where = ckpt, checkpoints, where

    def refuse(self, what: str) -> ConvlabError:
        return ConvlabError(
            f"{self.where}: {what}; it was not saved by this run (edited, or from elsewhere): "
            "refusing to resume from it"
        )

    def finite(self, name: str, value, infinite_ok: bool = False) -> None:
        number = _number(value)
        if value is not None and (number is None or not (infinite_ok or math.isfinite(number))):
            raise self.refuse(f"its {name} {value!r} is not a finite number")

    def moved(self, path, saved_dir: str) -> str:
        """A path of the saved state, as the same file in this run's checkpoints folder."""
        if path == "":  # Lightning's "none yet"
            return path
        if not isinstance(path, str) or "://" in path or os.path.dirname(path) != saved_dir:
            raise self.refuse(f"it names {path!r}, which is not a file of its checkpoints folder")
        name = os.path.basename(path)
        target = self.checkpoints / name
        try:
            regular = name not in ("", ".", "..") and stat.S_ISREG(os.lstat(target).st_mode)
            inside = Path(os.path.realpath(target)).parent == Path(
                os.path.realpath(self.checkpoints)
            )
        except (OSError, ValueError):  # missing, or a name no file can have (a NUL byte)
            regular = inside = False
        if not (regular and inside):
            raise self.refuse(f"it names {path!r}, which is no regular file in {self.checkpoints}")
        return str(target)

    def model_checkpoint(self, state) -> dict:
        if not isinstance(state, dict) or not isinstance(state.get("dirpath"), str):
            raise self.refuse("its ModelCheckpoint state is not a mapping with a dirpath")
        saved_dir = state["dirpath"]
        best_k = state.get("best_k_models") or {}
        if not isinstance(best_k, dict):
            raise self.refuse("its ModelCheckpoint best_k_models is not a mapping")
        for name in _SCORES:
            self.finite(name, state.get(name))
        for score in best_k.values():
            self.finite("best_k_models score", score)
        # before any model is saved, kth_value is the worst score possible: +-inf
        self.finite("kth_value", state.get("kth_value"), infinite_ok=not best_k)
        return {
            **state,
            "dirpath": str(self.checkpoints),
            **{name: self.moved(state.get(name, ""), saved_dir) for name in _PATHS},
            "best_k_models": {self.moved(p, saved_dir): s for p, s in best_k.items()},
        }

    def history(self, state) -> None:
        epoch = self.ckpt.get("epoch")
        rows = state.get("epochs") if isinstance(state, dict) else None
        if not isinstance(epoch, int) or not isinstance(rows, list) or len(rows) != epoch + 1:
            raise self.refuse(f"its metric history does not cover its epochs 0 to {epoch!r}")
        for i, row in enumerate(rows):
            if not isinstance(row, dict) or row.get("epoch") != i:
                raise self.refuse(f"its metric history's row {i} is not epoch {i}")
            for key, value in row.items():
                if not isinstance(key, str) or (key != "epoch" and _number(value) is None):
                    raise self.refuse(f"its metric history holds {key!r}: {value!r}")

    def early_stopping(self, state, patience: int | None) -> None:
        if not isinstance(state, dict) or state.get("patience") != patience:
            raise self.refuse("its EarlyStopping patience is not the configured one")
        wait = state.get("wait_count")
        if not isinstance(wait, int) or not 0 <= wait <= patience:
            raise self.refuse(f"its EarlyStopping wait_count {wait!r} is out of range")
        self.finite("EarlyStopping best_score", state.get("best_score"), infinite_ok=True)


def checked_restore(ckpt: dict, checkpoints: Path, where, patience: int | None = None) -> dict:
    """``ckpt`` with its callback states checked and its ModelCheckpoint paths moved into
    ``checkpoints`` (this run's folder), or a ConvlabError naming what is wrong."""
    checked = _Checked(ckpt, Path(checkpoints), where)
    epoch, step = ckpt.get("epoch"), ckpt.get("global_step")
    for name, value in (("epoch", epoch), ("global_step", step)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise checked.refuse(f"its {name} {value!r} is not a count")
    callbacks = ckpt.get("callbacks", {})
    if not isinstance(callbacks, dict):
        raise checked.refuse("its callback states are not a mapping")
    states = {}
    for key, state in callbacks.items():
        if not isinstance(key, str):
            raise checked.refuse(f"it holds a callback state under {key!r}")
        if key.startswith("ModelCheckpoint"):
            state = checked.model_checkpoint(state)
        elif key == "History":
            checked.history(state)
        elif key.startswith("EarlyStopping"):
            checked.early_stopping(state, patience)
        states[key] = state
    return {**ckpt, "callbacks": states}
