"""Checkpoints: writes that survive crashes and full disks; reads that run no code.

A checkpoint holds tensors and plain containers only: Lightning's state plus convlab's metadata
(``CheckpointMeta``), so it loads with ``torch.load(weights_only=True)`` and everything convlab
reads back from it is checked as data before use.
"""

import os
import pickle
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from convlab.errors import ConvlabError
from convlab.registry import check_plain_dict, is_plain

META_KEY = "convlab"  # where the metadata sits in Lightning's checkpoint dict
META_VERSION = 1  # raise when the layout below changes; older layouts are then named in errors


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes to a temporary file beside the target, fsyncs, then renames over it.

    A crash, a signal or ENOSPC mid-write leaves the previous checkpoint intact (rename is atomic
    on POSIX) and no temporary file behind.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options=None) -> None:
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise ConvlabError(
                f"could not write checkpoint {path}: {e.strerror or e}; free space or fix the "
                "output directory, then resume=<run dir>; earlier checkpoints are kept"
            ) from None
        except BaseException:  # an interrupt mid-write
            tmp.unlink(missing_ok=True)
            raise


def load_checkpoint(path: str | Path) -> dict:
    """torch.load with weights_only=True: a checkpoint carrying pickled objects is refused unrun."""
    path = Path(path)
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
            f"{path} is not a readable checkpoint ({type(e).__name__}); is it truncated?"
        ) from None
    if not isinstance(ckpt, dict):
        raise ConvlabError(f"{path} is not a Lightning checkpoint (no state dict); check the path")
    return ckpt


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
        version = meta.get("version", 1)  # the first layout was written without a number
        if version != META_VERSION:
            raise ConvlabError(
                f"{path} has checkpoint format {version!r}, this convlab reads {META_VERSION}; "
                "use the convlab version that saved it"
            )
        config, names = meta.get("config"), meta.get("class_names")
        if not isinstance(config, dict) or not isinstance(config.get("model"), dict):
            raise ConvlabError(f"{path}: its saved config is not a mapping; not saved by convlab")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ConvlabError(f"{path}: its class names are not a list of strings")
        preprocess = check_plain_dict(
            {k: v for k, v in _as_dict(meta.get("preprocess"), path).items() if k != "augment"},
            f"{path}'s preprocessing",
        )
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


def _as_dict(value, path) -> dict:
    if not isinstance(value, dict):
        raise ConvlabError(f"{path}: its preprocessing is not a mapping; not saved by convlab")
    return value


def read_meta(path: str | Path) -> tuple[dict, CheckpointMeta]:
    """A convlab checkpoint's contents and its checked metadata."""
    ckpt = load_checkpoint(path)
    return ckpt, CheckpointMeta.from_checkpoint(ckpt, path)
