"""``resume=<run dir>``: a run's recorded overrides, trusted only where they are plain choices.

A run directory is data: its ``.hydra/overrides.yaml`` may have been edited by anyone. Read back,
an override may choose a group option that exists in ``conf/`` or set a plain value; one that names
code (``_target_``, ``_args_``, ``_partial_``, ``_call_``) or sets Hydra itself is refused, and the
user is asked to say it again on the command line, where it is trusted. The composed config must
then equal the one saved in the run's checkpoint, so an edited record cannot change the run.
"""

import re
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import OverrideParseException
from omegaconf import DictConfig, OmegaConf

from convlab import safe_yaml
from convlab.errors import ConvlabError
from convlab.paths import CONF_DIR
from convlab.registry import is_plain
from convlab.rundir import (
    HYDRA_DIR,
    METRICS,
    holds_run,
    holds_sweep,
    hydra_quoted,
    is_finished,
    is_other_rank,
    paste_override,
    refuse_interpolation,
)
from convlab.write_paths import is_path_key

if TYPE_CHECKING:  # checkpoints need torch, which the command line imports only to run
    from convlab.checkpoint_io import CheckpointMeta

_SWEEP = "is a sweep"
CODE_KEYS = ("_target_", "_args_", "_partial_", "_call_", "_recursive_", "_convert_")
# What a resumed run may set otherwise than its checkpoint's config: where things go, what is
# shown and which classes a checkpoint may build (allow), never what is computed
# (tests/test_sweep_resume.py shows these leave the numbers as they were). Every other key is
# compared: threads, precision, clipping, determinism, callbacks, and the run's length, which a
# schedule's saved state holds (OneCycleLR's total steps).
MAY_DIFFER = re.compile(
    r"resume|ckpt_path|test|claim_timeout|allow|paths\..+|logger(\..+)?"
    r"|data\.(root|system_dir|download|max_memory_gb)|callbacks\.[^.]+\.(dirpath|save_dir)"
    r"|trainer\.(enable_progress_bar|enable_model_summary|log_every_n_steps|default_root_dir)"
    r"|callbacks\.(dashboards|progress_bar|epoch_time|lr_monitor|model_summary)(\..+)?"
)


class AlreadyFinished(ConvlabError):
    """``resume=`` of a finished run: nothing to do, and nothing is written."""


def parse_overrides(overrides: list[str], where: str) -> list[Override]:
    try:
        return OverridesParser.create().parse_overrides(list(overrides))
    except OverrideParseException as e:
        first = str(e).strip().splitlines()[0]
        raise ConvlabError(f"cannot read the overrides of {where} ({first})") from None


def _is_override(arg: str) -> bool:
    """Hydra's flags (-m, --cfg job, ...) and their values pass through untouched."""
    return not arg.startswith("-") and ("=" in arg or arg.startswith("~"))


def _resume_dirs(overrides: list[str]) -> list[Path]:
    return [
        Path(str(o.value()))
        for o in parse_overrides([a for a in overrides if _is_override(a)], "the command line")
        if o.key_or_group == "resume" and not o.is_delete()
    ]


def _untrusted(override: Override) -> str | None:
    """Why a recorded override may not be taken from a run directory, or None if it may."""
    key = override.key_or_group
    parts = key.replace("/", ".").split(".")
    if parts[0] == "allow" or any(part in CODE_KEYS for part in parts):  # allow: classes to build
        return "names code"
    if key.split(".")[0].split("/")[0] == "hydra":
        return "sets Hydra itself"
    if override.is_sweep_override():
        return _SWEEP
    if is_path_key(key):
        return "names a path (a run directory is not trusted to say where to read or write)"
    value = None if override.is_delete() else override.value()
    if (CONF_DIR / key).is_dir() and "." not in key:  # a group choice: existing options
        options = value if isinstance(value, list) else [] if value is None else [value]
        for option in options:  # 'logger=[tensorboard,csv]' chooses several
            if not isinstance(option, str) or not (CONF_DIR / key / f"{option}.yaml").is_file():
                return f"chooses {key} option {option!r}, which conf/{key}/ does not have"
        return None
    if not is_plain(value):
        return "is not a plain value"
    return None


def needs_repeating(overrides: list[str]) -> list[str]:
    """A run's own overrides (from its command line, trusted) that resume would refuse to take
    from its record: the command that continues the run must say them again."""
    parsed = parse_overrides(overrides, "the command line")
    return [
        text
        for text, o in zip(overrides, parsed, strict=True)
        if o.key_or_group not in ("resume", "hydra.run.dir", "hydra.mode") and _untrusted(o)
    ]


def _recorded(run_dir: Path) -> list[str]:
    saved = run_dir / HYDRA_DIR / "overrides.yaml"
    if not saved.is_file():
        raise ConvlabError(
            f"resume={run_dir}: not a convlab run directory (no {HYDRA_DIR}/overrides.yaml)"
        )
    try:  # no OmegaConf: its loader expands aliases, and nothing here may be resolved
        recorded = safe_yaml.load(saved)
    except ConvlabError as e:
        raise ConvlabError(f"resume={run_dir}: {e}") from None
    if not isinstance(recorded, list) or not all(isinstance(o, str) for o in recorded):
        raise ConvlabError(f"resume={run_dir}: {saved} is not a list of overrides; it was edited")
    return recorded


def trusted_overrides(
    recorded: list[str], given: list[str], run_dir: Path, sweep: bool = False
) -> list[str]:
    """The recorded overrides to re-apply: those the command line does not set again, each
    checked; a ``~key`` on the command line drops what the record added under that key. A
    sweep's record may hold its sweeps (``seed=0,1``)."""
    given_parsed = parse_overrides(given, "the command line")
    given_keys = {o.key_or_group for o in given_parsed}
    deleted = {o.key_or_group for o in given_parsed if o.is_delete()}
    kept, used_deletions = [], set()
    for text, override in zip(recorded, parse_overrides(recorded, str(run_dir)), strict=True):
        key = override.key_or_group
        if key in ("resume", "hydra.run.dir") or key in given_keys:
            continue
        covering = [d for d in deleted if key == d or key.startswith(f"{d}.")]
        if covering:
            used_deletions.update(covering)
            continue
        if (why := _untrusted(override)) and not (sweep and why == _SWEEP):
            raise ConvlabError(
                f"resume={run_dir}: its recorded override {text} {why}; a run directory is not "
                f"trusted to say that: if you meant it, pass {text!r} again on the command line"
            )
        kept.append(text)
    # a deletion that removed only what the record added has done its job: the key is gone
    extra = [
        g
        for g, o in zip(given, given_parsed, strict=True)
        if not (o.is_delete() and o.key_or_group in used_deletions)
    ]
    return [*kept, *extra]


def expand_resume(overrides: list[str]) -> list[str]:
    """``resume=<run dir>`` becomes that run's trusted overrides, any new ones, and its directory.

    A finished run is never changed: resuming it raises AlreadyFinished (nothing to do) or, with
    new overrides, refuses before anything is written."""
    dirs = _resume_dirs(overrides)
    if not dirs:
        return list(overrides)
    refuse_interpolation("resume", dirs[-1])
    run_dir = dirs[-1].resolve()
    refuse_interpolation("resume", run_dir)  # a link's target is a name too
    flags = [a for a in overrides if not _is_override(a)]
    given = [a for a in overrides if _is_override(a) and not a.lstrip("+~").startswith("resume=")]
    _refuse_evaluation(given)
    if holds_sweep(run_dir) and not holds_run(run_dir):
        if is_other_rank():  # a rank Lightning started re-runs its job, not the sweep
            return list(overrides)
        return _expand_sweep(run_dir, flags, given)
    recorded = _recorded(run_dir)
    _refuse_another_start(given, recorded, run_dir)
    if is_finished(run_dir):
        if given:
            raise ConvlabError(
                f"resume={run_dir}: the run is finished and is never changed; "
                f"{_train_longer(run_dir, recorded, given)}"
            )
        raise AlreadyFinished(f"{run_dir} is finished ({METRICS} written); nothing to resume")
    refuse_partial_checkpoints(run_dir)
    value = hydra_quoted(run_dir)
    return [
        *flags,
        *trusted_overrides(recorded, given, run_dir),
        "hydra.mode=RUN",  # a sweep's job continues as one run, whatever its configs set
        f"hydra.run.dir={value}",
        f"resume={value}",
    ]


def _starts(overrides: list[str], where: str) -> set[str]:
    """The checkpoints that overrides start a run from (``init_from``)."""
    return {
        str(o.value())
        for o in parse_overrides(overrides, where)
        if o.key_or_group == "init_from" and not o.is_delete()
    }


def _refuse_another_start(given: list[str], recorded: list[str], where: Path) -> None:
    """``init_from`` with ``resume=`` only as the run or sweep was started: its resume command
    repeats it, as it repeats every path. Another would start a new run inside this one."""
    wanted = _starts(given, "the command line")
    if wanted and (other := wanted - _starts(recorded, str(where))):  # only then read the record
        raise ConvlabError(
            f"resume={where} continues from its own checkpoints, and it did not start from "
            f"init_from={min(other)}; to start a new run from that checkpoint, drop resume="
        )


def _train_longer(run_dir: Path, recorded: list[str], given: list[str]) -> str:
    """How to train a finished run's network further: a new run from its last checkpoint, with
    the run's trusted overrides and the new ones (docs/warm_start.md). A warm-started run's own
    init_from gives way to that checkpoint."""
    last = run_dir / "checkpoints" / "last.ckpt"
    if not last.is_file():  # an evaluation (train=false) trained nothing
        return "it has no checkpoints/last.ckpt to train further"
    start = f"init_from={hydra_quoted(last)}"
    *repeated, _ = trusted_overrides(recorded, [*given, start], run_dir)
    command = ["python train.py", *map(shlex.quote, repeated), paste_override("init_from", last)]
    return (
        "to train longer, start a new run from its last checkpoint (a fresh optimizer and "
        f"schedule): {' '.join(command)}"
    )


def refuse_partial_checkpoints(run_dir: Path) -> None:
    """A run without last.ckpt starts over in place (it stopped before its first epoch ended);
    one whose other checkpoints are there lost its last.ckpt, and starting over would mix two
    trainings' files."""
    folder = run_dir / "checkpoints"
    if not (folder / "last.ckpt").is_file() and folder.is_dir() and any(folder.iterdir()):
        raise ConvlabError(
            f"resume={run_dir}: {folder} holds checkpoints but no last.ckpt, which convlab writes "
            "after every epoch; it was edited: start a new run"
        )


def _expand_sweep(sweep_dir: Path, flags: list[str], given: list[str]) -> list[str]:
    """``resume=<sweep dir>``: the sweep's own command again, into its directory. Its finished
    jobs are kept, its stopped ones continued, the rest run (convlab.train.run)."""
    saved = sweep_dir / "multirun.yaml"
    if not saved.is_file():
        raise ConvlabError(
            f"resume={sweep_dir}: no multirun.yaml, which Hydra writes into a grid sweep; an "
            "Optuna search continues with its own command (the same storage and study name)"
        )
    task = _recorded_task(safe_yaml.load(saved))
    if not isinstance(task, list) or not all(isinstance(o, str) for o in task):
        raise ConvlabError(f"resume={sweep_dir}: {saved} holds no list of overrides; it was edited")
    _refuse_another_start(given, task, sweep_dir)
    value = hydra_quoted(sweep_dir)
    return [
        *flags,
        *trusted_overrides(list(task), given, sweep_dir, sweep=True),
        "hydra.mode=MULTIRUN",
        f"hydra.sweep.dir={value}",
        f"resume={value}",
    ]


def _recorded_task(tree):
    """``hydra.overrides.task`` of a sweep's record, a plain lookup: nothing in it is resolved."""
    for key in ("hydra", "overrides", "task"):
        tree = tree.get(key) if isinstance(tree, dict) else None
    return tree


_EVALUATION = "resume= continues training; evaluating is another run: python train.py train=false "


def _refuse_evaluation(given: list[str]) -> None:
    """``resume=`` with ``train=false`` or ``ckpt_path`` would test other weights and mark the
    interrupted run finished with their metrics."""
    for o in parse_overrides(given, "the command line"):
        if o.key_or_group in ("train", "ckpt_path") and not o.is_delete():
            raise ConvlabError(f"{_EVALUATION}ckpt_path=<file>; drop {o.input_line}")


def refuse_evaluation_on_resume(cfg: DictConfig) -> None:
    """The same for a composed config (Python's ``run(cfg)``), before anything is claimed."""
    if cfg.get("resume") and (not cfg.get("train", True) or cfg.get("ckpt_path")):
        raise ConvlabError(f"{_EVALUATION}ckpt_path=<file>; drop train=false and ckpt_path")


def _flat(tree, prefix: str = "") -> dict:
    if not isinstance(tree, dict):
        return {prefix.rstrip("."): tree}
    flat = {}
    for key, value in tree.items():
        flat.update(_flat(value, f"{prefix}{key}."))
    return flat


def _select(tree: dict, dotted: str):
    """A dotted key of a plain dict: a checkpoint's config never becomes an OmegaConf object,
    whose select would resolve any ``${...}`` its strings hold."""
    for part in dotted.split("."):
        tree = tree.get(part) if isinstance(tree, dict) else None
    return tree


def config_differences(
    cfg: DictConfig, saved: dict, sections: tuple[str, ...] | None = None, skip=MAY_DIFFER
) -> list[str]:
    """``key (here vs saved)`` for each key whose value differs between a composed config and a
    checkpoint's saved one, in the given sections (a top-level key or a dotted one; None: all),
    but those ``skip`` matches."""
    ours = OmegaConf.to_container(cfg, resolve=True)
    mine, theirs = (
        _flat(tree)
        if sections is None
        else {k: v for s in sections for k, v in _flat(_select(tree, s), f"{s}.").items()}
        for tree in (ours, saved)
    )
    return [
        f"{key} ({mine.get(key)!r} here, {theirs.get(key)!r} in the checkpoint)"
        for key in sorted(set(mine) | set(theirs))
        if not skip.fullmatch(key) and mine.get(key) != theirs.get(key)
    ]


def check_resume_matches(cfg: DictConfig, meta: "CheckpointMeta", run_dir: Path) -> None:
    """The resumed config must be the one the checkpoint was trained with."""
    differences = config_differences(cfg, meta.config)
    if differences:
        raise ConvlabError(
            f"resume={run_dir}: the config differs from the one its checkpoint was trained with: "
            f"{'; '.join(differences)}; resume without changing these, or start a new run"
        )
