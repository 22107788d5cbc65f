"""metrics.json: the canonical, machine-readable record of a run."""

import json
import os
import platform
import sys
from dataclasses import asdict, dataclass, field, fields
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from convlab import safe_files
from convlab.errors import ConvlabError
from convlab.provenance import Source, source_state
from convlab.rundir import METRICS

PACKAGES = ("torch", "torchvision", "lightning", "torchmetrics", "hydra-core", "omegaconf")


def _version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def environment(repo: Path, source: Source | None = None) -> dict:
    """Where and with what a run ran: enough to reproduce it or to explain a difference. The
    source is taken when the run starts (``convlab.provenance``), or now."""
    import torch  # here: reading records (compare.py) needs no torch

    source = source if source is not None else source_state(repo)
    commit = source.commit and source.commit + ("+dirty" if source.dirty else "")
    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return {
        "git_commit": commit,
        "source": source.record(),
        "python": sys.version.split()[0],
        "packages": {p: _version(p) for p in PACKAGES},
        "hardware": {
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "gpus": gpus,
        },
    }


def json_text(data: dict) -> str:
    return json.dumps(data, indent=2, default=str) + "\n"


def write_json(path: Path, data: dict) -> None:
    """Write via a new temporary file and rename, so a reader never sees half a record, and
    never through a link."""
    safe_files.write_text(path.parent, path.name, json_text(data))


RECORD_VERSION = 1


@dataclass(frozen=True)
class RunRecord:
    """metrics.json: what a run measured, which weights the test saw, and where the run ran.

    Written once, by rank 0, as the run's last act (its presence marks the run finished).
    ``from_json`` reads every version written so far: files from before the ``version`` field are
    version 1, and a field they lack takes the default below.
    """

    metrics: dict[str, float]  # the best epoch's val/* (when validated) and test/*
    status: str = "finished"  # or "pruned" (stopped by a search, never tested)
    validation: bool = True  # false: no model selection; the test saw the final weights
    best_epoch: int | None = None
    tested: str = ""  # which weights the test used, in words
    epochs_run: int | None = None
    history: list[dict[str, float]] = field(default_factory=list)  # one row per epoch
    model: dict[str, Any] = field(default_factory=dict)  # name (config option), class, params
    overrides: list[str] = field(default_factory=list)  # the command line's
    environment: dict[str, Any] = field(default_factory=dict)  # git commit, packages, hardware
    timing: dict[str, float] = field(default_factory=dict)  # fit_s, wall_s
    paths: dict[str, str | None] = field(default_factory=dict)  # run_dir, checkpoint
    pruned_after_epoch: int | None = None
    # a run started from a checkpoint's weights (init_from): its path, and the tensors whose shape
    # differed and were re-initialised (init_from_strict=false); empty for a run from scratch
    init_from: dict[str, Any] = field(default_factory=dict)
    version: int = RECORD_VERSION

    @property
    def test_acc(self) -> float | None:
        return self.metrics.get("test/acc")

    @property
    def val_acc(self) -> float | None:
        """None where nothing was validated (a ``_book`` recipe): such a run ranks nowhere."""
        return self.metrics.get("val/acc") if self.validation else None

    def to_json(self) -> dict:
        data = asdict(self)
        if self.pruned_after_epoch is None:
            del data["pruned_after_epoch"]
        if not self.init_from:  # a run from scratch: its record as before init_from
            del data["init_from"]
        return data

    @classmethod
    def from_json(cls, data: dict, source: str = METRICS) -> "RunRecord":
        """The record in a parsed metrics.json; a ConvlabError names what is wrong with it."""
        if not isinstance(data, dict) or not isinstance(data.get("metrics"), dict):
            raise ConvlabError(f"{source} is not a convlab run record: it has no metrics")
        version = data.get("version", 1)
        if not isinstance(version, int) or isinstance(version, bool) or version > RECORD_VERSION:
            raise ConvlabError(
                f"{source} is record version {version!r}; this convlab reads versions up to "
                f"{RECORD_VERSION}: update convlab to read it"
            )
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def read(cls, path: Path) -> "RunRecord":
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ConvlabError(f"{path} cannot be read as a run record: {e}") from None
        return cls.from_json(data, str(path))

    def write(self, path: Path) -> None:
        write_json(path, self.to_json())

    def to_text(self) -> str:
        return json_text(self.to_json())
