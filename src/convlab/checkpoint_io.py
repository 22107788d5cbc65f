"""Checkpoint writing that survives crashes and full disks; reading that runs no pickled code."""

import os
import pickle
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from convlab.errors import ConvlabError


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes to a temporary file beside the target, fsyncs, then renames over it.

    A crash or ENOSPC mid-write leaves the previous checkpoint intact (rename is atomic on POSIX).
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


def load_checkpoint(path: str | Path) -> dict:
    """torch.load with weights_only=True: a checkpoint carrying pickled objects is refused unrun."""
    path = Path(path)
    if not path.is_file():
        raise ConvlabError(f"checkpoint {path} does not exist; check ckpt_path")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0]
        raise ConvlabError(
            f"refusing to load {path}: it holds pickled Python objects, which could run code "
            f"({first}); only load checkpoints you trust, saved by convlab"
        ) from None
    except (RuntimeError, EOFError) as e:
        raise ConvlabError(f"{path} is not a readable checkpoint ({e}); is it truncated?") from None
