#!/usr/bin/env bash
# The main job on a fresh machine, small enough for a 2-core CPU:
#   set up -> render a synthetic set (+ contact sheet) -> train a small GANimation on it.
# Usage: bash scripts/demo.sh [OUT_DIR]   (default: demo/)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
VENV=$(bash scripts/setup.sh | tail -1)
export PATH="$VENV/bin:$PATH" PYOPENGL_PLATFORM=egl
OUT=${1:-demo}
mkdir -p "$OUT"

echo "== 1/2 render 400 synthetic faces (64 px) and a contact sheet"
ausynth render --n 400 --out "$OUT/synth" --seed 0 --workers 2 \
  --set output.size=64 --set identity.pool_size=60 --sheet "$OUT/synth_sheet.png"
ausynth sheet "$OUT/synth" --out "$OUT/synth_labels.png" --n 24 --overlay regions

echo "== 2/2 train the small GANimation preset on it (a few minutes)"
ausynth train --config configs/train/cpu-small.yaml --data "synth:$OUT/synth" --out "$OUT/run_synth" \
  --set optim.epochs_constant=2 --set optim.epochs_decay=1

echo "demo outputs in $OUT/: synth/ (dataset), synth_sheet.png, synth_labels.png, run_synth/ (checkpoints, grids, logs)"
