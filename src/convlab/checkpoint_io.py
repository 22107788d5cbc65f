"""Checkpoints: writes that survive crashes and full disks; reads that run no code.

A checkpoint holds tensors and plain containers only: Lightning's state plus convlab's metadata
(``CheckpointMeta``), so it loads with ``torch.load(weights_only=True)`` and everything convlab
reads back from it is checked as data before use.
"""

import os
import pickle
import stat
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from convlab.errors import ConvlabError
from convlab.registry import check_plain_dict, is_plain
from convlab.restored_state import checked_restore
from convlab.safe_files import write_with
from convlab.schedulers import with_stepping
from convlab.validate import preprocess_problem

META_KEY = "convlab"  # where the metadata sits in Lightning's checkpoint dict
META_VERSION = 2  # raise when the layout below changes; older layouts are then named in errors
# version 1's data.channels was the network's: 3 on grey images repeated the grey channel, and only
# this data module stored 3 channels. Version 2 names the stored channels and the repeat apart.
V1_STORED_RGB = "convlab.data.datamodule.SyntheticDataModule"


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint files, kept inside one run directory.

    Writes go to a fresh temporary file beside the target, fsync, then a rename over it: a crash,
    a signal or ENOSPC mid-write leaves the previous checkpoint intact and no temporary file
    behind, and no link below the run directory is followed (``convlab.safe_files``). What Lightning
    reads back is checked first (``convlab.restored_state``); what it removes is a regular file of
    the run's ``checkpoints/`` folder, never anything else.
    """

    def __init__(self, run_dir: Path, patience: int | None = None):
        super().__init__()
        self.run_dir, self.patience = Path(run_dir), patience
        self.checkpoints = self.run_dir / "checkpoints"

    def _inside(self, path) -> Path:
        path = Path(path)
        if path.parent != self.checkpoints:
            raise ConvlabError(
                f"{path} is not in {self.checkpoints}; convlab keeps a run's checkpoints there"
            )
        return path

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options=None) -> None:
        path = self._inside(path)
        try:
            write_with(
                self.run_dir, path.relative_to(self.run_dir), lambda f: torch.save(checkpoint, f)
            )
        except OSError as e:
            raise ConvlabError(
                f"could not write checkpoint {path}: {e.strerror or e}; free space or fix the "
                "output directory, then resume=<run dir>; earlier checkpoints are kept"
            ) from e  # a full disk is found behind it: the run says how to continue

    def load_checkpoint(self, path, map_location=None, weights_only=None) -> dict[str, Any]:
        ckpt = load_checkpoint(path)  # weights_only, whatever Lightning asks
        return checked_restore(ckpt, self.checkpoints, path, self.patience)

    def remove_checkpoint(self, path) -> None:
        path = self._inside(path)
        if not os.path.lexists(path):
            return
        if not stat.S_ISREG(os.lstat(path).st_mode):
            raise ConvlabError(f"{path} is not a regular file; convlab removes no other kind")
        path.unlink()


def load_checkpoint(path: str | Path) -> dict:
    """torch.load with weights_only=True: a checkpoint carrying pickled objects is refused unrun."""
    path = Path(path)
    if path.is_dir():
        raise ConvlabError(f"{path} is a directory; give a checkpoint file in it, e.g. last.ckpt")
    if not path.is_file():
        raise ConvlabError(f"checkpoint {path} does not exist; check the path")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "allowed global" in str(e) or "GLOBAL" in str(e):
            raise ConvlabError(
                f"refusing to load {path}: it holds pickled Python objects, which could run code; "
                "only load checkpoints saved by convlab"
            ) from None
        raise ConvlabError(
            f"{path} is not a PyTorch checkpoint (unreadable); check the path"
        ) from None
    except (RuntimeError, EOFError, KeyError, ValueError, IndexError, OSError) as e:
        raise ConvlabError(
            f"{path} is not a readable checkpoint ({type(e).__name__}): a checkpoint cut short, "
            "or not a checkpoint at all; check the path"
        ) from None
    if not isinstance(ckpt, dict):
        raise ConvlabError(f"{path} is not a Lightning checkpoint (no state dict); check the path")
    return ckpt


NOT_CONVLAB = "it was not saved by convlab: load only checkpoints that convlab runs wrote"
MAX_DEPTH = 32  # convlab's metadata nests 5 deep (model.arch); far deeper exhausts recursion
_SCALARS = (type(None), bool, int, float, str)


def _omegaconf_reads(text: str) -> str | None:
    """What OmegaConf would do with a string instead of keeping it, or None for plain text."""
    if "${" in text:
        return "resolve (an interpolation)"
    return "read as a missing value" if text == "???" else None


def _shown(text: str) -> str:
    """A string as its literal text in one line, cut short."""
    return repr(text if len(text) <= 100 else f"{text[:100]}...")


def _check_plain_data(meta: dict, path) -> None:
    """Refuse metadata that is not plain data before anything reads it.

    A genuine checkpoint's config was resolved when saved, so no string in it (key or value) is
    an interpolation; one that is would run a resolver (``${oc.env:...}`` reads the environment)
    wherever OmegaConf later meets it. Such a string is shown only as its literal text.
    """
    stack = [(meta, "", 0)]  # a stack, not recursion: a crafted file may nest without end
    while stack:
        node, where, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ConvlabError(f"{path}: its metadata nests over {MAX_DEPTH} deep; {NOT_CONVLAB}")
        if isinstance(node, dict):
            for key, value in node.items():
                if not isinstance(key, str):
                    raise ConvlabError(
                        f"{path}: its metadata at {_shown(where)} has a key of type "
                        f"{type(key).__name__}; {NOT_CONVLAB}"
                    )
                stack += [(key, where, depth + 1), (value, f"{where}.{key}".lstrip("."), depth + 1)]
        elif isinstance(node, list | tuple):
            stack += [(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(node)]
        elif isinstance(node, str):
            if why := _omegaconf_reads(node):
                raise ConvlabError(
                    f"{path}: its metadata at {_shown(where)} holds {_shown(node)}, which "
                    f"OmegaConf would {why}; convlab saves resolved values, so {NOT_CONVLAB}"
                )
        elif not isinstance(node, _SCALARS):
            raise ConvlabError(
                f"{path}: its metadata at {_shown(where)} holds a {type(node).__name__}, not "
                f"plain data; {NOT_CONVLAB}"
            )


@dataclass(frozen=True)
class CheckpointMeta:
    """What convlab stores beside the weights to rebuild and describe a run."""

    config: dict  # the run's resolved config
    model_name: str  # the model config's name, e.g. 'lenet_modern'
    class_names: list[str]
    preprocess: dict  # Preprocess's constructor arguments
    version: int = META_VERSION

    def to_checkpoint(self) -> dict:
        return asdict(self)

    @classmethod
    def from_checkpoint(cls, ckpt: dict, path: str | Path) -> "CheckpointMeta":
        """The checked metadata of a loaded checkpoint, or one line saying what is wrong."""
        meta = ckpt.get(META_KEY)
        if not isinstance(meta, dict) or not isinstance(ckpt.get("state_dict"), dict):
            raise ConvlabError(
                f"{path} was not saved by convlab; pass a checkpoint of a convlab run"
            )
        _check_plain_data(meta, path)  # first: what follows and its callers see plain data only
        version = meta.get("version", 1)  # the first layout was written without a number
        if version not in (1, META_VERSION):
            raise ConvlabError(
                f"{path} has checkpoint format {version!r}, this convlab reads 1 to "
                f"{META_VERSION}; use the convlab version that saved it"
            )
        config, names = meta.get("config"), meta.get("class_names")
        if not isinstance(config, dict) or not all(
            isinstance(config.get(section), dict) for section in ("model", "data")
        ):
            raise ConvlabError(
                f"{path}: its saved config is not a mapping with model and data sections; "
                f"{NOT_CONVLAB}"
            )
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ConvlabError(f"{path}: its class names are not a list of strings")
        if len(names) != config["data"].get("num_classes"):  # else predict indexes past them
            raise ConvlabError(
                f"{path}: it names {len(names)} classes and its data.num_classes is "
                f"{config['data'].get('num_classes')!r}; {NOT_CONVLAB}"
            )
        preprocess = check_plain_dict(
            {k: v for k, v in _as_dict(meta.get("preprocess"), path).items() if k != "augment"},
            f"{path}'s preprocessing",
        )
        if version == 1:
            config, preprocess = _stored_channels(config, preprocess)
        config = with_stepping(config)
        if why := preprocess_problem(preprocess):
            raise ConvlabError(f"{path}: its preprocessing {why}; {NOT_CONVLAB}")
        augment = meta["preprocess"].get("augment")
        if augment is not None:
            check_plain_dict(augment, f"{path}'s augmentation")
        model_name = meta.get("model_name", "")
        return cls(
            config=config,
            model_name=model_name if is_plain(model_name) and model_name else "",
            class_names=names,
            preprocess={**preprocess, "augment": augment},
            version=META_VERSION,
        )


def _stored_channels(config: dict, preprocess: dict) -> tuple[dict, dict]:
    """A version 1 checkpoint's config and preprocessing in version 2's keys: its channels=3 on
    grey data becomes channels=1 with grey_to_rgb=true, in both, so evaluation and resume compose
    and compare the keys of today."""
    repeated = preprocess.get("channels") == 3 and config["data"].get("_target_") != V1_STORED_RGB
    keys = {"channels": 1 if repeated else preprocess.get("channels"), "grey_to_rgb": repeated}
    return {**config, "data": {**config["data"], **keys}}, {**preprocess, **keys}


def _as_dict(value, path) -> dict:
    if not isinstance(value, dict):
        raise ConvlabError(f"{path}: its preprocessing is not a mapping; not saved by convlab")
    return value


def read_meta(path: str | Path) -> tuple[dict, CheckpointMeta]:
    """A convlab checkpoint's contents and its checked metadata."""
    ckpt = load_checkpoint(path)
    return ckpt, CheckpointMeta.from_checkpoint(ckpt, path)
