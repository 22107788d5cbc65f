#!/usr/bin/env bash
# Installs convlab (editable, with the test, sweep and loggers extras: MLflow and W&B, whose tests
# run) and, where Debian's package exists, the real FashionMNIST. Safe to run again: what is there
# already is kept.
set -euo pipefail
cd "$(dirname "$0")/.."

# PyTorch first and pinned: on machines with a local wheel cache this takes it from there.
python -c "import torch, torchvision" 2>/dev/null \
  || python -m pip install --quiet "torch==2.14.1" "torchvision==0.29.1"
python -m pip install --quiet -e ".[dev]"

if [ ! -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] && command -v apt-get >/dev/null \
   && [ "$(id -u)" = 0 ]; then
  apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null && apt-get install -y -qq dataset-fashion-mnist >/dev/null; } \
    || echo "setup: Debian's dataset-fashion-mnist is not available here; train with data.download=true"
fi
