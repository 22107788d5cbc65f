"""SIGTERM (SLURM's time limit, preemption) and SIGINT (Ctrl+C) stop a run with a resumable state
and a non-zero exit, never a silent success.

Lightning answers SIGTERM by leaving the loop with a ``SystemExit`` of code 0 and SIGINT with
``exit(1)``; convlab turns either into ``Interrupted``, which is not an ``Exception``, so Hydra's
multirun does not record it as one failed job and go on: the sweep stops.
"""

import signal
from collections.abc import Iterator
from contextlib import contextmanager

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Interrupted(BaseException):
    """The run was stopped by a signal; ``exit_code`` follows the shell's 128 + signal number."""

    def __init__(self, signum: int, message: str = ""):
        super().__init__(message or f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum
        # filled in by the run it stopped
        self.run_dir, self.resumable, self.in_sweep = None, False, False
        self.paths: list[str] = []  # the run's path overrides, which its resume command repeats

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


@contextmanager
def interruptible() -> Iterator[None]:
    """Raise ``Interrupted`` at once when a stop signal arrives (the partial epoch is discarded:
    resuming restarts it from the last completed epoch's checkpoint)."""
    previous = {s: signal.getsignal(s) for s in SIGNALS}

    def stop(signum, frame):
        for s in SIGNALS:  # a second Ctrl+C must not interrupt the clean-up
            signal.signal(s, signal.SIG_IGN)
        raise Interrupted(signum)

    for s in SIGNALS:
        signal.signal(s, stop)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
