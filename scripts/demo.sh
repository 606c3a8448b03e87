#!/usr/bin/env bash
# The main job on a fresh machine, small enough for a 2-core CPU:
#   set up -> render a synthetic set (+ contact sheet) -> train a small GANimation on it
#   -> evaluate it on unseen neutral synthetic faces -> HTML/JSON report.
# Usage: bash scripts/demo.sh [OUT_DIR]   (default: demo/)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
VENV=$(bash scripts/setup.sh | tail -1)
export PATH="$VENV/bin:$PATH" PYOPENGL_PLATFORM=egl
OUT=${1:-demo}
mkdir -p "$OUT"

echo "== 1/4 render 400 synthetic faces (64 px) and a contact sheet"
ausynth render --n 400 --out "$OUT/synth" --seed 0 --workers 2 \
  --set output.size=64 --set identity.pool_size=60 --sheet "$OUT/synth_sheet.png"
ausynth sheet "$OUT/synth" --out "$OUT/synth_labels.png" --n 24 --overlay regions

echo "== 2/4 train the small GANimation preset on it (a few minutes)"
ausynth train --config configs/train/cpu-small.yaml --data "synth:$OUT/synth" --out "$OUT/run_synth" \
  --set optim.epochs_constant=2 --set optim.epochs_decay=1

echo "== 3/4 render 8 unseen neutral test faces (another seed) and evaluate the model on them"
ausynth render --n 8 --out "$OUT/synth_test" --seed 1000 --workers 2 --no-progress \
  --set output.size=64 --set "expression.weights={neutral: 1.0}" --set expression.blink_probability=0 \
  --set identity.test_fraction=0 --set occluders.probability=0
ausynth eval --checkpoint synth="$OUT/run_synth" --test-set "synth:$OUT/synth_test#all" --out "$OUT/eval" \
  --config configs/eval/cpu-study.yaml --set select.n_faces=8 --set "targets.intensities=[2, 4]"

echo "== 4/4 report"
ausynth report "$OUT/eval" --out "$OUT/report.html" --title "ausynth demo: small GANimation on 400 renders"

echo "demo outputs in $OUT/: synth/ (dataset), synth_sheet.png, synth_labels.png, run_synth/ (checkpoints, grids,"
echo "logs), synth_test/, eval/ (metrics.jsonl, eval.json), report.html + report.json"
