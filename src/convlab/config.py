"""Composing, checking and resuming configs: everything between the command line and a run."""

import os
from numbers import Real
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import InstantiationException, OverrideParseException
from hydra.utils import instantiate as hydra_instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from convlab.errors import ConvlabError

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
_ABSENT = object()


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _positive_int(v) -> bool:
    return _is_int(v) and v > 0


def _size(v) -> bool:
    if isinstance(v, list | ListConfig):
        return len(v) == 2 and all(_positive_int(s) for s in v)
    return _positive_int(v)


# key, test, what it must be, an example of a good value
CHECKS = [
    ("seed", _is_int, "an integer", "seed=0"),
    ("data.batch_size", _positive_int, "a positive integer", "data.batch_size=128"),
    (
        "data.eval_batch_size",
        lambda v: v is None or _positive_int(v),
        "a positive integer",
        "data.eval_batch_size=1024",
    ),
    (
        "data.val_size",
        lambda v: _is_int(v) and v >= 0,
        "a non-negative integer",
        "data.val_size=5000",
    ),
    ("data.resize", _size, "a positive size, one side or [h, w]", "data.resize=96"),
    ("data.channels", _positive_int, "a positive integer", "data.channels=1"),
    ("data.num_classes", lambda v: _is_int(v) and v >= 2, "an integer >= 2", "data.num_classes=10"),
    ("data.std", lambda v: isinstance(v, Real) and v > 0, "a positive number", "data.std=0.353"),
    (
        "optimizer.lr",
        lambda v: isinstance(v, Real) and not isinstance(v, bool) and v > 0,
        "a positive number",
        "optimizer.lr=0.01",
    ),
    (
        "optimizer.weight_decay",
        lambda v: v is None or (isinstance(v, Real) and v >= 0),
        "a non-negative number",
        "optimizer.weight_decay=0.0005",
    ),
    (
        "trainer.max_epochs",
        lambda v: _is_int(v) and (v > 0 or v == -1),
        "a positive integer or -1",
        "trainer.max_epochs=10",
    ),
    ("threads", lambda v: v is None or _positive_int(v), "a positive integer or null", "threads=1"),
    (
        "module.label_smoothing",
        lambda v: isinstance(v, Real) and 0 <= v < 1,
        "a number in [0, 1)",
        "module.label_smoothing=0.1",
    ),
]


def instantiate(cfg, **kwargs):
    """hydra.utils.instantiate, but a ConvlabError raised by a constructor stays one: Hydra would
    wrap it in an InstantiationException, which the CLI prints with a traceback."""
    try:
        return hydra_instantiate(cfg, **kwargs)
    except InstantiationException as e:
        if isinstance(e.__cause__, ConvlabError):
            raise e.__cause__ from None
        raise


def validate(cfg: DictConfig) -> None:
    """Refuse nonsensical values before anything is built, naming the key and a good value."""
    for key, ok, what, example in CHECKS:
        value = OmegaConf.select(cfg, key, default=_ABSENT)
        if value is not _ABSENT and not ok(value):  # an absent key is the constructor's business
            raise ConvlabError(f"{key}={value} is invalid: expected {what}, e.g. {example}")
    resize = cfg.data.resize
    smallest = min(resize) if isinstance(resize, ListConfig) else resize
    need = cfg.model.get("min_input_size", 1)
    if smallest < need:
        shown = OmegaConf.to_object(resize) if isinstance(resize, ListConfig) else resize
        model = cfg.model._target_.rsplit(".", 1)[-1]
        raise ConvlabError(
            f"data.resize={shown} is too small for model {model}: it needs at least "
            f"{need}x{need} inputs; set data.resize={need} or more"
        )


def net_config(model_cfg: DictConfig) -> dict:
    """The model config as constructor arguments: min_input_size is convlab's, not the model's."""
    cfg = OmegaConf.to_container(model_cfg, resolve=True)
    cfg.pop("min_input_size", None)
    return cfg


_OUTPUT_KEYS = ("hydra.run.dir", "hydra.sweep.dir", "paths.log_dir", "paths.root_dir")


def _keys_and_values(overrides: list[str]) -> list[tuple[str, object]]:
    """Each override's key and value as Hydra reads them (quotes stripped, ``++`` dropped; a sweep's
    value is not a str). Unparseable overrides give nothing: Hydra reports them itself."""
    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except OverrideParseException:
        return []
    return [(o.key_or_group, o.value()) for o in parsed]


def _without(overrides: list[str], keys: tuple[str, ...]) -> list[str]:
    pairs = _keys_and_values(overrides)
    if len(pairs) != len(overrides):
        raise ConvlabError(f"cannot read the overrides {overrides}; start the run again instead")
    return [o for o, (key, _) in zip(overrides, pairs, strict=True) if key not in keys]


def refuse_used_run_dir(run_dir: Path) -> None:
    """A directory with a run's metrics or checkpoints, finished or not, is continued with resume=,
    never trained over."""
    if (run_dir / "metrics.json").exists() or (run_dir / "checkpoints").exists():
        raise ConvlabError(
            f"{run_dir} already holds a run; continue it with resume={run_dir}, "
            "or choose another hydra.run.dir"
        )


def check_output_dirs(overrides: list[str]) -> None:
    """Refuse an output directory that cannot be created, or that holds a run, before Hydra
    creates it and (over)writes its ``.hydra`` record.

    Hydra creates the run directory before convlab runs, so this looks at the overrides that name
    one: the nearest existing ancestor must be a writable directory.
    """
    pairs = _keys_and_values(overrides)
    resuming = any(key == "resume" for key, _ in pairs)
    for key, value in pairs:
        if key not in _OUTPUT_KEYS or not isinstance(value, str) or "${" in value:
            continue
        if key == "hydra.run.dir" and not resuming:
            refuse_used_run_dir(Path(value))
        existing = Path(value).absolute()
        while not existing.exists():
            existing = existing.parent
        if not existing.is_dir() or not os.access(existing, os.W_OK):
            raise ConvlabError(
                f"{key}={value} cannot be created: {existing} is "
                f"{'not a directory' if not existing.is_dir() else 'not writable'}; "
                f"choose another {key}"
            )


def expand_resume(overrides: list[str]) -> list[str]:
    """``resume=<run dir>`` becomes that run's own overrides, its directory, and any new overrides.

    Composing the same config again (rather than reading a saved one) keeps the run directory's
    ``.hydra`` record identical to the original, apart from the resume key itself.
    """
    resume = [value for key, value in _keys_and_values(overrides) if key == "resume"]
    if not resume:
        return overrides
    run_dir = Path(str(resume[-1])).resolve()
    saved = run_dir / ".hydra" / "overrides.yaml"
    if not saved.is_file():
        raise ConvlabError(
            f"resume={run_dir}: not a convlab run directory (no .hydra/overrides.yaml)"
        )
    if not (run_dir / "checkpoints" / "last.ckpt").is_file():
        raise ConvlabError(
            f"resume={run_dir}: no checkpoints/last.ckpt yet; start the run again instead"
        )
    original = _without(list(OmegaConf.load(saved)), ("resume", "hydra.run.dir"))
    extra = _without(overrides, ("resume",))
    quoted = "'" + str(run_dir).replace("'", "\\'") + "'"  # a comma or '=' in a path stays a path
    return [*original, *extra, f"hydra.run.dir={quoted}", f"resume={quoted}"]


def compose_run(overrides: list[str] | tuple[str, ...] = ()) -> DictConfig:
    """Compose a run's config outside the CLI (Python, notebooks), as ``@hydra.main`` would.

    Creates the run directory, saves ``.hydra/config.yaml`` and ``overrides.yaml`` in it, and
    registers the Hydra config so ``${hydra:...}`` interpolations resolve.
    """
    overrides = expand_resume(list(overrides))
    check_output_dirs(overrides)
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    run_dir = Path(cfg.hydra.run.dir)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(run_dir.resolve())
        cfg.hydra.job.name = "train"
        cfg.hydra.overrides.task = overrides
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    hydra_dir = run_dir / ".hydra"
    hydra_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, hydra_dir / "config.yaml")
    OmegaConf.save(OmegaConf.create(overrides), hydra_dir / "overrides.yaml")
    return cfg


def model_choice() -> str:
    """The model config's name (e.g. 'lenet_modern'), or '' outside Hydra."""
    if not HydraConfig.initialized():
        return ""
    return HydraConfig.get().runtime.choices.get("model", "") or ""
