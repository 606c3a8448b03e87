"""Shared test fixtures. Tests that need ../shared/data skip cleanly where it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

# Mesa's llvmpipe (pyrender's EGL context) and triton (loaded by torch._dynamo on the first
# optimizer step) each bring their own LLVM; loading triton *after* a GL context exists segfaults
# the process. The product never mixes them in one process (synth never imports torch), but one
# pytest process runs render tests before training tests in some orders, so load it first.
try:
    import torch._dynamo  # noqa: F401
except ImportError:   # torch is optional for the synth-only tests
    pass

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def shared_data_or_skip(*parts: str) -> Path:
    """Path under ../shared/data, or skip the test with a reason if it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (development data, absent on user machines)")
    return path
