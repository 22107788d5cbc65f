"""Compare the runs of a multirun: a table with mean ± std across seeds, and the val/acc curves.

    python scripts/compare.py outputs/multiruns/lenet_ablation/<time> [--out DIR]

Writes comparison.md, comparison.csv and val_acc.png into the multirun directory (or --out) and
prints the table. The work is in convlab.compare.
"""

import argparse
import sys
from pathlib import Path

from convlab.compare import compare
from convlab.errors import ConvlabError

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path, help="a multirun directory (hydra.sweep.dir)")
    parser.add_argument("--out", type=Path, help="where to write (default: the multirun dir)")
    args = parser.parse_args()
    try:
        print(compare(args.sweep_dir, args.out), end="")
    except ConvlabError as e:
        sys.exit(f"convlab: error: {e}")
