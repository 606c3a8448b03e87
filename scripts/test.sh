#!/usr/bin/env bash
# Set up (system packages + pinned venv) and run the whole test suite. Extra args go to pytest.
# Fails loudly when no test is collected.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
# The suite covers the Blender backend too, so the test venv includes the [blender] extra
# (its tests skip where bpy is absent, e.g. AUSYNTH_EXTRAS= bash scripts/test.sh).
export AUSYNTH_EXTRAS="${AUSYNTH_EXTRAS-blender}"
VENV=$(bash scripts/setup.sh | tail -1)
export PYOPENGL_PLATFORM=egl PATH="$VENV/bin:$PATH"
set +e
"$VENV/bin/python" -m pytest -q -p no:cacheprovider "$@"
rc=$?
set -e
if [ "$rc" = 5 ]; then
  echo "ERROR: pytest collected no tests - the suite is broken or empty" >&2
  exit 1
fi
exit "$rc"
