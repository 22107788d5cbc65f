"""A single run's default directory, ``outputs/<kind>/<time>[_<model>][_<experiment>]``:
TensorBoard's run list then says what each run was, and quick checks and evaluations never sit
among the runs (``tensorboard --logdir outputs/runs`` shows only real training runs)."""

from omegaconf import DictConfig, OmegaConf


def run_kind(*, _root_: DictConfig) -> str:
    """``debug`` for a debug preset, ``evals`` for ``train=false``, else ``runs``."""
    if _root_.hydra.runtime.choices.get("debug"):
        return "debug"
    return "runs" if _root_.train else "evals"


def run_suffix(*, _root_: DictConfig) -> str:
    """``_<model>[_<experiment>]``, the model's left out where the experiment's name begins with
    it (``_lenet_notes``, not ``_lenet_lenet_notes``); none for ``train=false`` or ``init_from``,
    whose network is the checkpoint's, not the model option's. A nested option's slash becomes a
    dash, so that one run stays one directory."""
    if not _root_.train or _root_.get("init_from"):
        return ""
    choices = _root_.hydra.runtime.choices
    model, experiment = (
        str(choices.get(g) or "").replace("/", "-") for g in ("model", "experiment")
    )
    names = [experiment] if experiment.startswith(model) else [model, experiment]
    return "".join(f"_{name}" for name in names if name)


OmegaConf.register_new_resolver("convlab_run_kind", run_kind, replace=True)
OmegaConf.register_new_resolver("convlab_run_suffix", run_suffix, replace=True)
