"""What TensorBoard's HPARAMS tab shows: the keys a run or sweep changed, first, then a short
fixed set that matters in every comparison. Every flattened config key would make ~90 columns, and
the model's class name cannot tell `lenet` from `lenet_modern`: the group's option name can."""

import math

from omegaconf import DictConfig, OmegaConf

from convlab.resume import parse_overrides

FIXED = (
    "data",
    "model",
    "optimizer",
    "optimizer.lr",
    "scheduler",
    "augment",
    "data.batch_size",
    "data.resize",
    "trainer.max_epochs",
    "seed",
)
# where things are, not what was run: never a column
HIDDEN = (
    "hydra",
    "paths",
    "callbacks",
    "logger",
    "resume",
    "ckpt_path",
    "init_from",
    "allow",
    "threads",
    "data.root",
    "data.system_dir",
    "data.download",
    "trainer.enable_progress_bar",
)


def _shown(key: str) -> bool:
    return not any(key == h or key.startswith(f"{h}.") or key.startswith(f"{h}/") for h in HIDDEN)


def hyperparameters(
    cfg: DictConfig, overrides: list[str], choices: dict, first=(), log_scaled=()
) -> dict:
    """The keys in ``first`` (a sweep's varying keys), the other changed keys in command-line
    order, then FIXED; group choices by option name. A key in ``log_scaled`` (a search samples it
    on a log scale) is followed by ``log10(<key>)``: HPARAMS draws every axis linearly, where
    1e-4 and 1e-3 would sit on top of each other."""
    changed = [o.key_or_group for o in parse_overrides(overrides, "the run's overrides")]
    swept = [k for k in changed if k in first]
    keys = list(dict.fromkeys(k for k in [*swept, *changed, *FIXED] if _shown(k)))
    shown = {}
    for key in keys:
        value = choices.get(key) if key in choices else OmegaConf.select(cfg, key, default=None)
        if isinstance(value, DictConfig):
            continue  # a whole section set at once (+trainer.x={...}): its keys are in the record
        if not isinstance(value, int | float | str | bool):
            value = str(OmegaConf.to_container(value) if OmegaConf.is_config(value) else value)
        shown[key] = value
        if key in log_scaled and isinstance(value, int | float) and value > 0:
            shown[f"log10({key})"] = math.log10(value)
    return shown
