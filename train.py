"""Train, validate, test and log a CNN: `python train.py model=lenet_modern trainer.devices=1`.

Thin on purpose: the work is in convlab.train.run; this file only sets up Hydra's command line.
"""

import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from convlab.errors import ConvlabError
from convlab.hints import check_group_keys
from convlab.resume import AlreadyFinished, expand_resume
from convlab.rundir import check_output_dirs, resume_command
from convlab.signals import Interrupted
from convlab.sweep import interrupted_report


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Returns val/acc, the objective of hyperparameter searches."""
    # imported here, not above: --help, --cfg and tab completion answer without torch or Lightning
    from convlab.distributed import one_job_command_line
    from convlab.noise import silence_library_noise
    from convlab.train import run

    silence_library_noise()

    try:
        with one_job_command_line():  # DDP ranks re-run this job, not the sweep
            return run(cfg).metrics.get("val/acc", float("nan"))
    except ConvlabError as e:
        if HydraConfig.get().mode != RunMode.MULTIRUN:
            sys.exit(f"convlab: error: {e}")
        # the job's failure.json records it and the sweep goes on; no value is a failed trial to
        # Optuna (a NaN would be refused by it with a traceback)
        print(f"convlab: error: {e}", file=sys.stderr)
        return None


if __name__ == "__main__":
    try:
        sys.argv[1:] = expand_resume(sys.argv[1:])
        check_output_dirs(sys.argv[1:])
        check_group_keys(sys.argv[1:])
    except AlreadyFinished as e:
        print(f"convlab: {e}")
        sys.exit(0)
    except ConvlabError as e:
        sys.exit(f"convlab: error: {e}")
    try:
        main()
    except Interrupted as e:
        if e.in_sweep:  # the sweep stops here: say what finished, what did not, what never began
            print(interrupted_report(e.run_dir), end="", file=sys.stderr)
        then = (
            f"continue with: {resume_command(e.run_dir, e.paths)}"
            if e.resumable
            else "start it again"
        )
        print(f"convlab: {e} in {e.run_dir}; {then}", file=sys.stderr)
        sys.exit(e.exit_code)
