"""One log, kept: what a run says on the console also goes to ``<run dir>/convlab.log``.

A SLURM job's output file is otherwise the only copy of a run's messages (Lightning's, and
convlab's last lines: the test accuracy, where everything is). The log is opened once the run
holds its directory, by rank 0 only, appended to on resume, and written under the run
directory's rule: never through a link (``convlab.safe_files``).
"""

import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from convlab.errors import ConvlabError
from convlab.safe_files import open_dir

LOG = "convlab.log"
# Lightning's own loggers stop passing records up when the root logger had no handler at their
# import (a notebook): the run's file then listens to them directly
_LIBRARIES = ("lightning.pytorch", "lightning.fabric")

_file: TextIO | None = None  # the open run log, if any


def say(message: str, show: Callable[[str], None] = print) -> None:
    """A line for the user: shown on the console (by ``show``: a progress bar prints above
    itself), and in the run's log while one is open."""
    show(message)
    if _file is not None:
        _file.write(message + "\n")
        _file.flush()


@contextmanager
def run_log(run_dir: Path, owner: bool) -> Iterator[None]:
    """The run's log open for the block: library log records and ``say``'s lines go into it."""
    global _file
    if not owner:
        yield
        return
    with open_dir(run_dir) as dir_fd:
        fd = os.open(
            LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644, dir_fd=dir_fd
        )
    if os.fstat(fd).st_nlink != 1:  # a hard link: appending would write into another file
        os.close(fd)
        raise ConvlabError(f"{run_dir / LOG} is a hard link to another file; refusing to write it")
    _file = os.fdopen(fd, "a", buffering=1, encoding="utf-8")
    handler = logging.StreamHandler(_file)
    handler.setFormatter(logging.Formatter("%(message)s"))
    listeners = [logging.getLogger()]
    listeners += [log for name in _LIBRARIES if not (log := logging.getLogger(name)).propagate]
    for log in listeners:
        log.addHandler(handler)
    try:
        yield
    finally:
        for log in listeners:
            log.removeHandler(handler)
        _file.close()
        _file = None


def one_console_line_each() -> None:
    """Lightning gives its ``lightning`` logger a console handler of its own ("INFO: ..." on
    stderr) and lets records pass up too: under Hydra, whose root handler prints them on
    stdout, every line would show twice. The root handler is kept."""
    if logging.getLogger().hasHandlers():
        library = logging.getLogger("lightning")
        for handler in list(library.handlers):
            if isinstance(handler, logging.StreamHandler) and handler.stream in (
                sys.stderr,
                sys.stdout,
            ):
                library.removeHandler(handler)
