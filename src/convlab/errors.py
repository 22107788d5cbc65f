"""The one exception type for user mistakes, and the chain an error came through.

Raised anywhere a user can fix the problem (a bad value, missing data, a corrupt file); the
single-run CLI turns it into one line and a non-zero exit, while multiruns and the Python API let it
propagate so a sweep records the failed job and goes on.
"""

from collections.abc import Iterator


class ConvlabError(Exception):
    """A mistake the user can fix; the message names the key or file and the fix."""


def causes(error: BaseException | None) -> Iterator[BaseException]:
    """``error``, then the exceptions it was raised from or while handling: what went wrong first
    may sit deeper (torch.save reports a failed write, or a signal's exception inside one, as a
    RuntimeError raised while handling it)."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__
