"""Lightning's DDP launcher re-executes the command line for the other ranks; in a Hydra multirun
that command line is the whole sweep. These helpers make it re-run only the current job."""

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import torch.distributed as dist
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import read_write

# set by Lightning for its DDP processes; a leftover value would make the next job of the sweep
# believe it is already a spawned rank
_DDP_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")


@contextmanager
def one_job_command_line() -> Iterator[None]:
    """In a multirun, present this job as a single run (its own overrides, its own directory)
    to whatever re-executes ``sys.argv``, and clean up the process group afterwards."""
    hydra = HydraConfig.get()
    if hydra.mode != RunMode.MULTIRUN:
        yield
        return
    argv, env = sys.argv[:], {k: os.environ.get(k) for k in _DDP_ENV}
    sys.argv[1:] = list(hydra.overrides.task)
    with read_write(hydra):
        hydra.run.dir = hydra.runtime.output_dir
    try:
        yield
    finally:
        sys.argv[:] = argv
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
        for key, value in env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
