"""Annotator interface, registry, OpenFace import and the py-feat annotator's offline error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from annotate import registry
from annotate.base import (AnnotationError, Annotator, AnnotatorUnavailable, AUEstimate, FaceSample,
                           check_estimate)
from annotate.openface import AU_COLUMNS, OpenFaceAnnotator, frame_number, read_openface_csv
from aukit.aus import GANIMATION_AUS
from aukit.landmarks import LM68


def face_at(offset: float, source: str = "sub/img_0007.jpg", size: float = 100.0) -> FaceSample:
    """A FaceSample whose landmarks form a ``size``-px grid pattern shifted by ``offset``."""
    rng = np.random.default_rng(0)
    lm = np.zeros((478, 3), np.float32)
    lm[:, :2] = rng.uniform(0, size, (478, 2)) + offset
    return FaceSample(np.zeros((128, 128, 3), np.uint8), lm, lm.copy(), source)


def openface_csv(path: Path, rows: list[dict], frame_col: bool = False) -> Path:
    """Write a CSV the way OpenFace does: ', '-separated header, leading spaces."""
    cols = (["frame"] if frame_col else []) + ["face", "confidence", "success"]
    cols += [f"x_{i}" for i in range(68)] + [f"y_{i}" for i in range(68)] + list(AU_COLUMNS)
    cols += ["AU28_c"]
    lines = [", ".join(cols)]
    for r in rows:
        vals = [r.get(c, 0.0) for c in cols]
        lines.append(", ".join(f"{v:g}" for v in vals))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def row_for(sample: FaceSample, au_value: float, shift: float = 0.0, **extra) -> dict:
    pts = sample.image_landmarks[list(LM68), :2] + shift
    row = {f"x_{i}": float(pts[i, 0]) for i in range(68)} | {f"y_{i}": float(pts[i, 1]) for i in range(68)}
    row |= {c: au_value for c in AU_COLUMNS} | {"confidence": 0.9, "success": 1}
    return row | extra


def test_check_estimate_rejects_bad_output():
    ok = check_estimate(AUEstimate(np.full(17, 2.0), 0.5), "x")
    assert ok.au17.dtype == np.float32
    for bad in (AUEstimate(np.zeros(16), 0.5), AUEstimate(np.full(17, 6.0), 0.5),
                AUEstimate(np.full(17, np.nan), 0.5), AUEstimate(np.zeros(17), 1.5)):
        with pytest.raises(ValueError, match="annotator 'x'"):
            check_estimate(bad, "x")


def test_registry():
    assert {"openface", "pyfeat"} <= set(registry.ANNOTATORS)
    with pytest.raises(ValueError, match="available: .*openface"):
        registry.create("no-such-annotator")
    with pytest.raises(ValueError, match="already registered"):
        registry.register("openface", lambda **_: None)
    with pytest.raises(AnnotatorUnavailable, match="--openface-csv"):
        registry.create("openface")


def test_openface_per_image_folder_matches_the_right_face(tmp_path):
    face = face_at(200.0)
    # two faces in the photo: the other one 3 face sizes away, with different AUs
    openface_csv(tmp_path / "sub" / "img_0007.csv", [
        row_for(face, 4.0, shift=300.0, face=0), row_for(face, 1.5, shift=2.0, face=1)])
    ann = OpenFaceAnnotator(tmp_path)
    assert isinstance(ann, Annotator)
    est = check_estimate(ann.annotate(face), ann.name)
    assert np.allclose(est.au17, 1.5) and est.confidence == pytest.approx(0.9)
    with pytest.raises(AnnotationError) as err:
        ann.annotate(face_at(900.0))          # a face OpenFace never saw
    assert err.value.reason == "openface-no-match"
    with pytest.raises(AnnotationError) as err:
        ann.annotate(face_at(0.0, source="other.jpg"))
    assert err.value.reason == "openface-no-csv"


def test_openface_flat_folder_and_failed_rows(tmp_path):
    face = face_at(50.0, source="deep/dir/img_0007.jpg")
    openface_csv(tmp_path / "img_0007.csv", [row_for(face, 2.0, success=0)])
    with pytest.raises(AnnotationError) as err:
        OpenFaceAnnotator(tmp_path).annotate(face)
    assert err.value.reason == "openface-no-row"
    openface_csv(tmp_path / "img_0007.csv", [row_for(face, 9.0, success=1)])
    est = OpenFaceAnnotator(tmp_path).annotate(face)
    assert np.allclose(est.au17, 5.0)  # clipped to the FACS range


def test_openface_video_csv_by_frame_number(tmp_path):
    face = face_at(10.0, source="frames/clip_000007.png")
    rows = [row_for(face, 0.1 * k, frame=k) for k in range(1, 11)]
    ann = OpenFaceAnnotator(openface_csv(tmp_path / "video.csv", rows, frame_col=True))
    assert np.allclose(ann.annotate(face).au17, 0.7)
    assert np.allclose(OpenFaceAnnotator(tmp_path / "video.csv", frame_offset=1).annotate(face).au17, 0.8)
    assert frame_number("a/b/frame_det_00_000042.bmp") == 42 and frame_number("x.jpg") is None


def test_openface_without_landmarks_needs_one_row(tmp_path):
    face = face_at(0.0, source="a.jpg")
    au_only = {c: 1.0 for c in AU_COLUMNS}
    (tmp_path / "a.csv").write_text("face, success, " + ", ".join(AU_COLUMNS) + "\n"
                                    + "0, 1, " + ", ".join("1.0" for _ in AU_COLUMNS) + "\n")
    assert np.allclose(OpenFaceAnnotator(tmp_path).annotate(face).au17, list(au_only.values()))
    with open(tmp_path / "a.csv", "a") as fh:
        fh.write("1, 1, " + ", ".join("2.0" for _ in AU_COLUMNS) + "\n")
    with pytest.raises(AnnotationError, match="no landmarks to match"):
        OpenFaceAnnotator(tmp_path).annotate(face)


def test_openface_rejects_non_openface_csv(tmp_path):
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="missing columns"):
        read_openface_csv(tmp_path / "x.csv")
    with pytest.raises(AnnotatorUnavailable, match="not found"):
        OpenFaceAnnotator(tmp_path / "absent")


def test_reads_real_openface_output(feat_data):
    """py-feat ships an OpenFace FeatureExtraction CSV (headers with leading spaces)."""
    rows = read_openface_csv(feat_data / "OpenFace_Test.csv")
    assert len(rows) == 100 and rows[0]["frame"] == 1.0
    au = np.array([[r[c] for c in AU_COLUMNS] for r in rows])
    assert au.shape == (100, len(GANIMATION_AUS)) and au.min() >= 0 and au.max() <= 5
    assert all(f"x_{i}" in rows[0] for i in range(68))


@pytest.fixture(scope="module")
def pyfeat_attempt():
    """Build py-feat's annotator once: the instance, or the AnnotatorUnavailable it raised."""
    pytest.importorskip("feat")
    try:
        return registry.create("pyfeat")
    except AnnotatorUnavailable as exc:
        return exc


def test_pyfeat_offline_error_is_clear(pyfeat_attempt):
    if not isinstance(pyfeat_attempt, AnnotatorUnavailable):
        pytest.skip("py-feat's weights are in the Hugging Face cache here: no offline error to check")
    msg = str(pyfeat_attempt)
    assert "Hugging Face cache" in msg and "--annotator" in msg


def test_pyfeat_attempt_leaves_autograd_on(pyfeat_attempt):
    """py-feat's detector constructors switch autograd off process-wide; we restore it."""
    import torch

    assert torch.is_grad_enabled()


def test_pyfeat_annotates_a_face(pyfeat_attempt, feat_data):
    if isinstance(pyfeat_attempt, AnnotatorUnavailable):
        pytest.skip("py-feat's weights are not in the Hugging Face cache (offline machine)")
    from aukit.crop import crop_box, crop_image
    from aukit.faces import largest_face
    from aukit.imageio import load_image

    image = load_image(feat_data / "single_face.jpg")
    face = largest_face(image)
    crop = crop_image(image, crop_box(face.landmarks[:, :2]), 128)
    est = check_estimate(pyfeat_attempt.annotate(FaceSample(crop, face.landmarks, face.landmarks,
                                                            "single_face.jpg")), "pyfeat")
    assert est.au17.shape == (17,)
