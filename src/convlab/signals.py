"""Stop signals end a run with a resumable state and the shell's exit code (128 + the signal's
number), never a silent success or a crash.

SIGTERM (SLURM's time limit, preemption), SIGINT (Ctrl+C), SIGHUP (a closed terminal), SIGQUIT
and SIGUSR1 (the warning before a time limit that Lightning's SLURM setup asks for) raise
``Interrupted``. submitit's own warning (SIGUSR2, unless ``SUBMITIT_PREEMPT_SIGNAL`` names another)
is left to submitit, which requeues the job: it then continues its directory in place. Lightning
would answer SIGTERM by leaving the loop with a ``SystemExit`` of code 0 and SIGINT with
``exit(1)``; the others would end the process with no record. ``Interrupted`` is not an
``Exception``, so Hydra's multirun does not record it as one failed job and go on: the sweep stops.
"""

import signal
from collections.abc import Iterator
from contextlib import contextmanager

from convlab.errors import causes

SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1)


class Interrupted(BaseException):
    """The run was stopped by a signal; ``exit_code`` follows the shell's 128 + signal number."""

    def __init__(self, signum: int, message: str = ""):
        super().__init__(message or f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum
        # filled in by the run it stopped
        self.run_dir, self.in_sweep = None, False
        self.repeat: list[str] = []  # the run's overrides that its resume command repeats

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class _Stop:
    """The handler: the first signal raises ``Interrupted``, at once or when the ``held`` blocks
    end; later ones are ignored, so a second Ctrl+C cannot interrupt the clean-up. A flag rather
    than SIG_IGN: Lightning puts back the handlers it found when it tears down."""

    def __init__(self):
        self.stopped, self.holds, self.waiting = False, 0, None

    def __call__(self, signum, frame) -> None:
        if self.stopped:
            return
        self.stopped = True
        if self.holds:
            self.waiting = signum
        else:
            raise Interrupted(signum)


_stop: _Stop | None = None  # the handler in place


def stop_on_signals() -> None:
    """From now until the process exits, a stop signal raises ``Interrupted`` (the command line:
    the signal is answered wherever it lands, before, during and after a run)."""
    global _stop
    _stop = _Stop()
    for s in SIGNALS:
        signal.signal(s, _stop)


@contextmanager
def interruptible() -> Iterator[None]:
    """Stop signals raise ``Interrupted`` in the block (the partial epoch is discarded: resuming
    restarts it from the last completed epoch's checkpoint), and the handlers found are put back
    after it, unless the command line's are in place already. An error raised because of the
    signal is that ``Interrupted``: torch.save's C++ writer turns one raised inside its write
    into a RuntimeError."""
    global _stop
    previous = {s: signal.getsignal(s) for s in SIGNALS} if _stop is None else None
    if previous is not None:
        stop_on_signals()
    try:
        yield
    except Exception as e:
        stop = next((c for c in causes(e) if isinstance(c, Interrupted)), None)
        if stop is None:
            raise
        raise stop from None
    finally:
        if previous is not None:
            for s, handler in previous.items():
                signal.signal(s, handler)
            _stop = None


@contextmanager
def held() -> Iterator[None]:
    """A stop signal waits until the block ends, then raises ``Interrupted``: for writes that
    belong together (an epoch's best checkpoint and last.ckpt, which names it)."""
    stop = _stop
    if stop is None:
        yield
        return
    stop.holds += 1
    try:
        yield
    finally:
        stop.holds -= 1
    if stop.waiting is not None and not stop.holds:
        signum, stop.waiting = stop.waiting, None
        raise Interrupted(signum)
