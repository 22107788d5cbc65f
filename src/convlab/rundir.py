"""Run directories: claimed by one process, recorded by convlab, never changed once finished.

Hydra is told not to write into a run directory (``hydra.output_subdir: null``); convlab claims
the directory first, with an OS lock held for the life of the process, and only then writes the
``.hydra`` record. A lock dies with its process (kill -9, out of memory), so it never blocks a
later ``resume=``. A directory holding ``metrics.json`` is finished: nothing is written into it.
Nothing below a claimed directory is written through a symbolic link (``convlab.safe_files``).
"""

import fcntl
import json
import os
import re
import secrets
import shlex
import shutil
import sys
import time
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import OverrideParseException
from omegaconf import DictConfig, OmegaConf

from convlab import safe_files
from convlab.errors import ConvlabError
from convlab.launch import command_start

LOCK = ".lock"
HYDRA_DIR = ".hydra"
METRICS = "metrics.json"
FAILURE = "failure.json"
# what a run leaves in its directory: any of them means the directory holds (part of) a run
RUN_MARKS = (METRICS, "checkpoints", HYDRA_DIR, FAILURE)
# what a sweep leaves in its directory: Hydra's record, Optuna's results, convlab's summary
SWEEP_MARKS = ("multirun.yaml", "optimization_results.yaml", "sweep_summary.md")

_PLAIN_PATH = re.compile(r"[\w./+-]+")
# the variables that make a process another rank than 0: those Lightning's rank_zero_only reads,
# and a node's rank (a second node's first process, before Lightning computes its global rank)
_RANK_VARIABLES = ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK", "NODE_RANK",
                   "GROUP_RANK")  # fmt: skip
_WORLD_VARIABLES = ("WORLD_SIZE", "SLURM_NTASKS", "JSM_NAMESPACE_SIZE")
# submitit's local executor's job id: the same for a job's tasks and for a requeued job's restart
_SUBMITIT_LOCAL_JOB = "SUBMITIT_LOCAL_JOB_ID"
# what names one launch on every rank alike; rank 0 writes it into the lock file once it holds
# the directory. Ranks that Lightning starts itself inherit CLAIM_TOKEN from rank 0 instead.
_LAUNCH_VARIABLES = ("TORCHELASTIC_RUN_ID", "SLURM_JOB_ID", "SLURM_STEP_ID", "MASTER_ADDR",
                     "MASTER_PORT", _SUBMITIT_LOCAL_JOB)  # fmt: skip
CLAIM_TOKEN = "CONVLAB_CLAIM_TOKEN"


def _nonzero_rank() -> tuple[str, str] | None:
    """The first rank variable that says this process is not rank 0, or None."""
    for name in _RANK_VARIABLES:
        value = os.environ.get(name, "0").strip()
        if value not in ("", "0"):
            return name, value
    return None


def is_other_rank() -> bool:
    """Another rank than 0 of a distributed launch: it joins rank 0's run and writes nothing."""
    return _nonzero_rank() is not None


def _world_size() -> int:
    sizes = [os.environ.get(name, "").strip() for name in _WORLD_VARIABLES]
    return max([int(s) for s in sizes if s.isdigit()], default=1)


def _launch_token() -> str | None:
    """This launch's name as every rank sees it, or None outside a distributed launcher."""
    values = [f"{name}={os.environ[name]}" for name in _LAUNCH_VARIABLES if os.environ.get(name)]
    return ";".join(values) or None


def lock_tokens(run_dir: Path) -> set[str]:
    """What the process that last claimed the directory wrote into its lock file (its claim's
    token, its launch's), never read through a link."""
    try:
        fd = os.open(run_dir / LOCK, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return set()
    try:
        return set(os.read(fd, 4096).decode(errors="replace").split())
    finally:
        os.close(fd)


def claimed_by_this_local_job(run_dir: Path) -> bool:
    """The directory was last claimed by this very submitit local job: its task was requeued
    (submitit's local executor starts it again, under the same job id, and counts no restart)."""
    job = os.environ.get(_SUBMITIT_LOCAL_JOB, "").strip()
    mark = f"{_SUBMITIT_LOCAL_JOB}={job}"
    return bool(job) and any(mark in token.split(";") for token in lock_tokens(run_dir))


def is_finished(run_dir: Path) -> bool:
    return (run_dir / METRICS).is_file()


def holds_run(directory: Path) -> bool:
    """A convlab run (finished, interrupted or running) is here: its record or its result. A
    ``checkpoints`` folder alone is common in projects, so it does not count."""
    marks = (f"{HYDRA_DIR}/overrides.yaml", METRICS, FAILURE)
    return any(os.path.lexists(directory / mark) for mark in marks)


def holds_sweep(directory: Path) -> bool:
    return any(os.path.lexists(directory / mark) for mark in SWEEP_MARKS)


def enclosing_run(path: Path, allowed: Path | None = None) -> Path | None:
    """The nearest directory at or above ``path`` that holds a run or a sweep (``allowed``
    excepted: the sweep a job belongs to), or None."""
    for directory in (path, *path.parents):
        if directory != allowed and (holds_run(directory) or holds_sweep(directory)):
            return directory
    return None


def check_run_location(run_dir: Path, resuming: bool, sweep_dir: Path | None = None) -> None:
    """A run is never written inside another run or sweep: it would change that one's files.
    A sweep's own jobs sit in it; a resumed job sits in the sweep it was part of."""
    allowed = sweep_dir
    if resuming and holds_sweep(run_dir.parent):
        allowed = run_dir.parent
    if other := enclosing_run(run_dir.parent, allowed):
        raise ConvlabError(
            f"{run_dir} is inside {other}, another run's or sweep's directory, whose files are "
            "never changed; choose another hydra.run.dir"
        )


def hydra_quoted(path: Path | str) -> str:
    """A path as one Hydra override value: a ',' or '=' in it stays part of the path."""
    return "'" + str(path).replace("'", "\\'") + "'"


def refuse_interpolation(key: str, path: Path | str) -> None:
    """A path is never an OmegaConf expression: Hydra would resolve ``${...}`` in it (an
    environment variable, a decoded value) wherever the value is read."""
    if "${" in str(path):
        raise ConvlabError(
            f"{key}={str(path)!r} holds '${{', which Hydra would resolve as an expression; "
            "rename the directory"
        )


def paste_override(key: str, path: Path | str) -> str:
    """``key=path`` as a shell argument that reaches Hydra as one path: plain where it can be,
    quoted for Hydra (and the shell) where the path holds ',', '=' or other special characters."""
    text = str(path)
    refuse_interpolation(key, text)
    if _PLAIN_PATH.fullmatch(text):
        return f"{key}={text}"
    argument = f"{key}={hydra_quoted(text)}"
    return f'"{argument}"' if not re.search(r'["$`\\!]', argument) else shlex.quote(argument)


def resume_command(run_dir: Path, repeat: list[str] = ()) -> str:
    """The command that continues a run, started as this process was (by torchrun or srun for a
    run of several processes: convlab.launch); ``repeat`` are the run's overrides that resume
    never takes from a record (those naming code or a path: convlab.resume), so they are given
    again."""
    given = [shlex.quote(o) for o in repeat]  # as typed: Hydra parses them again the same way
    start = f"{command_start()} train.py"
    return " ".join([start, paste_override("resume", run_dir), *given])


class RunDir:
    """A run directory claimed by this process (rank 0) or joined by another rank of its run."""

    def __init__(
        self,
        path: Path,
        resuming: bool,
        sweep_dir: Path | None = None,
        claim_timeout: float = 300,
        repeat: list[str] = (),
    ):
        self.path, self.resuming = Path(path).resolve(), resuming
        self.sweep_dir = Path(sweep_dir).resolve() if sweep_dir else None
        self.claim_timeout, self.repeat = claim_timeout, list(repeat)
        rank = _nonzero_rank()
        if rank and _world_size() <= 1:
            name, value = rank
            raise ConvlabError(
                f"{name}={value} makes this process rank {value} of a distributed launch, but "
                "no world size is set (WORLD_SIZE); unset it, or start the ranks with their "
                "launcher (torchrun, srun)"
            )
        self.owner = rank is None
        self._lock_fd: int | None = None
        self.fresh = False  # nothing of a run was here when claimed
        self.training = False  # set once training starts: a refusal before it changes nothing

    def claim(self) -> "RunDir":
        """Lock the directory for this process, refusing a finished run, a used directory (unless
        resuming), a directory inside another run or sweep, a planted link, and a directory
        another process holds. Other ranks wait for rank 0 to hold it."""
        if not self.owner:
            return self._join()
        self._refuse_used()  # before anything is created: a finished run gets no lock file
        check_run_location(self.path, self.resuming, self.sweep_dir)
        self.path.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as e:
            raise ConvlabError(
                f"{self.path / LOCK} cannot be opened ({e.strerror}); a link or a folder there "
                "was not made by convlab: remove it, or choose another hydra.run.dir"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ConvlabError(
                f"{self.path} is in use by another running convlab process; wait for it or "
                "choose another hydra.run.dir"
            ) from None
        self._lock_fd = fd
        try:
            self._refuse_used()  # again, under the lock: a process may have finished in between
            safe_files.refuse_links(self.path)
            self._refuse_foreign_checkpoints()
        except ConvlabError:
            self.release()
            raise
        safe_files.remove_stale_temporaries(self.path)
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
                f"{resume_command(self.path, self.repeat)}, or choose another hydra.run.dir"
            )

    def _refuse_foreign_checkpoints(self) -> None:
        """Lightning's SLURM requeue checkpoints (``hpc_ckpt_*.ckpt``) are loaded silently when
        found; convlab turns requeueing off and never writes one, so one here was planted."""
        if planted := sorted(self.path.glob("hpc_ckpt_*")):
            raise ConvlabError(
                f"{planted[0]} was not written by convlab (it never writes hpc_ckpt files) and "
                "Lightning would load it; remove it before resuming"
            )

    def publish_claim(self) -> None:
        """Write this launch's tokens into the lock file once the run's checks have passed: other
        ranks start when they read theirs. Ranks Lightning starts itself inherit a fresh token
        through the environment."""
        if not self.owner:
            return
        token = secrets.token_hex(16)
        os.environ[CLAIM_TOKEN] = token
        text = "\n".join(t for t in (token, _launch_token()) if t) + "\n"
        os.ftruncate(self._lock_fd, 0)
        os.pwrite(self._lock_fd, text.encode(), 0)

    def _claim_tokens(self) -> set[str]:
        return lock_tokens(self.path)

    def _join(self) -> "RunDir":
        """Another rank: wait until rank 0 of this launch holds the directory. It writes nothing,
        so a directory rank 0 refused (finished, in use) is never run in."""
        token = os.environ.get(CLAIM_TOKEN) or _launch_token()
        if token is None:
            raise ConvlabError(
                "this process is not rank 0, and no launcher variable (MASTER_ADDR and "
                "MASTER_PORT, SLURM_JOB_ID, TORCHELASTIC_RUN_ID) says which launch it belongs to; "
                "start it with its launcher"
            )
        deadline = time.monotonic() + self.claim_timeout
        while token not in self._claim_tokens():
            if is_finished(self.path):
                self._refuse_used()
            if time.monotonic() > deadline:
                raise ConvlabError(
                    f"rank 0 of this launch did not claim {self.path} within "
                    f"{self.claim_timeout:g} s (claim_timeout); start rank 0 with the same "
                    "hydra.run.dir, or raise claim_timeout"
                )
            time.sleep(0.2)
        return self

    def release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing drops the flock
            self._lock_fd = None
            os.environ.pop(CLAIM_TOKEN, None)

    def write(self, relative: str, text: str) -> None:
        """A file of this run, written by its owner only, never through a link."""
        if self.owner and self._lock_fd is not None:
            safe_files.write_text(self.path, relative, text)

    def write_hydra_dir(self, cfg: DictConfig, hydra_cfg: DictConfig | None, overrides: list[str]):
        """The ``.hydra`` record Hydra would write: config.yaml, hydra.yaml, overrides.yaml.

        Written once, by the owner of a new run; a resumed run keeps its original record."""
        if os.path.lexists(self.path / HYDRA_DIR / "overrides.yaml"):
            return
        self.write(f"{HYDRA_DIR}/config.yaml", OmegaConf.to_yaml(cfg))
        if hydra_cfg is not None:
            self.write(f"{HYDRA_DIR}/hydra.yaml", OmegaConf.to_yaml(hydra_cfg))
        self.write(f"{HYDRA_DIR}/overrides.yaml", OmegaConf.to_yaml(OmegaConf.create(overrides)))

    def record_failure(self, status: str, error: str, overrides: list[str], resumable: bool):
        """failure.json beside the run's files, so compare.py and people can tell it from a run."""
        failure = {
            "status": status,
            "error": error,
            "overrides": list(overrides),
            "resume": resume_command(self.path, self.repeat) if resumable else None,
        }
        try:
            self.write(FAILURE, json.dumps(failure, indent=2) + "\n")
        except OSError as e:  # a full disk: the error that stopped the run is what to report
            print(f"convlab: could not write {self.path / FAILURE}: {e.strerror}", file=sys.stderr)

    def clear_failure(self) -> None:
        """A resumed run that finishes is no longer a failure."""
        if self.owner and self._lock_fd is not None:
            (self.path / FAILURE).unlink(missing_ok=True)

    def remove_if_empty_run(self) -> bool:
        """Remove a directory this process created that holds nothing but its record and lock:
        a single run that failed before its first step leaves nothing to confuse with a run."""
        if not (self.owner and self.fresh and self._lock_fd is not None):
            return False
        if {p.name for p in self.path.iterdir()} - {HYDRA_DIR, LOCK, "convlab.log", "code.patch"}:
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
    root = os.environ.get("CONVLAB_ROOT", ".")
    refuse_interpolation("CONVLAB_ROOT", root)  # oc.env returns it, and Hydra would resolve it
    if not named.keys() & {"hydra.run.dir", "hydra.sweep.dir", "paths.log_dir"}:
        named.setdefault("paths.root_dir", root)
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
