"""Composing a run's config outside the command line, and building objects from trusted configs.

Only configs composed from ``conf/`` and the command line reach ``instantiate``; what is read back
from checkpoints and run directories goes through ``convlab.registry`` instead.
"""

from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.utils import instantiate as hydra_instantiate
from omegaconf import DictConfig, open_dict

import convlab.run_names  # noqa: F401  (registers the default run directory's resolvers)
from convlab.errors import ConvlabError
from convlab.hints import check_group_keys
from convlab.paths import conf_dir
from convlab.resume import expand_resume
from convlab.rundir import check_output_dirs


def instantiate(cfg, **kwargs):
    """hydra.utils.instantiate, but a ConvlabError raised by a constructor stays one: Hydra would
    wrap it in an InstantiationException, which the CLI prints with a traceback."""
    try:
        return hydra_instantiate(cfg, **kwargs)
    except InstantiationException as e:
        if isinstance(e.__cause__, ConvlabError):
            raise e.__cause__ from None
        raise


def compose_run(overrides: list[str] | tuple[str, ...] = ()) -> DictConfig:
    """Compose a run's config outside the CLI (Python, notebooks), as ``@hydra.main`` would.

    Registers the Hydra config so ``${hydra:...}`` interpolations resolve; ``run`` claims the run
    directory and writes its ``.hydra`` record.
    """
    overrides = expand_resume(list(overrides))
    check_output_dirs(overrides)
    check_group_keys(overrides)
    with initialize_config_dir(str(conf_dir()), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(Path(cfg.hydra.run.dir).resolve())
        cfg.hydra.job.name = "train"
        cfg.hydra.overrides.task = overrides
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


def model_choice() -> str:
    """The model config's name (e.g. 'lenet_modern'), or '' outside Hydra."""
    if not HydraConfig.initialized():
        return ""
    return HydraConfig.get().runtime.choices.get("model", "") or ""
