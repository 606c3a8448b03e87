"""aukit.faces: detection + 478 landmarks, small faces via tiled full-range detection."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aukit.faces import Face, FaceAnalyzer, FaceConfig, _tile_origins
from aukit.imageio import load_image

REPO = Path(__file__).resolve().parents[2]


def paste(image: np.ndarray, canvas_hw: tuple[int, int], xy: tuple[int, int], scale: float = 1.0) -> np.ndarray:
    """``image`` scaled by ``scale`` on a mid-grey canvas with its top-left corner at ``xy``."""
    im = Image.fromarray(image)
    if scale != 1.0:
        im = im.resize((round(im.width * scale), round(im.height * scale)), Image.Resampling.LANCZOS)
    canvas = np.full((*canvas_hw, 3), 128, np.uint8)
    canvas[xy[1]:xy[1] + im.height, xy[0]:xy[0] + im.width] = np.asarray(im)
    return canvas


def check_face(face: Face, shape: tuple[int, ...]) -> None:
    assert face.landmarks.dtype == np.float32 and face.landmarks.shape == (478, 3)
    assert np.all(np.isfinite(face.landmarks))
    x0, y0, x1, y1 = face.box
    assert -5 <= x0 < x1 <= shape[1] + 5 and -5 <= y0 < y1 <= shape[0] + 5
    assert 0.0 <= face.score <= 1.0 and face.detector in ("short-range", "full-range")


def test_import_does_not_load_mediapipe():
    code = "import sys, aukit.faces; print('mediapipe' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_group_photo_finds_all_five_sorted(analyzer, feat_data):
    image = load_image(feat_data / "multi_face.jpg")
    faces = analyzer.detect(image)
    assert len(faces) == 5
    for f in faces:
        check_face(f, image.shape)
    sizes = [f.size for f in faces]
    assert sizes == sorted(sizes, reverse=True)
    # the short-range detector alone misses some of them: the second pass is needed
    assert {f.detector for f in faces} == {"short-range", "full-range"}
    assert analyzer.largest_face(image).size == pytest.approx(sizes[0])


def test_no_face_in_landscape(analyzer, feat_data):
    image = load_image(feat_data / "free-mountain-vector-01.jpg")
    assert analyzer.detect(image) == [] and analyzer.largest_face(image) is None


def test_landmarks_follow_translation_and_scale(analyzer, feat_data):
    image = load_image(feat_data / "single_face.jpg")
    ref = analyzer.largest_face(image)
    shifted = analyzer.largest_face(paste(image, (800, 900), (217, 131)))
    assert np.abs(shifted.landmarks[:, :2] - (ref.landmarks[:, :2] + [217, 131])).mean() < 0.01 * ref.size
    big = Image.fromarray(image).resize((image.shape[1] * 2, image.shape[0] * 2), Image.Resampling.BICUBIC)
    scaled = analyzer.largest_face(np.asarray(big))
    assert np.abs(scaled.landmarks[:, :2] / 2 - ref.landmarks[:, :2]).mean() < 0.01 * ref.size
    # z is in pixels too: it doubles with the image
    assert np.corrcoef(scaled.landmarks[:, 2], ref.landmarks[:, 2])[0, 1] > 0.98
    assert np.std(scaled.landmarks[:, 2]) / np.std(ref.landmarks[:, 2]) == pytest.approx(2.0, rel=0.1)


def test_small_face_in_large_photo_needs_tiling(feat_data):
    """A ~64 px face in a 1920x1080 frame: found by the tiled full-range pass only."""
    image = load_image(feat_data / "single_face.jpg")  # face ~224 px
    canvas = paste(image, (1080, 1920), (1400, 700), scale=64 / 224)
    with FaceAnalyzer(FaceConfig(min_face_px=40)) as fa:
        faces = fa.detect(canvas)
    assert len(faces) == 1 and faces[0].detector == "full-range" and not faces[0].tiny
    cx = (faces[0].box[0] + faces[0].box[2]) / 2
    assert 1400 < cx < 1400 + 572 * 64 / 224
    with FaceAnalyzer(FaceConfig(full_range=False)) as fa:
        assert fa.detect(canvas) == []


def test_tiny_faces_are_reported_not_used(feat_data):
    image = load_image(feat_data / "single_face.jpg")
    with FaceAnalyzer(FaceConfig(min_face_px=300)) as fa:  # the face is ~224 px
        faces = fa.detect(image)
        assert len(faces) == 1 and faces[0].tiny
        assert fa.largest_face(image) is None
        assert fa.largest_face(image, allow_tiny=True).tiny


def test_tiles_cover_the_image():
    for w, h, side in [(1920, 1080, 400), (400, 400, 400), (401, 90, 100)]:
        origins = _tile_origins(w, h, side)
        covered = np.zeros((h, w), bool)
        for x, y in origins:
            covered[y:y + side, x:x + side] = True
            assert x + min(side, w) <= w and y + min(side, h) <= h
        assert covered.all()


def test_bad_input_and_closed_analyzer(feat_data):
    fa = FaceAnalyzer()
    with pytest.raises(ValueError, match="uint8"):
        fa.detect(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        fa.detect(np.zeros((10, 10, 3), np.float32))
    fa.close()
    with pytest.raises(RuntimeError, match="closed"):
        fa.detect(np.zeros((64, 64, 3), np.uint8))


def test_config_checks():
    from aukit.config import ConfigError, from_dict

    assert from_dict(FaceConfig, {"min_face_px": 64}).min_face_px == 64.0
    with pytest.raises(ConfigError, match="crop_margin"):
        FaceConfig(crop_margin=1.0)
    with pytest.raises(ConfigError, match="did you mean"):
        from_dict(FaceConfig, {"min_face_size": 3})


@pytest.mark.shared_data
def test_recall_and_speed_on_real_faces(analyzer, real_faces):
    """Tight, mostly grayscale 192 px crops: the largest face is found in >= 97%."""
    images_dir, rows = real_faces
    rng = np.random.default_rng(0)
    picked = [rows[i] for i in rng.choice(len(rows), 200, replace=False)]
    images = [load_image(images_dir / r["image"]) for r in picked]
    t0 = time.perf_counter()
    faces = [analyzer.largest_face(im, allow_tiny=True) for im in images]
    ms = (time.perf_counter() - t0) / len(images) * 1000
    found = [f for f in faces if f is not None]
    print(f"\nreal_faces: {len(found)}/{len(images)} faces, {ms:.1f} ms/image")
    assert len(found) >= 0.97 * len(images)
    # faces fill these crops: landmark boxes cover most of the image
    assert np.median([f.size / max(im.shape[:2]) for f, im in zip(faces, images) if f]) > 0.7
