"""The landmark branch of synthetic-cnn: pose-free features, the render-fitted ridge, the
per-AU fusion and its dev-half choice, checkpoint storage, the annotator's use of the
face's landmarks, and MediaPipe on real renders.

Synthetic shapes are a random base mesh plus one linear mode per AU, then rotated, scaled
and moved, so what the branch must recover is known exactly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from annotate.base import FaceSample
from annotate.cnn import checkpoint, geometry
from annotate.cnn.annotator import SyntheticCNNAnnotator
from annotate.cnn.config import TrainConfig
from aukit import config as cfgmod
from aukit.aus import GANIMATION_AUS
from tests.annotate.test_cnn import TINY_MODEL, write_rendered_like

torch.set_num_threads(1)
N_AU = len(GANIMATION_AUS)


def shapes(n: int, seed: int = 0, noise: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(n, 478, 3) posed landmark sets whose expression part is linear in (n, 17) AUs."""
    rng = np.random.default_rng(seed)
    base = np.random.default_rng(99).normal(size=(478, 3)) * [40, 50, 20]
    modes = np.random.default_rng(98).normal(size=(N_AU, 478, 3)) * 0.6
    aus = rng.uniform(0, 5, (n, N_AU))
    local = base + np.einsum("na,avc->nvc", aus, modes) + rng.normal(scale=noise, size=(n, 478, 3))
    rot = Rotation.from_euler("yxz", rng.uniform(-25, 25, (n, 3)), degrees=True).as_matrix()
    posed = np.einsum("nvc,ndc->nvd", local, rot) * rng.uniform(0.5, 2.0, (n, 1, 1)) + rng.uniform(0, 128, (n, 1, 3))
    return posed.astype(np.float32), aus


def test_features_ignore_pose_position_and_scale():
    lm, _ = shapes(1)
    ref = geometry.reference_shape(shapes(20, seed=1)[0])
    rot = Rotation.from_euler("yxz", [20, -10, 5], degrees=True).as_matrix()
    moved = (lm[0] @ rot.T) * 1.7 + [30, -4, 9]
    f0, f1 = geometry.features(lm, ref), geometry.features(moved[None], ref)
    assert f0.shape == (1, 936) and np.allclose(f0, f1, atol=1e-6)
    assert not np.allclose(f0, geometry.features(shapes(1, seed=5)[0], ref), atol=1e-3)


def test_fit_head_recovers_the_aus_of_unseen_posed_shapes():
    lm, aus = shapes(400, seed=0, noise=0.3)
    head = geometry.fit_head(lm, aus, n_components=40, alpha=1.0)
    test_lm, test_aus = shapes(100, seed=7, noise=0.3)
    pred = head.predict(test_lm)
    assert pred.shape == (100, N_AU) and pred.dtype == np.float32
    assert pred.min() >= 0 and pred.max() <= 5
    r = [np.corrcoef(pred[:, j], test_aus[:, j])[0, 1] for j in range(N_AU)]
    assert min(r) > 0.9, r
    again = geometry.LandmarkHead.from_arrays(head.to_arrays())
    assert np.array_equal(again.predict(test_lm), pred)
    with pytest.raises(ValueError, match="more than 40"):
        geometry.fit_head(lm[:30], aus[:30], n_components=40)


def test_search_weights_takes_each_au_from_the_source_that_separates_it():
    """CNN scores carry happiness (AU06/AU12), landmark scores carry surprise
    (AU01/02/05/26); the chosen weights must follow."""
    rng = np.random.default_rng(0)
    emotion = np.array(["neutral"] * 200 + ["happiness"] * 100 + ["surprise"] * 100)
    cnn, lm = rng.uniform(0, 1, (400, N_AU)), rng.uniform(0, 1, (400, N_AU))
    idx = GANIMATION_AUS.index
    for a in ("AU06", "AU12"):
        cnn[emotion == "happiness", idx(a)] += 0.6
    for a in ("AU01", "AU02", "AU05", "AU26"):
        lm[emotion == "surprise", idx(a)] += 0.6
    w = geometry.search_weights(cnn, lm, emotion, ("happiness", "surprise"))
    assert w[idx("AU12")] > 0.5 and w[idx("AU06")] > 0.5
    assert all(w[idx(a)] < 0.5 for a in ("AU01", "AU02", "AU05", "AU26"))
    assert w[idx("AU17")] == 0.5                                 # not a key AU: even blend
    fused = geometry.fuse(cnn, lm, w)
    assert np.allclose(fused[:, idx("AU17")], 0.5 * (cnn + lm)[:, idx("AU17")])


def _tiny_checkpoint(tmp_path: Path) -> Path:
    from annotate.cnn.train import train

    data = write_rendered_like(tmp_path / "data")
    cfg = cfgmod.load(TrainConfig, None, TINY_MODEL + [
        f"data.datasets=[{data}]", "data.load_size=40", "data.cache_dir=null", "optim.steps=2",
        "optim.batch_size=4", "run.eval_every=2", f"run.out_dir={tmp_path / 'run'}"])
    return train(cfg)


def test_checkpoint_stores_the_branch_and_the_annotator_fuses_it(tmp_path):
    path = _tiny_checkpoint(tmp_path)
    assert checkpoint.load_landmark_head(path) is None
    plain = SyntheticCNNAnnotator(checkpoint=path)
    lm, aus = shapes(200, seed=0)
    head = geometry.fit_head(lm, aus, n_components=20)
    weight = np.linspace(0, 1, N_AU)
    checkpoint.attach_landmark_head(path, head, weight, {"renders": 200})
    got_head, got_w = checkpoint.load_landmark_head(path)
    assert np.array_equal(got_w, weight) and np.array_equal(got_head.coef, head.coef)
    assert checkpoint.load(path)[1]["landmarks"] == {"renders": 200}

    ann = SyntheticCNNAnnotator(checkpoint=path)
    crops = np.random.default_rng(1).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    face_lm, _ = shapes(3, seed=3)
    cnn_only, conf = plain.predict(crops)
    fused, conf2 = ann.predict(crops, face_lm)
    assert np.allclose(fused, geometry.fuse(cnn_only, head.predict(face_lm), weight), atol=1e-5)
    assert np.allclose(ann.predict(crops)[0], cnn_only) and np.allclose(conf, conf2)
    est = ann.annotate(FaceSample(crops[0], face_lm[0], face_lm[0], "x.jpg"))
    assert np.allclose(est.au17, fused[0], atol=1e-5) and ann.describe()["landmark_branch"]
    with pytest.raises(ValueError, match="3 crops but 2 landmark sets"):
        ann.predict(crops, face_lm[:2])


def test_fit_landmark_branch_chooses_weights_on_dev_and_writes_them(tmp_path, monkeypatch):
    import annotate.cnn.train as train_mod
    import annotate.cnn.render_landmarks as rl

    path = _tiny_checkpoint(tmp_path)
    lm, aus = shapes(300, seed=0)
    monkeypatch.setattr(rl, "training_landmarks", lambda *a, **k: (lm, aus))
    dev_lm, _ = shapes(60, seed=4)
    dev = SimpleNamespace(crops=np.zeros((60, 48, 48, 3), np.uint8), landmarks=dev_lm,
                          emotion=np.array(["neutral", "happiness", "surprise", "sadness", "anger", "disgust"] * 10))
    cfg = cfgmod.load(TrainConfig, None, ["data.datasets=[x]", "landmarks.enabled=true", "landmarks.n_components=10"])
    info = train_mod.fit_landmark_branch(cfg, path, dev)
    assert info["renders"] == 300 and info["fusion"] == "dev"
    assert set(info["dev_auc_fused"]) >= {"happiness", "anger"}
    _, weight = checkpoint.load_landmark_head(path)
    assert weight.shape == (N_AU,) and set(np.unique(weight)) <= set(geometry.WEIGHT_GRID)
    info = train_mod.fit_landmark_branch(cfg, path, None)            # no dev half: even blend
    assert info["fusion"].startswith("even") and np.all(checkpoint.load_landmark_head(path)[1] == 0.5)


def test_landmark_config_is_checked_and_the_preset_enables_the_branch():
    with pytest.raises(cfgmod.ConfigError, match="landmarks.fusion"):
        cfgmod.load(TrainConfig, None, ["landmarks.fusion=best"])
    with pytest.raises(cfgmod.ConfigError):
        cfgmod.load(TrainConfig, None, ["landmarks.components=3"])
    preset = Path(__file__).resolve().parents[2] / "configs" / "annotate" / "cnn-cpu.yaml"
    cfg = cfgmod.load(TrainConfig, preset)
    assert cfg.landmarks.enabled and cfg.landmarks.fusion == "dev" and cfg.landmarks.exclude == ("prototype",)
    with pytest.raises(cfgmod.ConfigError, match="landmarks.exclude"):
        cfgmod.load(TrainConfig, None, ["landmarks.exclude=['']"])


def test_training_landmarks_leave_out_test_split_occluded_and_excluded_strategies(monkeypatch):
    import annotate.cnn.render_landmarks as rl

    lm, aus = shapes(8, seed=2)
    part = {"landmarks": lm, "au17": aus.astype(np.float32),
            "occluded": np.array([0, 0, 0, 0.5, 0, 0, 0, 0], np.float32),
            "test": np.array([0, 0, 0, 0, 0, 0, 0, 1], bool),
            "strategy": np.array(["sparse", "prototype", "neutral", "sparse", "dataset", "prototype", "", "sparse"]),
            "row": np.arange(8)}
    monkeypatch.setattr(rl, "folder_landmarks", lambda *a, **k: part)
    monkeypatch.setattr(rl, "finished_ids", lambda root: [f"{k:08d}" for k in range(8)])
    got_lm, got_au = rl.training_landmarks(("a",), None, 0.05, exclude=("prototype",))
    assert np.array_equal(got_au, part["au17"][[0, 2, 4, 6]]) and np.array_equal(got_lm, lm[[0, 2, 4, 6]])
    assert len(rl.training_landmarks(("a",), None, 0.05)[0]) == 6
    with pytest.raises(ValueError, match="no training render is left"):
        rl.training_landmarks(("a",), None, 0.05, exclude=("sparse", "prototype", "neutral", "dataset", ""))


def test_training_landmarks_cut_at_max_samples_across_folders(monkeypatch):
    """``data.max_samples`` counts renders over the concatenated folders, as the CNN does,
    including renders where MediaPipe found no face (rows 2 and 5 here)."""
    import annotate.cnn.render_landmarks as rl

    lm, aus = shapes(6, seed=3)
    found = np.array([0, 1, 3, 4, 6, 7])                       # rows of 8 renders with a face
    part = {"landmarks": lm, "au17": aus.astype(np.float32), "occluded": np.zeros(6, np.float32),
            "test": np.zeros(6, bool), "strategy": np.array(["sparse"] * 6), "row": found}
    monkeypatch.setattr(rl, "folder_landmarks", lambda *a, **k: part)
    monkeypatch.setattr(rl, "finished_ids", lambda root: [f"{k:08d}" for k in range(8)])
    assert len(rl.training_landmarks(("a", "b"), None, 0.05)[0]) == 12
    got_lm, _ = rl.training_landmarks(("a", "b"), None, 0.05, max_samples=11)   # all of a; b up to its row 2
    assert np.array_equal(got_lm, np.concatenate([lm, lm[:2]]))    # b has no face in its row 2
    assert len(rl.training_landmarks(("a", "b"), None, 0.05, max_samples=4)[0]) == 3


def test_too_few_renders_for_the_branch_is_a_clear_error(tmp_path, monkeypatch, capsys):
    """Fewer usable renders than landmarks.n_components: a message naming both keys, exit 2,
    and the checkpoint left as it was (no branch attached)."""
    import annotate.cnn.render_landmarks as rl
    from annotate.cnn.train import build_parser, main

    path = _tiny_checkpoint(tmp_path)
    lm, aus = shapes(12, seed=0)
    monkeypatch.setattr(rl, "training_landmarks", lambda *a, **k: (lm, aus))
    args = build_parser().parse_args(["--landmarks-only", "--set", "data.datasets=[x]",
                                      "--set", f"run.out_dir={path.parent}", "--set", "landmarks.n_components=20"])
    assert main(args) == 2
    out = capsys.readouterr().out
    assert "12 usable renders" in out and "landmarks.n_components=20" in out
    assert checkpoint.load_landmark_head(path) is None


def test_landmarks_only_needs_an_existing_checkpoint(tmp_path, capsys):
    from annotate.cnn.train import build_parser, main

    args = build_parser().parse_args(["--landmarks-only", "--set", "data.datasets=[x]",
                                      "--set", f"run.out_dir={tmp_path / 'none'}"])
    assert main(args) == 2
    assert "checkpoint not found" in capsys.readouterr().out


def test_mediapipe_landmarks_of_real_renders(tmp_path):
    """Four 128 px renders through ``folder_landmarks`` (skips where the renderer cannot run)."""
    from annotate.cnn.render_landmarks import folder_landmarks
    from aukit.dataset import META

    out = tmp_path / "r"
    env = {**os.environ, "PYOPENGL_PLATFORM": "egl"}
    cmd = [sys.executable, "-m", "ausynth", "render", "--n", "4", "--out", str(out), "--seed", "3",
           "--workers", "1", "--no-progress", "--set", "output.write_arrays=false",
           "--set", "occluders.probability=0.0"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    if proc.returncode != 0:
        pytest.skip(f"renderer unavailable here: {proc.stderr.strip()[-300:]}")
    got = folder_landmarks(out, tmp_path / "cache", workers=1, log=False)
    assert 3 <= len(got["au17"]) <= 4 and got["landmarks"].shape[1:] == (478, 3)
    labels = np.array([json.loads(p.read_text())["au17"] for p in (out / META).glob("*.json")])
    assert all(np.abs(labels - a).max(axis=1).min() < 1e-5 for a in got["au17"])
    xy = got["landmarks"][..., :2]
    assert xy.min() > -10 and xy.max() < 138                  # a face in the 128 px crop frame
    assert set(got["strategy"]) <= {"neutral", "sparse", "prototype", "dataset"}
    assert set(got["row"]) <= {0, 1, 2, 3} and len(set(got["row"])) == len(got["row"])
    assert len(list((tmp_path / "cache").glob("*-landmarks3-4.npz"))) == 1
    again = folder_landmarks(out, tmp_path / "cache", workers=1, log=False)
    assert np.array_equal(again["landmarks"], got["landmarks"])
