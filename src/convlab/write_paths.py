"""Where a run may write: its own directory, and never inside another run's or sweep's.

Every setting whose value is a place to write (the run and sweep directories, the checkpoint
folder, the loggers' directories and stores, the data folder a download fills, Optuna's
storage) is checked once composed, whether it came from the command line or a record. Hydra's own
writers are checked before Hydra runs them (``WriteGuard``, a Hydra callback): a ``.hydra``
folder or a log file would otherwise be written into the run directory before convlab claims it.
"""

import os
import re
import sys
from pathlib import Path
from urllib.parse import urlparse

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from convlab import safe_files, safe_yaml
from convlab.errors import ConvlabError
from convlab.rundir import (
    HYDRA_DIR,
    check_run_location,
    enclosing_run,
    holds_run,
    is_other_rank,
    resume_command,
)

# settings that name a place convlab, Lightning or a logger writes to
WRITTEN = re.compile(
    r"paths\.[^.]+|trainer\.default_root_dir"
    r"|(callbacks|logger)\.[^.]+\.(dirpath|save_dir|run_dir|tracking_uri|artifact_location)"
)
# what else names a file or folder: never taken from a run's record (convlab.resume)
PATH_KEYS = re.compile(
    rf"{WRITTEN.pattern}|hydra\..*|data\.(root|system_dir)|ckpt_path|init_from|resume"
)


def is_path_key(key: str) -> bool:
    return PATH_KEYS.fullmatch(key.lstrip("+~")) is not None


def local_path(value) -> Path | None:
    """The file or folder a setting names: a path, ``sqlite:///path`` or ``file://path``; None
    for a remote store (http, s3), which holds no run directory."""
    if not isinstance(value, str) or not value:
        return None
    if "://" not in value:
        return Path(value)
    url = urlparse(value)
    if url.scheme in ("sqlite", "file"):
        return Path(url.path)
    return None


def _written(cfg: DictConfig) -> dict[str, Path]:
    """Each written setting of a composed config and the place it names."""
    found = {}
    for section in ("paths", "trainer", "callbacks", "logger"):
        # a deselected group (`~logger`, `logger=[]`) is absent or an empty config
        tree = OmegaConf.to_container(cfg[section], resolve=True) if cfg.get(section) else {}
        for key, value in _flat(tree, f"{section}."):
            if WRITTEN.fullmatch(key) and (path := local_path(value)):
                found[key] = path
    data = cfg.get("data") or {}
    if data.get("download") and (root := local_path(data.get("root"))):
        found["data.root"] = root
    return found


def _flat(tree, prefix: str):
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from _flat(value, f"{prefix}{key}.")
    else:
        yield prefix.rstrip("."), tree


def check_written_paths(cfg: DictConfig, run_dir: Path, sweep_dir: Path | None) -> None:
    """Refuse a setting that would write inside another run or sweep; the run's own directory
    and the sweep it belongs to are where it writes."""
    checkpoints = run_dir / "checkpoints"
    if OmegaConf.select(cfg, "callbacks.model_checkpoint.save_last") == "link":
        raise ConvlabError(
            "callbacks.model_checkpoint.save_last=link makes last.ckpt a symbolic link, and "
            "convlab never writes or resumes through one: set it to true"
        )
    for key, path in _written(cfg).items():
        place = path.resolve()
        # as written: a link there is the claim's to refuse, with its own words
        if (
            key == "callbacks.model_checkpoint.dirpath"
            and Path(os.path.abspath(path)) != checkpoints
        ):
            raise ConvlabError(
                f"{key}={path} is not {checkpoints}: a run keeps its checkpoints in its own "
                f"checkpoints/ folder, where resume and the record find them; drop {key}"
            )
        if place == run_dir or run_dir in place.parents:
            continue
        if other := enclosing_run(place, allowed=sweep_dir):
            raise ConvlabError(
                f"{key}={path} is inside {other}, another run's or sweep's directory, whose "
                f"files are never changed; choose another {key}"
            )


def _refuse_hydra_writers(config: DictConfig) -> None:
    """Hydra writes ``.hydra/`` and log files into a directory before the job starts, so before
    convlab could claim it: convlab writes the record itself, and logs to the console."""
    if OmegaConf.select(config, "hydra.output_subdir") is not None:
        raise ConvlabError(
            "hydra.output_subdir would make Hydra write into the run directory before convlab "
            "claims it; convlab writes <run dir>/.hydra itself: drop hydra.output_subdir"
        )
    for group in ("job_logging", "hydra_logging"):
        handlers = OmegaConf.select(config, f"hydra.{group}.handlers") or {}
        for name, handler in handlers.items():
            if isinstance(handler, DictConfig) and "filename" in handler:
                raise ConvlabError(
                    f"hydra/{group} writes a log file ({name}) into the run directory before "
                    f"convlab claims it; drop the hydra/{group} override"
                )


def check_sweep_dir(sweep_dir: Path, storage: str | None = None) -> None:
    """A sweep directory is new, or a sweep's (continued); never a run's, never inside another
    run or sweep, and holding no link. Optuna's storage stays out of other runs and sweeps."""
    if holds_run(sweep_dir):
        raise ConvlabError(
            f"hydra.sweep.dir={sweep_dir} holds a run, whose files are never changed; choose "
            "another hydra.sweep.dir"
        )
    if other := enclosing_run(sweep_dir.parent):
        raise ConvlabError(
            f"hydra.sweep.dir={sweep_dir} is inside {other}, another run's or sweep's directory, "
            "whose files are never changed; choose another hydra.sweep.dir"
        )
    if sweep_dir.is_dir():
        safe_files.refuse_links(sweep_dir)
    path = local_path(storage)
    if path is not None and (other := enclosing_run(path.resolve(), allowed=sweep_dir)):
        raise ConvlabError(
            f"hydra.sweeper.storage={storage} is inside {other}, another run's or sweep's "
            "directory, whose files are never changed; keep the study's database elsewhere"
        )


def _jobs(sweep_dir: Path) -> list[Path]:
    if not sweep_dir.is_dir():
        return []
    return sorted(p for p in sweep_dir.iterdir() if p.is_dir() and holds_run(p))


def _recorded_study(jobs: list[Path]) -> tuple | None:
    """The Optuna storage and study name a sweep's jobs recorded (data: read bounded, compared
    as strings, never resolved)."""
    for job in jobs:
        try:
            recorded = safe_yaml.load(job / HYDRA_DIR / "hydra.yaml")
        except ConvlabError:
            continue
        sweeper = ((recorded or {}).get("hydra") or recorded or {}).get("sweeper") or {}
        if isinstance(sweeper, dict) and sweeper.get("storage"):
            return sweeper.get("storage"), sweeper.get("study_name")
    return None


def refuse_reused_sweep(sweep_dir: Path, config: DictConfig) -> None:
    """A sweep directory that holds jobs would report them as the new sweep's: refused before
    any job starts, unless the command continues that very sweep (``resume=<sweep dir>``) or
    that very Optuna study (the same storage and study name as its jobs recorded)."""
    jobs = _jobs(sweep_dir)
    if not jobs:
        return
    resume = OmegaConf.select(config, "resume")
    if resume and Path(str(resume)).resolve() == sweep_dir:
        return
    storage = OmegaConf.select(config, "hydra.sweeper.storage")
    study = OmegaConf.select(config, "hydra.sweeper.study_name")
    if storage and _recorded_study(jobs) == (storage, study):
        return
    raise ConvlabError(
        f"hydra.sweep.dir={sweep_dir} already holds {len(jobs)} job(s) of a sweep, which would be "
        f"reported as this one's; continue that sweep with {resume_command(sweep_dir)}, or "
        "choose another hydra.sweep.dir"
    )


def _resolved(config: DictConfig, key: str) -> Path:
    return Path(OmegaConf.select(config, key)).resolve()


class WriteGuard(Callback):
    """Checks where Hydra is about to write, before it does (``hydra.callbacks``)."""

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        if is_other_rank():  # a rank Lightning started re-runs rank 0's job, in rank 0's place
            return
        _guarded(
            lambda: check_run_location(_resolved(config, "hydra.run.dir"), bool(config.resume))
        )
        _guarded(lambda: _refuse_hydra_writers(config))

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        storage = OmegaConf.select(config, "hydra.sweeper.storage")
        sweep_dir = _resolved(config, "hydra.sweep.dir")
        _guarded(lambda: _refuse_hydra_writers(config))
        _guarded(lambda: check_sweep_dir(sweep_dir, storage))
        _guarded(lambda: refuse_reused_sweep(sweep_dir, config))


def _guarded(check) -> None:
    """Hydra reports an exception in a callback with a traceback: a user's mistake is one line."""
    try:
        check()
    except ConvlabError as e:
        sys.exit(f"convlab: error: {e}")
