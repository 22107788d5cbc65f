"""The end of a sweep, finished or interrupted: one table of its jobs and the answer it came for.

``SweepSummary`` is a Hydra callback (``hydra.callbacks`` in conf/train.yaml): at the end of every
multirun it prints the jobs (finished, failed, interrupted, pruned, never started) with their
val/acc and test/acc, the best job by val/acc with its checkpoint as a ready-to-paste override, and
the sweep directory; it writes the same into the sweep directory with compare.py's report. An
interrupted sweep prints the same table (train.py calls ``report`` when a signal stops it). The
table shows the jobs' records as compare.py does: escaped, and never through a planted link.
"""

import math
import shlex
import sys
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from convlab import safe_files
from convlab.errors import ConvlabError
from convlab.rundir import FAILURE

SUMMARY = "sweep_summary.md"
# jobs each running sweep expects, by sweep directory: the callback knows it at the start, the
# signal handler needs it at an interrupt
_expected: dict[str, int] = {}
# the keys the running sweep varies (None: not known in this process, e.g. a launcher's worker)
_swept: set[str] | None = None


# jobs this process launched, and those refused before they held a directory (no record)
_launched = _refused = 0


def job_refused() -> None:
    global _refused
    _refused += 1


def swept_keys() -> set[str]:
    return set(_swept or ())


def log_scaled_keys() -> set[str]:
    """The keys this job's search samples on a log scale (``tag(log, interval(...))``)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.override_parser.overrides_parser import OverridesParser

    if not HydraConfig.initialized():
        return set()
    params = HydraConfig.get().sweeper.get("params") or {}
    parsed = OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in params.items()])
    return {o.key_or_group for o in parsed if "log" in getattr(o.value(), "tags", ())}


def _sweep_arguments(config: DictConfig) -> list:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = config.hydra.sweeper.get("params") or {}
    arguments = [f"{k}={v}" for k, v in params.items()] + list(config.hydra.overrides.task)
    return OverridesParser.create().parse_overrides(arguments)


def job_name(*, _root_: DictConfig) -> str:
    """A job directory's name: its number and the overrides that differ between the sweep's jobs,
    so TensorBoard's run list shows what varies before a name is cut (``3_model.pool=max``)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    hydra = _root_.hydra
    excluded = set(hydra.job.config.override_dirname.exclude_keys)
    parsed = OverridesParser.create().parse_overrides(list(hydra.overrides.task))
    kept = sorted(
        f"{o.get_key_element()}={o.get_value_element_as_str()}"
        for o in parsed
        if o.key_or_group not in excluded and (_swept is None or o.key_or_group in _swept)
    )
    return "_".join([str(hydra.job.num), *([",".join(kept)] if kept else [])])


OmegaConf.register_new_resolver("convlab_job_name", job_name, replace=True)


def expected_jobs(config: DictConfig) -> int | None:
    """How many jobs the sweep will launch: Optuna's n_trials, or the basic sweeper's grid."""
    sweeper = config.hydra.sweeper
    if sweeper.get("n_trials") is not None:
        return int(sweeper.n_trials)
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    try:
        batches = BasicSweeper.split_arguments(_sweep_arguments(config), None)
        return sum(len(batch) for batch in batches)
    except Exception:  # a sweeper convlab does not know: the table omits "never started"
        return None


def _number(value) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) and math.isfinite(value) else "–"


def report(sweep_dir: Path, expected: int | None = None) -> str:
    """The jobs table, the best job and where everything is, for the terminal; also written into
    the sweep, with the records' text (job names, errors, paths) escaped as compare.py does."""
    from convlab.compare import compare, escape, find_jobs, printable

    jobs = find_jobs([sweep_dir]) if sweep_dir.is_dir() else []
    shown = _summary(sweep_dir, jobs, expected, printable)
    try:
        safe_files.write_text(sweep_dir, SUMMARY, _summary(sweep_dir, jobs, expected, escape))
        if _best(jobs):
            compare(sweep_dir)
    except (OSError, ConvlabError) as e:
        shown += printable(f"(not written into {sweep_dir}: {e})") + "\n"
    return shown


def _best(jobs: list):
    from convlab.compare import FINISHED

    finished = [
        j
        for j in jobs
        if j.state == FINISHED
        and isinstance((j.record or {}).get("metrics"), dict)
        and isinstance(j.record["metrics"].get("val/acc"), int | float)
    ]
    return max(finished, key=lambda j: j.record["metrics"]["val/acc"]) if finished else None


def _summary(sweep_dir: Path, jobs: list, expected: int | None, show) -> str:
    from convlab.compare import FINISHED
    from convlab.rundir import paste_override

    lines = ["| job | state | val/acc | test/acc |", "| --- | --- | ---: | ---: |"]
    for job in jobs:
        metrics = (job.record or {}).get("metrics") or {}
        metrics = metrics if isinstance(metrics, dict) else {}
        state = job.state + (f": {job.reason}" if job.reason else "")
        if job.state not in (FINISHED,) and job.record and job.record.get("error"):
            state += f" ({str(job.record['error']).splitlines()[0][:120]})"
        lines.append(
            f"| {show(job.name)} | {show(state)} | {_number(metrics.get('val/acc'))} | "
            f"{_number(metrics.get('test/acc'))} |"
        )
    counts = {}
    for job in jobs:
        counts[job.state] = counts.get(job.state, 0) + 1
    if expected is not None and expected > len(jobs):
        counts["never started"] = expected - len(jobs)
    head = ", ".join(f"{n} {state}" for state, n in counts.items()) or "no jobs"
    text = [f"Sweep {show(sweep_dir)}: {head}", "", *lines, ""]
    if best := _best(jobs):
        ckpt = (best.record.get("paths") or {}).get("checkpoint")
        acc = best.record["metrics"]["val/acc"]
        text.append(f"Best by val/acc: {show(best.name)} (val/acc {acc:.4f})")
        if isinstance(ckpt, str):
            text.append(f"  its checkpoint: {show(paste_override('ckpt_path', ckpt))}")
    elif jobs:
        text.append("No finished job with a validation split to rank.")
    quoted = show(shlex.quote(str(sweep_dir)))
    text += [
        f"Compare: python scripts/compare.py {quoted}",
        f"Dashboards: tensorboard --logdir {quoted}",
    ]
    return "\n".join(text) + "\n"


class SweepSummary(Callback):
    """Prints and writes ``report`` at the end of every multirun."""

    def on_job_start(self, config: DictConfig, **kwargs) -> None:
        global _launched
        _launched += 1

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        global _swept, _launched, _refused
        _launched = _refused = 0
        _expected[self._sweep_dir(config)] = expected_jobs(config)
        try:  # a search (Optuna) varies its params; a grid its sweep overrides
            parsed = _sweep_arguments(config)
        except Exception:
            return
        params = set((config.hydra.sweeper.get("params") or {}).keys())
        _swept = {o.key_or_group for o in parsed if o.is_sweep_override()} | params

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        sweep_dir = self._sweep_dir(config)
        print(report(Path(sweep_dir), _expected.get(sweep_dir)), end="")
        # a grid's every job was asked for: one that failed fails the command (a search's failed
        # trials are part of searching, and its table says so)
        failed = len(list(Path(sweep_dir).glob(f"*/{FAILURE}")))
        if failed and config.hydra.sweeper.get("n_trials") is None:
            sys.exit(f"convlab: {failed} job(s) of the sweep failed; see the table above")
        # a job refused before it held its directory leaves no record: the table cannot show it
        if _refused and (config.hydra.sweeper.get("n_trials") is None or _refused == _launched):
            sys.exit(f"convlab: {_refused} job(s) of the sweep were refused; see the errors above")

    @staticmethod
    def _sweep_dir(config: DictConfig) -> str:
        return str(Path(OmegaConf.select(config, "hydra.sweep.dir")).resolve())


def interrupted_report(job_dir: Path) -> str:
    """The table of the sweep that ``job_dir`` belongs to, after a signal stopped it."""
    sweep_dir = job_dir.parent.resolve()
    return report(sweep_dir, _expected.get(str(sweep_dir)))
