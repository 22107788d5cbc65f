"""``train=false ckpt_path=<file>``: evaluate a checkpoint as the run that saved it built it.

Activation and pooling leave no trace in a state dict's shapes, so weights loaded into the command
line's network could be evaluated inside the wrong one. The network, the preprocessing and the
data keys that shape the input come from the checkpoint's saved config instead; the user may change
where the data is, the evaluation batch size and the trainer, but an explicit override of anything
that would evaluate another network is refused.
"""

from omegaconf import DictConfig, OmegaConf, open_dict

from convlab.checkpoint_io import CheckpointMeta
from convlab.config import model_choice
from convlab.errors import ConvlabError
from convlab.registry import check_plain_dict
from convlab.resume import config_differences, parse_overrides

# data keys that decide what the network sees; the others (root, batch sizes) may differ
INPUT_KEYS = ("resize", "mean", "std", "channels", "num_classes")
MODEL_CHOICES = ("model", "experiment")  # overrides that choose another network config


def _touches_model(key: str) -> bool:
    return key in MODEL_CHOICES or key.startswith("model.")


def evaluation_config(cfg: DictConfig, meta: CheckpointMeta, overrides: list[str], path) -> None:
    """Put the checkpoint's model config and input keys into ``cfg`` (in place), refusing an
    explicit override that differs from them."""
    keys = {o.key_or_group for o in parse_overrides(overrides, "the command line")}
    chosen = model_choice()
    if keys & set(MODEL_CHOICES) and meta.model_name and chosen and chosen != meta.model_name:
        raise ConvlabError(
            f"ckpt_path={path} was trained as model={meta.model_name}, not model={chosen}; drop "
            "the model override to evaluate it as it was trained"
        )
    saved_data = check_plain_dict(
        {k: v for k, v in meta.config["data"].items() if k in INPUT_KEYS},
        f"{path}'s data config",
    )
    with open_dict(cfg):
        for key, value in saved_data.items():
            if f"data.{key}" not in keys:
                cfg.data[key] = value
    differences = [
        d
        for d in config_differences(cfg, meta.config, sections=("model", "data"))
        if (d.startswith("model.") and any(_touches_model(k) for k in keys))
        or d.split(" ")[0] in {f"data.{k}" for k in INPUT_KEYS if f"data.{k}" in keys}
    ]
    if differences:
        raise ConvlabError(
            f"ckpt_path={path} was trained with other values: {'; '.join(differences)}; drop "
            "these overrides to evaluate it as it was trained"
        )
    with open_dict(cfg):
        cfg.model = OmegaConf.create(meta.config["model"])
