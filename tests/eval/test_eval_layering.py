"""eval uses the renderer only as a command (``ausynth render``) or through datasets on disk."""

from __future__ import annotations

from pathlib import Path

from tests.test_package_layering import imported_modules

REPO = Path(__file__).resolve().parents[2]


def test_eval_never_imports_synth():
    bad = {str(f.relative_to(REPO)) for f in sorted((REPO / "eval").rglob("*.py"))
           if "synth" in imported_modules(f)}
    assert not bad, f"eval modules import synth: {bad}"
