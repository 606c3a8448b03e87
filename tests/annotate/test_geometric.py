"""The geometric annotator: the fit recovers known AUs from projected rig landmarks;
interface contract (shapes, ranges, confidence, errors); calibration maps are monotone."""

from __future__ import annotations

import numpy as np
import pytest

from annotate import registry
from annotate.base import AnnotationError, Annotator, FaceSample, check_estimate
from annotate.geometric import Calibration, GeometricAnnotator, GeometricConfig, fit_au17
from aukit.aus import GANIMATION_AUS, au_vector, rig_to_ganimation
from aukit.basis import load_basis
from aukit.fitting import _expmap, landmark_prior

CASES = [{"AU06": 2.0, "AU12": 3.0}, {"AU01": 3.0, "AU02": 3.0, "AU26": 3.0},
         {"AU15": 3.0, "AU17": 2.0}, {"AU04": 3.0}, {}]


def project(aus: dict[str, float], yaw: float = 15.0, pitch: float = 8.0, roll: float = 5.0,
            seed: int = 0) -> np.ndarray:
    """MediaPipe-style pixel landmarks (478, 3) of the rig with ``aus``, a random identity
    and a known pose: the model the fit assumes (neutral + prior + shape + AUs), weak
    perspective, 9 px per cm (a ~128 px face crop)."""
    b = load_basis()
    shape = np.random.default_rng(seed).normal(0.0, 0.7, len(b.shape_names))
    verts = b.deform(au_vector(aus), shape) + landmark_prior()
    rot = _expmap(np.radians([pitch, yaw, roll]))
    q = 9.0 * verts @ rot.T + np.array([64.0, -70.0, 0.0])     # image frame: y up, z to camera
    return (q * np.array([1.0, -1.0, -1.0])).astype(np.float32)  # pixels: y down, z MediaPipe


def face(landmarks: np.ndarray) -> FaceSample:
    return FaceSample(np.zeros((128, 128, 3), np.uint8), landmarks, landmarks.copy(), "x.jpg")


@pytest.mark.parametrize("aus", CASES)
def test_fit_recovers_known_aus(aus):
    got, fit = fit_au17(project(aus), GeometricConfig())
    want = rig_to_ganimation(au_vector(aus))
    err = np.abs(got - want)
    assert err.max() < 0.75, dict(zip(GANIMATION_AUS, np.round(got, 2)))
    assert err.mean() < 0.1
    assert fit.residual < 0.002
    assert abs(fit.pose["yaw"] - 15.0) < 2.0


def test_region_fits_read_upper_aus_from_the_upper_face_only():
    """``regions``: the upper-face AUs come from a fit of the upper landmarks only, so noise on
    the mouth's landmarks leaves them exactly as they were (the whole-face fit moves a little)."""
    from annotate.geometric import UPPER_FROM

    clean = project({"AU01": 3.0, "AU02": 3.0, "AU12": 3.0}).astype(np.float64)
    y = load_basis().neutral[:468, 1]
    mouth = np.flatnonzero(y < -2.5)                          # lips and chin
    assert UPPER_FROM > -2.5
    noisy = clean.copy()
    noisy[mouth] += np.random.default_rng(5).normal(0.0, 6.0, (len(mouth), 3))
    upper = [GANIMATION_AUS.index(a) for a in ("AU01", "AU02", "AU04", "AU05", "AU06", "AU07", "AU09")]
    region = [fit_au17(lm, GeometricConfig(regions=True))[0] for lm in (clean, noisy)]
    whole = [fit_au17(lm, GeometricConfig())[0] for lm in (clean, noisy)]
    assert np.abs(region[0][upper] - region[1][upper]).max() < 1e-6
    assert np.abs(whole[0][upper] - whole[1][upper]).max() > 1e-3
    assert np.abs(region[0][upper[:2]] - 3.0).max() < 0.5
    assert region[0][GANIMATION_AUS.index("AU12")] > 2.0       # the lower fit reads the mouth


def test_fit_ranks_intensities():
    """More of an AU in the face -> more of it in the estimate (what the AUC check needs)."""
    k = GANIMATION_AUS.index("AU12")
    values = [fit_au17(project({"AU12": a}, seed=3), GeometricConfig())[0][k] for a in (0.0, 1.5, 3.0, 4.5)]
    assert np.all(np.diff(values) > 0.5), values


def test_annotator_contract():
    ann = registry.create("geometric")
    assert isinstance(ann, Annotator) and ann.name == "geometric"
    est = check_estimate(ann.annotate(face(project({"AU12": 3.0}))), ann.name)
    assert est.au17.shape == (17,) and est.au17.dtype == np.float32
    assert 0.0 <= est.au17.min() and est.au17.max() <= 5.0
    assert 0.9 < est.confidence <= 1.0          # a perfect fit at 15 deg of yaw
    assert est.au17[GANIMATION_AUS.index("AU12")] > 1.0
    assert ann.describe()["name"] == "geometric"


def test_confidence_falls_with_misfit_and_profile():
    ann = GeometricAnnotator(GeometricConfig())
    clean = project({"AU12": 2.0})
    noisy = clean + np.random.default_rng(1).normal(0.0, 4.0, clean.shape).astype(np.float32)
    c_clean, c_noisy = ann.annotate(face(clean)).confidence, ann.annotate(face(noisy)).confidence
    c_profile = ann.annotate(face(project({"AU12": 2.0}, yaw=75.0))).confidence
    assert c_noisy < c_clean and c_profile < 0.1


def test_bad_landmarks_raise_annotation_error():
    ann = GeometricAnnotator(GeometricConfig())
    with pytest.raises(AnnotationError) as err:
        ann.annotate(face(np.full((478, 3), np.nan, np.float32)))
    assert err.value.reason == "geometric-landmarks"
    with pytest.raises(AnnotationError):
        ann.annotate(face(np.zeros((478, 3), np.float32)))   # degenerate: all points equal


def test_calibration_is_monotone_and_validated():
    cal = Calibration({"AU12": [0.0, 1.0, 5.0]}, {"AU12": [0.0, 2.5, 5.0]}, {})
    x = np.zeros((3, 17))
    x[:, GANIMATION_AUS.index("AU12")] = [0.5, 1.0, 3.0]
    y = cal.apply(x)[:, GANIMATION_AUS.index("AU12")]
    assert np.allclose(y, [1.25, 2.5, 3.75]) and np.all(np.diff(y) > 0)
    with pytest.raises(ValueError, match="monotone"):
        Calibration.from_json({"knots_x": {"AU12": [0.0, 1.0]}, "knots_y": {"AU12": [2.0, 1.0]}})


def test_calibration_learned_from_pairs_and_loaded_by_the_annotator(tmp_path):
    from annotate.geometric_calibrate import calibrate

    rng = np.random.default_rng(0)
    true = rng.uniform(0, 5, (400, 17))
    fitted = np.clip(0.5 * true + rng.normal(0, 0.2, true.shape), 0, 5)   # an AU fit that reads half
    cal = calibrate(fitted, true, knots=8)
    assert np.abs(cal.apply(fitted) - true).mean() < 0.5 < np.abs(fitted - true).mean()
    path = tmp_path / "cal.json"
    path.write_text(__import__("json").dumps(cal.to_json()))
    ann = registry.create("geometric", calibration=str(path))
    plain = GeometricAnnotator()
    lm = project({"AU12": 2.0})
    k = GANIMATION_AUS.index("AU12")
    assert ann.annotate(face(lm)).au17[k] > plain.annotate(face(lm)).au17[k]
