"""``ausynth edit``: target AUs, crop/paste geometry, outputs, GIF sweeps, errors.

Most tests replace the face detector by a fixed set of landmarks (the detector is tested
in aukit's own suite); one end-to-end test uses the real ``aukit.faces`` when available.
"""

from __future__ import annotations

import argparse
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aukit.aus import EMOTION_PROTOTYPES, GANIMATION_AUS
from aukit.crop import crop_box
from train import edit
from train.config import load_config, with_sources
from train.loop import training_loop

from conftest import SHARED, make_dataset, tiny_overrides


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("edit")
    data = make_dataset(root / "data")
    cfg = with_sources(load_config(None, tiny_overrides(root / "run") + ["run.image_every=100"]),
                       [f"real:{data}"], None)
    training_loop(cfg, stop_after=2)
    return root / "run"


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (120, 100, 3), dtype=np.uint8)
    path = tmp_path / "photo.png"
    Image.fromarray(img).save(path)
    return path


FACE = (30.0, 40.0, 70.0, 90.0)  # x0, y0, x1, y1 of the fake face's landmarks


def fake_landmarks(image: np.ndarray, index: int = 0) -> np.ndarray:
    rng = np.random.default_rng(1)
    x0, y0, x1, y1 = FACE
    pts = np.column_stack([rng.uniform(x0, x1, 478), rng.uniform(y0, y1, 478), np.zeros(478)])
    pts[:4, :2] = [[x0, y0], [x1, y1], [x0, y1], [x1, y0]]
    from aukit.landmarks import LM68
    pts[list(LM68[:4]), :2] = [[x0, y0], [x1, y1], [x0, y1], [x1, y0]]
    return pts.astype(np.float32)


def run(*argv: str) -> int:
    return edit.main(edit.build_parser().parse_args(list(argv)))


def test_target_aus_from_emotion_and_assignments(capsys):
    v = edit.target_aus("AU12=2", "happiness")
    idx = {a: i for i, a in enumerate(GANIMATION_AUS)}
    proto = EMOTION_PROTOTYPES["happiness"]   # the prototype, with AU12 overridden
    assert v[idx["AU06"]] == proto["AU06"] and v[idx["AU12"]] == 2.0 and v[idx["AU25"]] == proto["AU25"]
    assert v.sum() == proto["AU06"] + 2.0 + proto["AU25"]  # everything else neutral
    edit.target_aus(None, "anger")  # AU24 is not a GANimation AU
    assert "no AU24" in capsys.readouterr().err
    with pytest.raises(edit.EditError, match="unknown emotion"):
        edit.target_aus(None, "glee")
    with pytest.raises(edit.EditError):
        edit.target_aus("AU12=9", None)


def test_parse_sweep():
    assert edit.parse_sweep("AU12:0..5") == (GANIMATION_AUS.index("AU12"), 0.0, 5.0)
    for bad in ("AU12", "AU12:0-5", "AU99:0..1", "AU12:0..7"):
        with pytest.raises(edit.EditError):
            edit.parse_sweep(bad)


def test_paste_puts_crop_pixels_back_in_place():
    image = np.zeros((120, 100, 3), np.uint8)
    box = crop_box(fake_landmarks(image)[:, :2])
    maps = {"delta": np.full((32, 32, 3), 10.0, np.float32), "attention": np.zeros((32, 32), np.float32)}
    edited, mask = edit.apply_edit(image, box, maps)
    cy, cx = int(box.cy), int(box.cx)
    assert (edited[cy, cx] == 10).all() and mask[cy, cx] == 0       # centre: full edit
    assert (edited[:int(box.y0) - 1] == 0).all()                       # above the crop: untouched
    assert (mask[:int(box.y0) - 1] == 255).all()
    assert edited[int(box.y0) + 1, cx, 0] < 10                         # feathered border
    zero = {"delta": np.zeros((32, 32, 3), np.float32), "attention": np.ones((32, 32), np.float32)}
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 255, (120, 100, 3), dtype=np.uint8)
    same, mask = edit.apply_edit(photo, box, zero)
    assert np.array_equal(same, photo) and (mask == 255).all()


def test_edit_writes_photo_mask_and_crop(ckpt: Path, photo: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setattr(edit, "detect_face", fake_landmarks)
    out = tmp_path / "out" / "smile.png"
    assert run("--checkpoint", str(ckpt), "--image", str(photo), "--aus", "AU12=3,AU06=2",
               "--out", str(out), "--device", "cpu") == 0
    original = np.asarray(Image.open(photo))
    edited = np.asarray(Image.open(out))
    mask = np.asarray(Image.open(tmp_path / "out" / "smile_attention.png"))
    strip = np.asarray(Image.open(tmp_path / "out" / "smile_crop.png"))
    assert edited.shape == original.shape and mask.shape == original.shape[:2]
    assert strip.shape == (32, 4 * 32, 3)
    box = crop_box(fake_landmarks(original)[:, :2])
    outside = np.ones(original.shape[:2], bool)
    outside[max(0, int(box.y0)):int(np.ceil(box.y0 + box.side)),
            max(0, int(box.x0)):int(np.ceil(box.x0 + box.side))] = False
    assert np.array_equal(edited[outside], original[outside])
    assert (mask[outside] == 255).all()
    assert not np.array_equal(edited[~outside], original[~outside])  # the face did change


def test_sweep_writes_gif(ckpt: Path, photo: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setattr(edit, "detect_face", fake_landmarks)
    out = tmp_path / "sweep.gif"
    assert run("--checkpoint", str(ckpt), "--image", str(photo), "--sweep", "AU12:0..5",
               "--frames", "5", "--out", str(out), "--device", "cpu") == 0
    with Image.open(out) as gif:
        assert gif.n_frames == 5 and gif.size == (100, 120)


def test_errors_are_reported(ckpt: Path, photo: Path, tmp_path: Path, monkeypatch, capsys):
    assert run("--checkpoint", str(ckpt), "--image", str(photo)) == 2
    assert "give target AUs" in capsys.readouterr().err
    assert run("--checkpoint", str(tmp_path / "none"), "--image", str(photo), "--aus", "AU12=1") == 2
    assert "checkpoint not found" in capsys.readouterr().err
    # The real detect_face against a detector (aukit.faces API) that finds nothing.
    fake = types.ModuleType("aukit.faces")
    fake.FaceAnalyzer = lambda: types.SimpleNamespace(detect=lambda image: [])
    monkeypatch.setitem(sys.modules, "aukit.faces", fake)
    assert run("--checkpoint", str(ckpt), "--image", str(photo), "--aus", "AU12=1") == 2
    assert "found 0 usable face" in capsys.readouterr().err
    assert run("--checkpoint", str(ckpt), "--image", str(tmp_path / "nope.jpg"), "--aus", "AU12=1") == 2


REAL = SHARED / "real_faces" / "images" / "Aaron_Eckhart_0001.jpg"


@pytest.mark.shared_data
@pytest.mark.skipif(not REAL.is_file(), reason=f"real face photo not found at {REAL}")
def test_end_to_end_with_real_detector(ckpt: Path, tmp_path: Path):
    pytest.importorskip("aukit.faces", reason="aukit.faces (face detection) not installed yet")
    out = tmp_path / "real.png"
    assert run("--checkpoint", str(ckpt), "--image", str(REAL), "--emotion", "happiness",
               "--out", str(out), "--device", "cpu") == 0
    assert Image.open(out).size == Image.open(REAL).size
