#!/usr/bin/env bash
# Packs what a bare, offline GPU machine lacks into .gpu/ (ignored by git, carried as one path):
#   .gpu/wheels/  hydra-core, omegaconf and antlr4 (the GPU machine's Python has torch, lightning,
#                 torchmetrics, tensorboard and matplotlib, but not these three)
#   .gpu/data/    FashionMNIST's four IDX .gz files (about 30 MiB; no internet there to download)
#   .gpu/commit   this checkout's commit, since the copied tree may arrive without .git
# Then scripts/gpu_run.sh runs everything there. Run this here, on a machine with the index.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA_SRC=${DATA_SRC:-/usr/share/datasets/fashion-mnist}

# the versions installed here, so the GPU runs use the same Hydra as the tests
version() { python -m pip show "$1" | sed -n 's/^Version: //p'; }
HYDRA=$(version hydra-core) OMEGACONF=$(version omegaconf)
[ -n "$HYDRA" ] && [ -n "$OMEGACONF" ] || { echo "gpu_prepare: install convlab first (scripts/setup.sh)" >&2; exit 1; }

rm -rf .gpu/wheels && mkdir -p .gpu/wheels .gpu/data
# pure-Python wheels (py3-none-any): they install on whatever Python the GPU machine has
python -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
  "hydra-core==$HYDRA" "omegaconf==$OMEGACONF" -d .gpu/wheels
# antlr4 4.9.3 (the version omegaconf 2.3 pins) is published as an sdist only: build it here
python -m pip wheel --quiet --no-deps "antlr4-python3-runtime==4.9.3" -w .gpu/wheels
for wheel in .gpu/wheels/*.whl; do
  case "$wheel" in
    *-py3-none-any.whl | *-py2.py3-none-any.whl) ;;
    *) echo "gpu_prepare: $wheel is not pure Python; it may not install on the GPU machine" >&2; exit 1 ;;
  esac
done

for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
  cp "$DATA_SRC/$f.gz" .gpu/data/
done
{ git rev-parse HEAD && git status --porcelain -uno | grep -q . && echo dirty; } > .gpu/commit 2>/dev/null || true

ls -l .gpu/wheels .gpu/data
du -sh .gpu
echo 'carry for the run tool: [".gpu"]'
