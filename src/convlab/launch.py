"""The words a printed command starts with: ``python``, or the launcher that started every rank.

A run that torchrun or srun started as several processes continues only when all of them start
again: ``python train.py resume=...`` would start one process, which refuses the run's recorded
``devices``/``num_nodes``. The launcher's words are only printed, never run or used as a path.
"""

import os
import re
import shlex
import sys
from pathlib import Path

PYTHON = ["python"]


def _torchrun() -> list[str] | None:
    """torchrun's own command line up to the script (its options: processes, nodes, rendezvous),
    read from the agent process that started this worker; None where it cannot be read."""
    try:
        words = Path(f"/proc/{os.getppid()}/cmdline").read_bytes().decode().split("\0")
    except (OSError, UnicodeDecodeError):
        return None
    script = os.path.basename(sys.argv[0])
    at = next((i for i, w in enumerate(words) if i and os.path.basename(w) == script), None)
    if at is None:
        return None
    launcher = words[:at]
    # `python .../bin/torchrun ...` is how a console script shows itself: print what was typed
    if len(launcher) > 1 and os.path.basename(launcher[1]) == "torchrun":
        return ["torchrun", *launcher[2:]]
    if launcher and os.path.basename(launcher[0]).startswith("python"):
        return ["python", *launcher[1:]]  # python -m torch.distributed.run ...
    return launcher or None


def _count(name: str) -> int | None:
    """A SLURM count: its leading digits (SLURM_NTASKS_PER_NODE reads e.g. ``4(x2)``)."""
    found = re.match(r"\d+", os.environ.get(name, ""))
    return int(found.group()) if found else None


def _srun() -> list[str]:
    """srun with this step's nodes and tasks per node (Lightning's SLURM mode takes each task for
    a rank, and asks for --ntasks-per-node rather than --ntasks)."""
    nodes = _count("SLURM_NNODES") or 1
    per_node = _count("SLURM_NTASKS_PER_NODE") or _count("SLURM_NTASKS") // nodes
    return ["srun", f"--nodes={nodes}", f"--ntasks-per-node={per_node}", "python"]


def launcher() -> list[str]:
    """The words before ``train.py`` that start this run again, as the shell would split them."""
    if os.environ.get("TORCHELASTIC_RUN_ID"):
        return _torchrun() or PYTHON
    if os.environ.get("SLURM_STEP_ID") and (_count("SLURM_NTASKS") or 1) > 1:
        return _srun()
    return PYTHON


def command_start() -> str:
    return shlex.join(launcher())
