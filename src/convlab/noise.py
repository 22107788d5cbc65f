"""Library messages that every run would print and no user can act on, filtered by the entry point
(``train.py``) rather than by importing convlab, which must not change a host program's logging."""

import logging
import threading
import warnings

from convlab.runlog import one_console_line_each
from convlab.safe_files import no_room


def silence_library_noise() -> None:
    """Lightning advertises a cloud logger at every Trainer start, and its pytree helper trips a
    torch deprecation warning. TensorBoard's writer thread prints a full disk as a traceback; the
    run reports the same error in one line when the next write raises it again."""
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(
        lambda record: "litlogger" not in record.getMessage()
    )
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
    # the CSV log lives in the run directory by design, beside the run's other files
    warnings.filterwarnings("ignore", message=r"Experiment logs directory .* exists and is not")
    one_console_line_each()
    report = threading.excepthook
    threading.excepthook = lambda args: None if no_room(args.exc_value) else report(args)
