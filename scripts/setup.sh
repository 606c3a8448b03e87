#!/usr/bin/env bash
# Set up everything ausynth needs on a fresh Debian/Ubuntu machine (2 cores, no GPU is fine):
#   1. the system libraries for headless OpenGL (EGL on Mesa llvmpipe), installed if missing;
#   2. a virtual environment keyed by a hash of the dependency pins, reused across clones;
#   3. this checkout installed into it (editable).
# Prints the venv path on the last line. Source-safe: `VENV=$(bash scripts/setup.sh | tail -1)`.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

APT_PKGS=(libegl1 libegl-mesa0 libgl1-mesa-dri libgbm1 libglib2.0-0)
[ "${AUSYNTH_WITH_CHROMIUM:-0}" = 1 ] && APT_PKGS+=(chromium)
missing=()
for p in "${APT_PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing system packages: ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || { echo "setup: needs Python 3.11 ($PY not found)" >&2; exit 1; }
EXTRAS=${AUSYNTH_EXTRAS:-}            # e.g. "blender" to add bpy
pins=$(cat requirements.lock requirements-nodeps.txt; echo "extras=$EXTRAS"; $PY --version)
key=$(printf '%s' "$pins" | sha256sum | cut -c1-16)
VENV=${AUSYNTH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/ausynth/venv-$key}

# The venv is shared by every clone with the same pins: hold a lock while creating it or installing
# this checkout, so two clones set up at once (two CI jobs, tests beside a demo) don't race in pip.
mkdir -p "$(dirname "$VENV")"
exec 9>"$VENV.lock"
flock 9
if [ ! -f "$VENV/.complete" ]; then
  echo "setup: creating $VENV (first run takes a few minutes)" >&2
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade "pip==26.3" >&2
  "$VENV/bin/pip" install -q -r requirements.lock >&2
  # These two pin ancient torch/Pillow in their metadata but work with ours.
  "$VENV/bin/pip" install -q --no-deps -r requirements-nodeps.txt >&2
  if [ -n "$EXTRAS" ]; then
    case ",$EXTRAS," in *,blender,*) "$VENV/bin/pip" install -q "bpy==5.0.1" >&2 ;; esac
  fi
  touch "$VENV/.complete"
fi
"$VENV/bin/pip" install -q --no-deps --no-build-isolation -e . >&2
echo "$VENV"
