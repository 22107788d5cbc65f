"""``train=false ckpt_path=<file>``: evaluate a checkpoint as the run that saved it built it; and
``init_from=<file>``: start a new run from it (convlab.warm_start).

Activation and pooling leave no trace in a state dict's shapes, so weights loaded into the command
line's network could be evaluated inside the wrong one. The network, the preprocessing and the
data keys that shape the input come from the checkpoint's saved config instead; the user may change
where the data is, the evaluation batch size and the trainer, but an explicit override of anything
that would evaluate another network is refused. A new run may also change the input keys: they
describe its own data, and the network's size follows them.
"""

from omegaconf import DictConfig, OmegaConf, open_dict

from convlab.checkpoint_io import CheckpointMeta
from convlab.config import model_choice
from convlab.errors import ConvlabError
from convlab.registry import check_plain_dict
from convlab.resume import config_differences, parse_overrides

# data keys that decide what the network sees; the others (root, batch sizes) may differ
INPUT_KEYS = ("resize", "mean", "std", "channels", "grey_to_rgb", "num_classes")
MODEL_CHOICES = ("model", "experiment")  # overrides that choose another network config
# model keys conf/model/ sets from the data: a new run on other data (classes, channels, size)
# changes them, and with them the shapes of the tensors they size
SIZE_KEYS = ("in_channels", "num_classes", "image_size")


def _touches_model(key: str) -> bool:
    return key in MODEL_CHOICES or key.startswith("model.")


def evaluation_config(cfg: DictConfig, meta: CheckpointMeta, overrides: list[str], path) -> None:
    """Put the checkpoint's model config and input keys into ``cfg`` (in place), refusing an
    explicit override that differs from them."""
    checkpoint_network(cfg, meta, overrides, f"ckpt_path={path}", path, "evaluate it")


def checkpoint_network(
    cfg: DictConfig,
    meta: CheckpointMeta,
    overrides: list[str],
    given: str,
    path,
    purpose: str,
    new_data: bool = False,
) -> None:
    """The checkpoint at ``path`` (``given`` on the command line, to ``purpose``): its model
    config and input keys into ``cfg`` (in place), the command line's input keys where it sets
    them. An explicit model override that differs is refused, and so is an input key unless
    ``new_data`` (a new run: its input keys describe its own data). With ``new_data`` the size
    keys (SIZE_KEYS) are the run's own: they follow its data, as conf/model/ sets them, or their
    explicit ``model.*`` override."""
    keys = {o.key_or_group for o in parse_overrides(overrides, "the command line")}
    chosen = model_choice()
    if keys & set(MODEL_CHOICES) and meta.model_name and chosen and chosen != meta.model_name:
        raise ConvlabError(
            f"{given} was trained as model={meta.model_name}, not model={chosen}; drop the "
            f"model override to {purpose} as it was trained"
        )
    saved_data = check_plain_dict(
        {k: v for k, v in meta.config["data"].items() if k in INPUT_KEYS},
        f"{path}'s data config",
    )
    with open_dict(cfg):
        for key, value in saved_data.items():
            if f"data.{key}" not in keys:
                cfg.data[key] = value
    sized = {f"model.{k}" for k in SIZE_KEYS} if new_data else set()
    compared = set() if new_data else {f"data.{k}" for k in INPUT_KEYS if f"data.{k}" in keys}
    touched = any(_touches_model(k) for k in keys)
    differences = [
        d
        for d in config_differences(cfg, meta.config, sections=("model", "data"))
        if (name := d.split(" ")[0]) in compared
        or (touched and name.startswith("model.") and name not in sized)
    ]
    if differences:
        raise ConvlabError(
            f"{given} was trained with other values: {'; '.join(differences)}; drop these "
            f"overrides to {purpose} as it was trained"
        )
    model = dict(meta.config["model"])
    if new_data:
        ours = OmegaConf.to_container(cfg.model, resolve=True)
        model.update({k: ours[k] for k in SIZE_KEYS if k in model and k in ours})
    with open_dict(cfg):
        cfg.model = OmegaConf.create(model)
