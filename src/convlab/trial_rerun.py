"""A search's rerun of a trial that never ended continues that trial's training.

convlab's Optuna sweeper reruns an interrupted or killed trial as a new trial with its parameters
(hydra_plugins.convlab_optuna_sweeper). The new trial's job copies the interrupted trial's
checkpoints into its own directory and resumes from them, as a copied run directory resumes: with
every check of ``resume=``, so a rerun ends with the numbers of a trial that was never stopped.
Where the interrupted trial left no checkpoint, or its config is no longer this search's (a fixed
key changed between the two commands), the rerun trains from its first epoch and says why.

The interrupted trial's directory is only read. Its place is not data: it is this job's sibling
named with the interrupted trial's number in place of this one's (``trial_7`` for trial 9, a
rerun of 7), and only its regular files are read, never through a link.
"""

import os
import stat
from pathlib import Path

from omegaconf import DictConfig

from convlab import safe_files
from convlab.callbacks.pruning import search_trial
from convlab.errors import ConvlabError
from convlab.resume import check_resume_matches

CHECKPOINTS = "checkpoints"


def interrupted_trial_dir(output: Path) -> Path | None:
    """The directory of the trial this job's trial reruns, or None: not a rerun, or no directory
    of it where the search's own naming puts it."""
    trial = search_trial()
    if trial is None:
        return None
    from hydra_plugins.convlab_optuna_sweeper._impl import rerun_of

    old, number = rerun_of(trial), str(trial.number)
    if old is None or not output.name.endswith(number):
        return None
    source = output.parent / f"{output.name[: -len(number)]}{old}"
    return source if _regular(source / CHECKPOINTS / "last.ckpt") else None


def _regular(path: Path) -> bool:
    """A regular file reached through no link: the interrupted trial's folders included."""
    try:
        return not any(p.is_symlink() for p in (path.parent.parent, path.parent)) and (
            stat.S_ISREG(os.lstat(path).st_mode)
        )
    except OSError:
        return False


def continued_trial(cfg: DictConfig, output: Path) -> Path | None:
    """The interrupted trial this job continues, or None where it trains from its first epoch."""
    source = interrupted_trial_dir(output)
    if source is None:
        return None
    from convlab.checkpoint_io import read_meta  # torch: only a rerun gets here

    last = source / CHECKPOINTS / "last.ckpt"
    try:
        _, meta = read_meta(last)
        check_resume_matches(cfg, meta, source)
    except ConvlabError as e:
        print(f"convlab: this rerun trains from its first epoch: {e}")
        return None
    return source


def copy_checkpoints(source: Path, run_dir: Path) -> None:
    """The interrupted trial's checkpoints into this run's folder (last.ckpt and the best one:
    what Lightning restores names both), each read without following a link."""
    with safe_files.open_dir(source, CHECKPOINTS, create=False) as folder:
        for name in sorted(os.listdir(folder)):
            if not name.endswith(".ckpt") or safe_files.TEMPORARY.fullmatch(name):
                continue
            try:
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=folder)
            except OSError as e:
                raise ConvlabError(
                    f"{source / CHECKPOINTS / name} cannot be read ({e.strerror}); convlab never "
                    "reads a checkpoint through a link: remove it, or start a new search"
                ) from None
            with os.fdopen(fd, "rb") as f:
                if stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                    safe_files.write_bytes(run_dir, f"{CHECKPOINTS}/{name}", f.read())
    print(f"convlab: continues the interrupted trial in {source} from its last checkpoint")
