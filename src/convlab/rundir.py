"""Run directories: claimed by one process, recorded by convlab, never changed once finished.

Hydra is told not to write into a run directory (``hydra.output_subdir: null``); convlab claims
the directory first, with an OS lock held for the life of the process, and only then writes the
``.hydra`` record. A lock dies with its process (kill -9, out of memory), so it never blocks a
later ``resume=``. A directory holding ``metrics.json`` is finished: nothing is written into it.
"""

import fcntl
import json
import os
import re
import shlex
import shutil
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import OverrideParseException
from omegaconf import DictConfig, OmegaConf

from convlab.errors import ConvlabError

LOCK = ".lock"
HYDRA_DIR = ".hydra"
METRICS = "metrics.json"
FAILURE = "failure.json"
# what a run leaves in its directory: any of them means the directory holds (part of) a run
RUN_MARKS = (METRICS, "checkpoints", HYDRA_DIR, FAILURE)

_PLAIN_PATH = re.compile(r"[\w./+-]+")
_RANK_VARIABLES = ("RANK", "SLURM_PROCID", "NODE_RANK", "LOCAL_RANK", "GROUP_RANK")


def launch_rank_is_zero() -> bool:
    """True unless a launcher (Lightning's DDP re-launch, torchrun, srun, a second node) says this
    process is another rank of a run whose rank 0 claims the directory."""
    for name in _RANK_VARIABLES:
        value = os.environ.get(name, "0")
        if value.strip().isdigit() and int(value) != 0:
            return False
    return True


def is_finished(run_dir: Path) -> bool:
    return (run_dir / METRICS).is_file()


def hydra_quoted(path: Path | str) -> str:
    """A path as one Hydra override value: a ',' or '=' in it stays part of the path."""
    return "'" + str(path).replace("'", "\\'") + "'"


def paste_override(key: str, path: Path | str) -> str:
    """``key=path`` as a shell argument that reaches Hydra as one path: plain where it can be,
    quoted for Hydra (and the shell) where the path holds ',', '=' or other special characters."""
    text = str(path)
    if _PLAIN_PATH.fullmatch(text):
        return f"{key}={text}"
    argument = f"{key}={hydra_quoted(text)}"
    return f'"{argument}"' if not re.search(r'["$`\\!]', argument) else shlex.quote(argument)


def resume_command(run_dir: Path) -> str:
    return f"python train.py {paste_override('resume', run_dir)}"


class RunDir:
    """A run directory claimed by this process (rank 0) or joined by another rank of its run."""

    def __init__(self, path: Path, resuming: bool):
        self.path, self.resuming = Path(path).resolve(), resuming
        self.owner = launch_rank_is_zero()
        self._lock_fd: int | None = None
        self.fresh = False  # nothing of a run was here when claimed

    def claim(self) -> "RunDir":
        """Lock the directory for this process, refusing a finished run, a used directory (unless
        resuming) and a directory another process holds. Other ranks join without a lock."""
        if not self.owner:
            return self
        self._refuse_used()  # before anything is created: a finished run gets no lock file
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ConvlabError(
                f"{self.path} is in use by another running convlab process; wait for it or "
                "choose another hydra.run.dir"
            ) from None
        self._lock_fd = fd
        self._refuse_used()  # again, under the lock: a process may have finished in between
        self.fresh = not any((self.path / m).exists() for m in RUN_MARKS)
        return self

    def _refuse_used(self) -> None:
        if is_finished(self.path):
            raise ConvlabError(
                f"{self.path} holds a finished run, which is never changed; choose another "
                "hydra.run.dir"
            )
        used = any((self.path / m).exists() for m in RUN_MARKS)
        if used and not self.resuming:
            raise ConvlabError(
                f"{self.path} already holds a run; continue it with "
                f"{resume_command(self.path)}, or choose another hydra.run.dir"
            )

    def release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing drops the flock
            self._lock_fd = None

    def write_hydra_dir(self, cfg: DictConfig, hydra_cfg: DictConfig | None, overrides: list[str]):
        """The ``.hydra`` record Hydra would write: config.yaml, hydra.yaml, overrides.yaml.

        Written once, by the owner of a new run; a resumed run keeps its original record."""
        if not self.owner or self.resuming:
            return
        record = self.path / HYDRA_DIR
        record.mkdir(exist_ok=True)
        OmegaConf.save(cfg, record / "config.yaml")
        if hydra_cfg is not None:
            OmegaConf.save(hydra_cfg, record / "hydra.yaml")
        OmegaConf.save(OmegaConf.create(list(overrides)), record / "overrides.yaml")

    def record_failure(self, status: str, error: str, overrides: list[str], resumable: bool):
        """failure.json beside the run's files, so compare.py and people can tell it from a run."""
        if not self.owner or self._lock_fd is None:
            return  # never write into a directory this process does not hold
        failure = {
            "status": status,
            "error": error,
            "overrides": list(overrides),
            "resume": resume_command(self.path) if resumable else None,
        }
        tmp = self.path / f".{FAILURE}.tmp"
        tmp.write_text(json.dumps(failure, indent=2) + "\n")
        os.replace(tmp, self.path / FAILURE)

    def clear_failure(self) -> None:
        """A resumed run that finishes is no longer a failure."""
        if self.owner and self._lock_fd is not None:
            (self.path / FAILURE).unlink(missing_ok=True)

    def remove_if_empty_run(self) -> bool:
        """Remove a directory this process created that holds nothing but its record and lock:
        a single run that failed before its first step leaves nothing to confuse with a run."""
        if not (self.owner and self.fresh and self._lock_fd is not None):
            return False
        if {p.name for p in self.path.iterdir()} - {HYDRA_DIR, LOCK}:
            return False
        self.release()
        shutil.rmtree(self.path)
        return True


_OUTPUT_KEYS = ("hydra.run.dir", "hydra.sweep.dir", "paths.log_dir", "paths.root_dir")


def check_output_dirs(overrides: list[str]) -> None:
    """Refuse an output directory that cannot be created before Hydra tries to (with a
    traceback): the nearest existing ancestor of each must be a writable directory.

    Values Hydra resolves later (``${...}``) are left to the claim, which sees the resolved path.
    """
    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except OverrideParseException:
        return  # Hydra reports it itself
    named = {
        o.key_or_group: o.value()
        for o in parsed
        if o.key_or_group in _OUTPUT_KEYS and isinstance(o.value(), str) and "${" not in o.value()
    }
    if not named.keys() & {"hydra.run.dir", "hydra.sweep.dir", "paths.log_dir"}:
        named.setdefault("paths.root_dir", os.environ.get("CONVLAB_ROOT", "."))
    for key, value in named.items():
        existing = Path(value).absolute()
        while not existing.exists():
            existing = existing.parent
        if not existing.is_dir() or not os.access(existing, os.W_OK):
            what = "not a directory" if not existing.is_dir() else "not writable"
            raise ConvlabError(
                f"{key}={value} cannot be created: {existing} is {what}; choose another {key}"
                + (" or CONVLAB_ROOT" if key == "paths.root_dir" else "")
            )
