"""Test-set reading: spec parsing, neutral selection, landmarks, identities, models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aukit.aus import GANIMATION_AUS
from aukit.dataset import DatasetError
from aukit.writer import DatasetWriter
from eval.config import SelectConfig
from eval.models import parse_checkpoint_arg, real_share
from eval.testsets import (REAL, SYNTHETIC, Face, is_neutral, landmarks_of, open_test_set, parse_spec,
                           training_identities)

from .conftest import write_set


def test_parse_spec():
    assert parse_spec("real:/d") == ("real", Path("/d"), None, None)
    assert parse_spec("s:/d@synthetic#all") == ("s", Path("/d"), SYNTHETIC, "all")
    for bad in ("nodir", "x:/d@weird", "x:/d#val", "a b:/d"):
        with pytest.raises(ValueError):
            parse_spec(bad)


def test_neutral_rules():
    aus = np.zeros(17)
    blink = aus.copy()
    blink[GANIMATION_AUS.index("AU45")] = 4
    smile = aus.copy()
    smile[GANIMATION_AUS.index("AU12")] = 0.01
    assert is_neutral(Face("a", Path("x"), blink, "test"), SYNTHETIC)
    assert not is_neutral(Face("a", Path("x"), smile, "test"), SYNTHETIC)
    assert is_neutral(Face("a", Path("x"), smile, "test", "neutral"), REAL)
    assert not is_neutral(Face("a", Path("x"), aus, "test", "happiness"), REAL)


def test_selection_is_seeded_neutral_and_from_the_split(tmp_path):
    root = write_set(tmp_path / "r", "real", n=12, n_test=8, seed=0)
    ts = open_test_set(f"r:{root}", SelectConfig(n_faces=3, seed=1))
    assert ts.kind == REAL and len(ts.faces) == 3
    assert all(f.split == "test" and f.emotion == "neutral" for f in ts.faces)
    again = open_test_set(f"r:{root}", SelectConfig(n_faces=3, seed=1))
    assert [f.id for f in again.faces] == [f.id for f in ts.faces]
    assert ts.selection["pool"] == 4 and len(ts.selection["ids"]) == 3
    assert len(open_test_set(f"r:{root}#train", SelectConfig(n_faces=3)).faces) == 2   # 2 neutral there
    assert len(open_test_set(f"r:{root}#all", SelectConfig(n_faces=20)).faces) == 6
    few = write_set(tmp_path / "few", "real", n=4, n_test=1, seed=0)
    with pytest.raises(DatasetError, match="1 neutral test-split faces"):
        open_test_set(f"f:{few}", SelectConfig(n_faces=3))


def test_synthetic_kind_regions_and_identities(tmp_path):
    root = write_set(tmp_path / "s", "synthetic", n=4, n_test=4, seed=3)
    ts = open_test_set(f"s:{root}", SelectConfig(n_faces=4))
    assert ts.exact and np.all(ts.labels() == 0)
    regions, order = ts.regions(64)
    assert regions.shape == (4, 64, 64) and order[0] == "AU01"
    assert training_identities(root, "test") == {str(3000 + i) for i in range(4)}


def test_landmarks_are_scaled_to_the_model_size(tmp_path):
    w = DatasetWriter(tmp_path / "d", image_format="png")
    lm = np.zeros((478, 3), np.float32)
    lm[0] = [10, 20, 0]
    w.write_sample("a", np.zeros((40, 40, 3), np.uint8), {"au17": [0.0] * 17, "split": "test"},
                   {"landmarks": lm})
    w.finalize({})
    face = Face("a", tmp_path / "d" / "imgs" / "a.png", np.zeros(17), "test")
    assert landmarks_of(tmp_path / "d", face, 80)[0].tolist() == [20.0, 40.0]


def test_checkpoint_names_and_real_share():
    assert parse_checkpoint_arg("a=runs/x") == ("a", Path("runs/x"))
    with pytest.raises(ValueError):
        parse_checkpoint_arg("no-edit=runs/x")
    srcs = [{"kind": "synthetic", "weight": 0.75}, {"kind": "real", "weight": 0.25}]
    assert real_share(srcs) == 0.25
    assert real_share([{"kind": "synthetic", "weight": None, "manifest_n_train": 300},
                       {"kind": "real", "weight": None, "manifest_n_train": 100}]) == 0.25
    assert real_share([{"weight": 1.0}]) is None
