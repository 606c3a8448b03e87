"""Shared test fixtures. Tests that need ../shared/data skip cleanly where it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def shared_data_or_skip(*parts: str) -> Path:
    """Path under ../shared/data, or skip the test with a reason if it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (development data, absent on user machines)")
    return path
