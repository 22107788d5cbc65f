"""Train, validate, test and log a CNN: `python train.py model=lenet_modern trainer.devices=1`.

Thin on purpose: the work is in convlab.train.run; this file only sets up Hydra's command line.
"""

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

import convlab.run_names  # noqa: F401  (registers the default run directory's resolvers)
from convlab.errors import ConvlabError
from convlab.hints import check_group_keys
from convlab.resume import AlreadyFinished, expand_resume
from convlab.rundir import FAILURE, check_output_dirs, resume_command
from convlab.signals import Interrupted, stop_on_signals
from convlab.sweep import interrupted_report, job_refused


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
        if not (Path(HydraConfig.get().runtime.output_dir) / FAILURE).exists():
            job_refused()  # refused before it held its directory: no record shows it
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
    stop_on_signals()  # from here on, any stop signal exits with 128 + its number
    try:
        main()
    except Interrupted as e:
        # a trial of an Optuna study kept in a database: the study's command reruns it
        study = getattr(e, "study_command", None)
        if e.run_dir is None:  # before a run held its directory: nothing of it was written
            then = f"; continue with: {study}" if study else ""
            print(f"convlab: {e} before a run held its directory{then}", file=sys.stderr)
            sys.exit(e.exit_code)
        if e.in_sweep:  # the sweep stops here: say what finished, what did not, what never began
            print(interrupted_report(e.run_dir), end="", file=sys.stderr)
            if study is None:
                sweep = resume_command(e.run_dir.parent, e.repeat)
                print(f"convlab: continue the whole sweep with: {sweep}", file=sys.stderr)
        then = f"continue with: {study or resume_command(e.run_dir, e.repeat)}"
        print(f"convlab: {e} in {e.run_dir}; {then}", file=sys.stderr)
        sys.exit(e.exit_code)
