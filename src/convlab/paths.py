"""Where convlab's configs live: ``conf/`` at the repository root, so convlab runs from a clone
(an editable install); a copy of the package alone has no configs."""

from pathlib import Path

from convlab.errors import ConvlabError

REPO_DIR = Path(__file__).resolve().parents[2]
CONF_DIR = REPO_DIR / "conf"


def conf_dir() -> Path:
    """``conf/``, or a one-line error for an install without it (``pip install .`` copies the
    package alone): the configs are the interface, and they live in the repository."""
    if not (CONF_DIR / "train.yaml").is_file():
        raise ConvlabError(
            f"no convlab configs at {CONF_DIR}: convlab runs from a clone of its repository "
            "(git clone, then pip install -e . there), where conf/ sits beside src/"
        )
    return CONF_DIR
