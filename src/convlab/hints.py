"""A one-line hint for a key set in the wrong group (`model.lr=0.1` means `optimizer.lr=0.1`).

Hydra's own answer to an unknown key is to suggest adding it with `+model.lr`, which the model's
constructor then refuses. Checked before Hydra composes, from the group files alone (no imports).
"""

from functools import cache

from omegaconf import OmegaConf

from convlab.errors import ConvlabError
from convlab.paths import CONF_DIR


@cache
def group_keys() -> dict[str, frozenset[str]]:
    """Each config group's top-level keys, over all its options."""
    keys: dict[str, set[str]] = {}
    for path in CONF_DIR.glob("*/*.yaml"):
        if path.parent.name in ("experiment", "hparams_search", "debug", "hydra"):
            continue  # global packages: their keys are not the group's
        config = OmegaConf.load(path)
        if path.read_text().startswith("# @package _global_"):  # the group's keys under its name
            config = config.get(path.parent.name) or {}
        keys.setdefault(path.parent.name, set()).update(str(k) for k in config if k != "defaults")
    return {group: frozenset(k) for group, k in keys.items()}


def check_group_keys(overrides: list[str]) -> None:
    """Refuse `group.key=...` when no option of the group has the key but another group does."""
    known = group_keys()
    for override in overrides:
        if override.startswith(("+", "~", "-")) or "=" not in override:
            continue
        group, _, rest = override.split("=", 1)[0].partition(".")
        key = rest.split(".")[0]
        if not key or group not in known or key in known[group]:
            continue
        elsewhere = sorted(g for g, keys in known.items() if key in keys)
        if elsewhere:
            value = override.split("=", 1)[1]
            raise ConvlabError(
                f"{group}.{key} is not a key of any {group} config; did you mean "
                f"{' or '.join(f'{g}.{key}={value}' for g in elsewhere)}?"
            )
