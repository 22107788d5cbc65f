"""Train, validate, test and log a CNN: `python train.py model=lenet_modern trainer.devices=1`.

Thin on purpose: the work is in convlab.train.run; this file only sets up Hydra's command line.
"""

import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from convlab.config import check_output_dirs, expand_resume
from convlab.distributed import one_job_command_line
from convlab.errors import ConvlabError
from convlab.train import run


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float:
    """Returns val/acc, the objective of hyperparameter searches."""
    try:
        with one_job_command_line():  # DDP ranks re-run this job, not the sweep
            return run(cfg)["metrics"].get("val/acc", float("nan"))
    except ConvlabError as e:
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            raise  # the sweep records this job as failed and goes on
        sys.exit(f"convlab: error: {e}")


if __name__ == "__main__":
    try:
        sys.argv[1:] = expand_resume(sys.argv[1:])
        check_output_dirs(sys.argv[1:])
    except ConvlabError as e:
        sys.exit(f"convlab: error: {e}")
    main()
