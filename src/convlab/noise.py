"""Library messages that every run would print and no user can act on, filtered by the entry point
(``train.py``) rather than by importing convlab, which must not change a host program's logging."""

import logging
import warnings


def silence_library_noise() -> None:
    """Lightning advertises a cloud logger at every Trainer start, and its pytree helper trips a
    torch deprecation warning."""
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(
        lambda record: "litlogger" not in record.getMessage()
    )
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
