"""Per-AU companion regions: render requirements, merging, scene checks (renders faked)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from aukit.aus import GANIMATION_AUS
from aukit.writer import DatasetWriter
from eval import regions
from eval.config import SelectConfig
from eval.testsets import open_test_set


def job(tmp_path: Path, weights: dict) -> dict:
    table = regions.write_au_table(tmp_path / "zero", np.zeros(17))
    return {"seed": 5, "n_requested": 2, "config": {"expression": {
        "weights": weights, "dataset": str(table), "blink_probability": 0.0}}}


def write_render(root: Path, pose_yaw: float, region_row: int | None) -> None:
    """Two 'rendered' samples; ``region_row``: the image row the AU moves (None: none)."""
    w = DatasetWriter(root, image_format="png")
    for i in range(2):
        regions_map = np.zeros((8, 8), np.uint32)
        if region_row is not None:
            regions_map[region_row + i] = 1 << 3
        spec = {"pose": {"yaw": pose_yaw + i}, "aus": {}, "expression": {}}
        w.write_sample(f"{i:08d}", np.zeros((8, 8, 3), np.uint8), {"au17": [0.0] * 17, "split": "train",
                       "spec": spec}, {"au_regions": regions_map})
    w.finalize({"kind": "ausynth-render"})


def test_only_one_row_dataset_renders_are_accepted(tmp_path):
    regions.check_renderable(job(tmp_path, {"dataset": 1.0, "neutral": 0.0}))
    with pytest.raises(ValueError, match="dataset"):
        regions.check_renderable(job(tmp_path, {"neutral": 1.0}))


def test_build_merges_companions_in_ganimation_bit_order(tmp_path, monkeypatch):
    root = tmp_path / "test"
    write_render(root, 10.0, None)
    (root / "job.json").write_text(json.dumps(job(tmp_path, {"dataset": 1.0})))

    def fake_companion(r, j, au, workers):
        out = tmp_path / "comp" / au
        write_render(out, 10.0, GANIMATION_AUS.index(au) % 6)
        return out
    monkeypatch.setattr(regions, "render_companion", fake_companion)
    assert regions.build(root) == 2
    with np.load(root / regions.REGIONS_DIR / "00000001.npz") as z:
        bits, order = z["regions"], list(z["bit_order"])
    assert order == list(GANIMATION_AUS)
    j12 = GANIMATION_AUS.index("AU12")
    row = j12 % 6 + 1                                  # sample 1: the companion's row + 1
    assert np.all((bits[row] >> j12) & 1 == 1)
    assert np.all((bits[row - 1] >> j12) & 1 == 0)     # sample 0's row for AU12 is not sample 1's
    assert (bits[7] == 0).all()
    found, order = open_test_set(f"t:{root}@synthetic#all", SelectConfig(n_faces=2, neutral_only=False)).regions(8)
    assert order[0] == "AU01" and found.shape == (2, 8, 8)


def test_a_companion_of_another_scene_is_refused(tmp_path, monkeypatch):
    root = tmp_path / "test"
    write_render(root, 10.0, None)
    (root / "job.json").write_text(json.dumps(job(tmp_path, {"dataset": 1.0})))
    monkeypatch.setattr(regions, "render_companion",
                        lambda r, j, au, w: (write_render(tmp_path / "c" / au, 30.0, 1), tmp_path / "c" / au)[1])
    with pytest.raises(ValueError, match="not the same scene"):
        regions.build(root)
