"""Values that cannot work are refused before anything is built, naming the key and a good value."""

import math
from numbers import Real

from omegaconf import DictConfig, ListConfig, OmegaConf

from convlab.errors import ConvlabError
from convlab.registry import allowed, min_input_size
from convlab.schedulers import check_stepping

_ABSENT = object()
SEED_RANGE = (0, 2**32 - 1)  # numpy's seeds, which Lightning's seed_everything also sets


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _positive_int(v) -> bool:
    return _is_int(v) and v > 0


def _finite(v) -> bool:
    return isinstance(v, Real) and not isinstance(v, bool) and math.isfinite(v)


def _per_channel(ok):
    """One value that passes ``ok``, or a non-empty list of them, one per channel."""
    return lambda v: (
        ok(v) or (isinstance(v, list | ListConfig) and len(v) > 0 and all(ok(x) for x in v))
    )


def _size(v) -> bool:
    if isinstance(v, list | ListConfig):
        return len(v) == 2 and all(_positive_int(s) for s in v)
    return _positive_int(v)


def _batch_limit(v) -> bool:
    """Lightning's limit_*_batches: null, a positive count, or a fraction in (0, 1]."""
    return v is None or _positive_int(v) or (_finite(v) and not _is_int(v) and 0 < v <= 1)


# key, test, what it must be, an example of a good value
CHECKS = [
    (
        "seed",
        lambda v: _is_int(v) and SEED_RANGE[0] <= v <= SEED_RANGE[1],
        f"an integer in [0, {SEED_RANGE[1]}]",
        "seed=0",
    ),
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
    # the stored images' channels: 1 (grey) or 3 (RGB)
    ("data.channels", lambda v: v in (1, 3) and _is_int(v), "1 or 3", "data.channels=1"),
    ("data.grey_to_rgb", lambda v: isinstance(v, bool), "true or false", "data.grey_to_rgb=true"),
    ("data.num_classes", lambda v: _is_int(v) and v >= 2, "an integer >= 2", "data.num_classes=10"),
    (
        "data.mean",
        _per_channel(_finite),
        "a finite number, or a list of one per channel",
        "data.mean=[0.49,0.48,0.45]",
    ),
    (
        "data.std",
        _per_channel(lambda v: _finite(v) and v > 0),
        "a positive finite number, or a list of one per channel",
        "data.std=[0.25,0.24,0.26]",
    ),
    ("data.stored_size", _size, "a positive size, one side or [h, w]", "data.stored_size=32"),
    ("data.test_size", _positive_int, "a positive integer", "data.test_size=1000"),
    (
        "data.max_memory_gb",
        lambda v: v is None or (_finite(v) and v > 0),
        "a positive number of GB, or null (half the available memory)",
        "data.max_memory_gb=8",
    ),
    (
        "optimizer.lr",
        lambda v: _finite(v) and v > 0,
        "a positive finite number",
        "optimizer.lr=0.01",
    ),
    (
        "optimizer.weight_decay",
        lambda v: v is None or (_finite(v) and v >= 0),
        "a non-negative number",
        "optimizer.weight_decay=0.0005",
    ),
    (
        "trainer.max_epochs",
        lambda v: _is_int(v) and (v > 0 or v == -1),
        "a positive integer or -1",
        "trainer.max_epochs=10",
    ),
    (
        "trainer.limit_train_batches",
        _batch_limit,
        "null, a positive count or a fraction in (0, 1]",
        "trainer.limit_train_batches=null",
    ),
    (  # 0 switches validation off (debug=overfit)
        "trainer.limit_val_batches",
        lambda v: v == 0 or _batch_limit(v),
        "null, 0, a positive count or a fraction in (0, 1]",
        "trainer.limit_val_batches=null",
    ),
    (
        "trainer.limit_test_batches",
        _batch_limit,
        "null, a positive count or a fraction in (0, 1] (test=false skips the test)",
        "trainer.limit_test_batches=null",
    ),
    (
        "data.augment.translate",
        lambda v: _is_int(v) and v >= 0,
        "a non-negative number of pixels",
        "data.augment.translate=2",
    ),
    (
        "data.augment.erase_p",
        lambda v: _finite(v) and 0 <= v <= 1,
        "a probability in [0, 1]",
        "data.augment.erase_p=0.25",
    ),
    ("threads", lambda v: v is None or _positive_int(v), "a positive integer or null", "threads=1"),
    (
        "module.label_smoothing",
        lambda v: _finite(v) and 0 <= v < 1,
        "a number in [0, 1)",
        "module.label_smoothing=0.1",
    ),
]


# a checkpoint's preprocessing arguments, and the data keys they were made from
PREPROCESS_KEYS = {
    "size": "data.resize",
    "mean": "data.mean",
    "std": "data.std",
    "channels": "data.channels",
    "grey_to_rgb": "data.grey_to_rgb",
}


def preprocess_problem(args: dict) -> str | None:
    """What is wrong with a checkpoint's preprocessing arguments by the checks of the data keys
    they come from, or None: with other values it loads, then fails in predict (channels=7) or
    predicts NaN (std=0)."""
    checks = {key: (ok, what) for key, ok, what, _ in CHECKS}
    for arg, key in PREPROCESS_KEYS.items():
        ok, what = checks[key]
        if not ok(args.get(arg)):
            return f"{arg}={args.get(arg)!r} is invalid (expected {what})"
    return _channels_problem(args["channels"], args["grey_to_rgb"], args["mean"], args["std"])


def _channels_problem(channels: int, grey_to_rgb: bool, mean, std) -> str | None:
    """What contradicts data.channels among the keys that depend on it, or None."""
    if grey_to_rgb and channels != 1:
        return (
            f"data.grey_to_rgb=true repeats a grey channel, and data.channels={channels}: set "
            "data.grey_to_rgb=false"
        )
    for key, value in (("mean", mean), ("std", std)):
        if isinstance(value, list | ListConfig) and len(value) != channels:
            return (
                f"data.{key}={list(value)} has {len(value)} numbers, one per channel, and "
                f"data.channels={channels}: give one number or {channels}, or set data.channels "
                "to the images' channels"
            )
    return None


def validate(cfg: DictConfig) -> None:
    """Refuse nonsensical values before anything is built, naming the key and a good value."""
    for key, ok, what, example in CHECKS:
        value = OmegaConf.select(cfg, key, default=_ABSENT)
        if value is not _ABSENT and not ok(value):  # an absent key is the constructor's business
            raise ConvlabError(f"{key}={value} is invalid: expected {what}, e.g. {example}")
    data = cfg.get("data") or {}
    if why := _channels_problem(
        data.get("channels", 1), data.get("grey_to_rgb", False), data.get("mean"), data.get("std")
    ):
        raise ConvlabError(why)
    check_stepping(cfg)
    if cfg.get("train", True) and cfg.get("ckpt_path"):  # else silently a fresh run
        raise ConvlabError(
            "ckpt_path is the checkpoint to evaluate with train=false; to continue a stopped run "
            "use resume=<run dir>, to start a new run from a checkpoint's weights init_from=<file>"
        )
    resize = cfg.data.resize
    smallest = min(resize) if isinstance(resize, ListConfig) else resize
    need = min_input_size(OmegaConf.to_container(cfg.model, resolve=True), allow=allowed(cfg))
    if smallest < need:
        shown = OmegaConf.to_object(resize) if isinstance(resize, ListConfig) else resize
        model = cfg.model._target_.rsplit(".", 1)[-1]
        raise ConvlabError(
            f"data.resize={shown} is too small for model {model}: it needs at least "
            f"{need}x{need} inputs; set data.resize={need} or more"
        )
