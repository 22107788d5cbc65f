"""What code a run ran: its commit, a hash of its source as it was, and the difference itself.

A commit alone names the code only when the tree was clean, and a researcher's first runs are of
a new model or dataset file that git does not know yet. The source is the package, the configs
and the repository root's Python files, tracked or not (ignored files excepted); a run whose
source differs from its commit keeps ``code.patch`` (``git diff`` plus the new files), so
``git checkout <commit> && git apply code.patch`` recreates it.
"""

import hashlib
import subprocess
from dataclasses import dataclass
from pathlib import Path

PATCH = "code.patch"
MAX_PATCH_BYTES = 4 << 20  # a source change, never a data file: larger ones are cut, and said so
PATHSPECS = ("src", "conf", ":(glob)*.py")


@dataclass(frozen=True)
class Source:
    commit: str | None  # None outside a git checkout
    dirty: bool | None  # None: unknown (no git)
    sha256: str  # of every source file's path and bytes, in path order
    patch: str  # the difference from the commit: code.patch's text ("" when clean)

    def record(self) -> dict:
        """What metrics.json keeps of it."""
        return {
            "commit": self.commit,
            "dirty": self.dirty,
            "sha256": self.sha256,
            "patch": PATCH if self.patch else None,
        }


def _git(repo: Path, *args: str, ok=(0,)) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, check=False
        )
    except OSError:
        return None
    return out.stdout if out.returncode in ok else None


def _files(repo: Path) -> list[str] | None:
    listed = _git(
        repo, "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", *PATHSPECS
    )
    return None if listed is None else sorted(set(filter(None, listed.split("\0"))))


def source_state(repo: Path) -> Source:
    """The source of ``repo`` as it is now."""
    files = _files(repo)
    if files is None:  # not a checkout: hash what is there
        files = sorted(
            str(p.relative_to(repo))
            for p in [
                *(repo / "src").rglob("*.py"),
                *(repo / "conf").rglob("*.yaml"),
                *repo.glob("*.py"),
            ]
        )
    digest = hashlib.sha256()
    for name in files:
        path = repo / name
        if path.is_file():  # a tracked file deleted in the tree counts by its absence
            digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    head = _git(repo, "rev-parse", "HEAD")
    if head is None:
        return Source(None, None, digest.hexdigest(), "")
    patch = _git(repo, "diff", "HEAD", "--binary", "--", *PATHSPECS) or ""
    new = _git(repo, "ls-files", "-z", "--others", "--exclude-standard", "--", *PATHSPECS) or ""
    for name in filter(None, new.split("\0")):  # exit 1: the files differ, as a new file does
        patch += _git(repo, "diff", "--no-index", "--binary", "/dev/null", name, ok=(0, 1)) or ""
    return Source(head.strip(), bool(patch), digest.hexdigest(), _bounded(patch))


def _bounded(patch: str) -> str:
    data = patch.encode()
    if len(data) <= MAX_PATCH_BYTES:
        return patch
    cut = data[:MAX_PATCH_BYTES].decode(errors="ignore")
    return f"{cut}\n# convlab: cut at {MAX_PATCH_BYTES} of {len(data)} bytes\n"
