#!/usr/bin/env bash
# Rebuild the synthetic-cnn annotator preset end to end, exactly as configs/annotate/cnn-cpu.yaml's
# header lists it, from a real_faces-style folder (labels.csv + images/; only its *dev* half's
# neutral photos become identities, its dev emotion labels pick the checkpoint and the blend;
# the test half is never read):
#   face cache -> photo identities -> four render sets -> CNN + landmark branch -> runs/synthetic-cnn/model.pt
# Usage: bash scripts/train_annotator.sh [REAL_FACES_DIR] [--set KEY=VALUE ...]
#   (default ../shared/data/real_faces; --set goes to the training step, e.g. --set run.seed=0)
# Resumable: a finished step leaves runs/.annotator_steps/<step>; run it again to go on where it stopped
# (renders resume sample by sample). Measured on a fresh 2-core machine: ~5 min cache, ~8 min identities,
# ~27 min renders, ~19 min training, ~5 min landmark branch (about 1 h in all).
# Afterwards: python bench/annotator_auc.py --limit 300 --cnn-checkpoint runs/synthetic-cnn/model.pt
# Environment: AUSYNTH_ANNOTATOR_SCALE=F renders a fraction F in (0, 1] of each set (default 1; 0.1 for
# a quick trial; a runs/ holding another scale's steps is refused); AUSYNTH_SKIP_SETUP=1 uses the
# calling environment (ausynth installed) instead of scripts/setup.sh's venv.
set -euo pipefail
case "${1:-}" in -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;; esac
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
REAL=../shared/data/real_faces
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then REAL=$1; shift; fi
if [ ! -f "$REAL/labels.csv" ]; then
  echo "error: $REAL/labels.csv not found (give a real_faces-style folder: labels.csv + images/)" >&2
  exit 2
fi
if [ "${AUSYNTH_SKIP_SETUP:-0}" = 1 ]; then
  export PYOPENGL_PLATFORM=${PYOPENGL_PLATFORM:-egl}
else
  VENV=$(bash scripts/setup.sh | tail -1)
  export PATH="$VENV/bin:$PATH" PYOPENGL_PLATFORM=egl
fi
SCALE=${AUSYNTH_ANNOTATOR_SCALE:-1}
if ! awk -v s="$SCALE" 'BEGIN { exit !(s + 0 > 0 && s + 0 <= 1) }'; then
  echo "error: AUSYNTH_ANNOTATOR_SCALE must be in (0, 1], not '$SCALE'" >&2
  exit 2
fi
SCALE=$(awk -v s="$SCALE" 'BEGIN { printf "%g", s }')   # 1.0 and 1 are the same scale
STEPS=runs/.annotator_steps
mkdir -p "$STEPS"
# finished steps of one scale never count for another (the runs/ paths are the same); steps
# finished before the scale was recorded were full-scale
prev=$(cat "$STEPS/scale" 2>/dev/null || { [ -n "$(ls -A "$STEPS")" ] && echo 1; } || true)
if [ -n "$prev" ] && [ "$prev" != "$SCALE" ]; then
  echo "error: runs/ holds a run at AUSYNTH_ANNOTATOR_SCALE=$prev, not $SCALE;" \
       "move runs/ aside (or delete $STEPS and the runs it lists) to start over" >&2
  exit 2
fi
echo "$SCALE" > "$STEPS/scale"
IDS='runs/photo_ids_dev_keep/*.npz'   # built with --expression keep (docs/annotators.md)

step() {  # step NAME COMMAND...: run once; a marker records success
  local name=$1; shift
  if [ -f "$STEPS/$name" ]; then echo "== $name: done earlier"; return; fi
  echo "== $name"
  "$@"
  touch "$STEPS/$name"
}

render() {  # render NAME N SEED CONFIG [ARGS...]: ~1% of samples are refused by the hole guard
  local name=$1 n=$2 seed=$3 config=$4; shift 4
  local rc=0
  n=$(awk -v n="$n" -v s="$SCALE" 'BEGIN { m = int(n * s + 0.999999); print (m < 1 ? 1 : m) }')
  ausynth render --n "$n" --out "runs/cnn_data/$name" --seed "$seed" --workers 2 \
    --config "$config" --identities "$IDS" "$@" || rc=$?
  # exit 1 = some samples failed (listed in render_errors.jsonl); accept up to 3% of them
  [ "$rc" = 0 ] || [ "$rc" = 1 ] || return "$rc"
  python - "runs/cnn_data/$name" "$n" <<'EOF'
import json, sys
man = json.load(open(f"{sys.argv[1]}/manifest.json"))
n, want = man["n_samples"], int(sys.argv[2])
print(f"{sys.argv[1]}: {n} of {want} samples written")
sys.exit(0 if n >= want - max(1, int(0.03 * want)) else 1)   # 3% refused at most (1 of a tiny set)
EOF
}

step cache python -m annotate.evalset cache --real-faces "$REAL" --out runs/annotator_auc/real_faces_128.npz
step dev_neutrals python -m annotate.evalset dev-neutrals --real-faces "$REAL" --out runs/photo_src_dev
step identities_keep ausynth identities build --images runs/photo_src_dev --out runs/photo_ids_dev_keep \
  --expression keep --workers 2
step render_k21 render k21 5000 21 configs/annotate/cnn-render.yaml --set identity.photo_fraction=1.0
step table_emfacs python -m annotate.cnn.expressions --out runs/emfacs_variants
step render_k25 render k25 5000 25 configs/annotate/cnn-render-photo.yaml
step table_brows python -m annotate.cnn.expressions --kind brows --out runs/brows
step render_k33 render k33 4000 33 configs/annotate/cnn-render-table.yaml
step table_jaw python -m annotate.cnn.expressions --kind jaw --seed 36 --out runs/jaw36
step render_k36 render k36 4000 36 configs/annotate/cnn-render-table.yaml --set expression.dataset=runs/jaw36
# training is not marked done: a rerun with other --set values trains again
echo "== train (configs/annotate/cnn-cpu.yaml $*)"
python -m annotate.cnn.train --config configs/annotate/cnn-cpu.yaml "$@"
