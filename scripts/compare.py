"""Compare the runs of a sweep: mean ± std across seeds, best first, and the val/acc curves.

    python scripts/compare.py outputs/multiruns/lenet_ablation/<time> [--out DIR]
    python scripts/compare.py DIR DIR ... --out OUT    # one Optuna study run by several processes

Writes comparison.md, comparison.csv and val_acc.png into the multirun directory (or --out, which
several directories need: their combined report belongs to none of them) and prints the table,
with each configuration's job directories and the jobs that failed, were interrupted or pruned.
The work is in convlab.compare.
"""

import argparse
import sys
from pathlib import Path

from convlab.compare import compare, printable
from convlab.errors import ConvlabError

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "sweep_dirs", type=Path, nargs="+", metavar="DIR", help="multirun directories"
    )
    parser.add_argument(
        "--out", type=Path, help="where to write (default: the multirun dir; needed with several)"
    )
    args = parser.parse_args()
    try:
        print(compare(args.sweep_dirs, args.out), end="")
    except ConvlabError as e:
        sys.exit(f"convlab: error: {printable(e)}")  # it may name a directory from the sweep
