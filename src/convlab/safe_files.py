"""Writes below a directory convlab holds (a run, a sweep, a report) that never follow a link.

A run directory may come from someone else, and a symbolic link planted in it (``metrics.json``
-> ``~/.bashrc``, ``checkpoints`` -> another run) would turn an ordinary write into a write
anywhere. Every write here walks from the held directory one component at a time, each opened
with ``O_NOFOLLOW``, and creates its file under a fresh name (``O_EXCL``) that is renamed over
the target: a link in the way is refused, never followed, and never replaced silently.
"""

import errno
import os
import re
import secrets
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from convlab.errors import ConvlabError, causes

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
# what a write is answered with on a full disk, a full quota and past a file-size limit (ulimit -f)
NO_ROOM = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
# the temporary names below (and the fixed ones earlier versions used): a leftover of a killed
# process, removed when the directory is next claimed
TEMPORARY = re.compile(r"\..+\.tmp")


class LinkRefused(ConvlabError):
    """A symbolic link where a file or folder that convlab writes should be."""


def _refuse(path: Path) -> LinkRefused:
    return LinkRefused(
        f"{path} is a symbolic link (or not what convlab wrote there); convlab never writes "
        "through a link: remove it, or use another directory"
    )


def _parts(relative: Path | str) -> list[str]:
    parts = Path(relative).parts
    if not parts or Path(relative).is_absolute() or any(p in ("..", ".") for p in parts):
        raise ValueError(f"not a plain relative path: {relative!r}")
    return list(parts)


@contextmanager
def open_dir(root: Path, relative: Path | str = ".", create: bool = True) -> Iterator[int]:
    """A descriptor of ``root/relative``, reached without following a link below ``root``
    (created, with its parents, where missing and ``create``)."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        walked = Path(root)
        for part in [] if str(relative) == "." else _parts(relative):
            walked = walked / part
            try:
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                os.mkdir(part, 0o755, dir_fd=fd)
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as e:
                if e.errno in (errno.ELOOP, errno.ENOTDIR):  # a link, or a file, in the way
                    raise _refuse(walked) from None
                raise
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


def write_with(root: Path, relative: Path | str, write: Callable[[BinaryIO], None]) -> None:
    """``root/relative`` replaced atomically by what ``write`` puts in a new file: a reader never
    sees half a file, a crash leaves the old one, and no link below ``root`` is followed. A failed
    write (a full disk) is an ``OSError`` naming ``root/relative``, anything else (a signal's
    ``Interrupted``) goes through as raised; either way the old file stays, the new one goes."""
    *folders, name = _parts(relative)
    with open_dir(root, Path(*folders) if folders else ".") as dir_fd:
        tmp = f".{name}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
        fd = os.open(
            tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=dir_fd
        )
        try:
            with os.fdopen(fd, "wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            _refuse_link_at(dir_fd, name, Path(root, relative))
            os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException as e:
            os.unlink(tmp, dir_fd=dir_fd)
            failed = next((c for c in causes(e) if isinstance(c, OSError)), None)
            if isinstance(e, Exception) and failed is not None:  # named: torch.save names nothing
                raise OSError(failed.errno, failed.strerror, str(Path(root, relative))) from None
            raise


def no_room(error: BaseException) -> OSError | None:
    """The full disk, quota or file-size limit behind ``error``, wherever it was raised: through
    torch.save (a RuntimeError raised while handling it), a ConvlabError, a logger's thread."""
    return next((c for c in causes(error) if isinstance(c, OSError) and c.errno in NO_ROOM), None)


def write_bytes(root: Path, relative: Path | str, data: bytes) -> None:
    write_with(root, relative, lambda f: f.write(data))


def write_text(root: Path, relative: Path | str, text: str) -> None:
    write_bytes(root, relative, text.encode("utf-8"))


def _refuse_link_at(dir_fd: int, name: str, shown: Path) -> None:
    """A link where the file goes is refused: replacing it would hide what someone planted."""
    try:
        mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISLNK(mode) or stat.S_ISDIR(mode):
        raise _refuse(shown)


def refuse_links(root: Path) -> None:
    """Refuse a directory holding a symbolic link anywhere below it: convlab never makes one, so
    one there was planted, and a logger (TensorBoard's, the CSV log) would write through it."""
    for folder, dirs, files in os.walk(root):  # os.walk lists links but never descends into them
        for name in (*dirs, *files):
            if os.path.islink(os.path.join(folder, name)):
                raise _refuse(Path(folder, name))


def remove_stale_temporaries(root: Path, folders: tuple[str, ...] = (".", "checkpoints")) -> None:
    """Temporary files of a killed process (a checkpoint half written): removed by the process
    that holds the directory next, never a link's target (unlink removes the link itself)."""
    for relative in folders:
        try:
            with open_dir(root, relative, create=False) as dir_fd:
                for name in os.listdir(dir_fd):
                    if TEMPORARY.fullmatch(name):
                        mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
                        if not stat.S_ISDIR(mode):
                            os.unlink(name, dir_fd=dir_fd)
        except FileNotFoundError:
            continue
