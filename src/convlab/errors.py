"""The one exception type for user mistakes.

Raised anywhere a user can fix the problem (a bad value, missing data, a corrupt file); the
single-run CLI turns it into one line and a non-zero exit, while multiruns and the Python API let it
propagate so a sweep records the failed job and goes on.
"""


class ConvlabError(Exception):
    """A mistake the user can fix; the message names the key or file and the fix."""
