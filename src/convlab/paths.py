"""Where convlab's configs live: ``conf/`` at the repository root, so convlab runs from a clone
(an editable install); a copy of the package alone has no configs."""

from pathlib import Path

REPO_DIR = Path(__file__).resolve().parents[2]
CONF_DIR = REPO_DIR / "conf"
