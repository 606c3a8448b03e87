"""aukit.fitting: the rig fitted to landmarks recovers known pose, shape and AUs."""

from __future__ import annotations

import numpy as np
import pytest

from aukit.aus import RIG_AUS
from aukit.fitting import (FitOptions, fit_landmarks, inter_ocular, landmark_prior, neutral_allowance,
                           rotation_to_pose)
from synth.camera import rotation

# AU45 shares AU43's field exactly, AU27 is AU26's rotation further: not separately identifiable
_FREE = [i for i, a in enumerate(RIG_AUS) if a not in ("AU45", "AU27")]


def _project(basis, shape, aus, pose, scale=12.0, trans=(100.0, -120.0, 3.0)):
    v = basis.deform(aus, shape)
    q = scale * v @ rotation(*pose).T + np.asarray(trans)
    return q * np.array([1.0, -1.0, -1.0])           # image frame -> MediaPipe pixels


@pytest.mark.parametrize("case", range(6))
def test_fit_recovers_known_parameters(basis, case):
    rng = np.random.default_rng(case)
    shape = np.clip(rng.normal(0, 1, len(basis.shape_names)), -2, 2)
    aus = np.zeros(len(RIG_AUS))
    aus[rng.choice(_FREE, 3, replace=False)] = rng.uniform(1, 4, 3)
    pose = rng.uniform(-20, 20, 3)
    lm = _project(basis, shape, aus, pose)
    fit = fit_landmarks(lm, basis, FitOptions(landmark_prior=False, shape_reg=1e-8, au_reg=1e-8, au_l1=0.0))
    assert np.abs(fit.aus - aus).max() < 0.02
    assert np.abs(fit.shape - shape).max() < 0.01
    assert abs(fit.scale - 12.0) < 1e-3
    assert max(abs(fit.pose[k] - p) for k, p in zip(("yaw", "pitch", "roll"), pose)) < 0.05
    assert fit.residual < 1e-4
    # model + detail reproduces the landmarks exactly
    assert np.abs(fit.project(fit.model(basis)) - lm[:, :2]).max() < 1e-6


def test_default_regularisation_keeps_recovery_close(basis):
    aus = np.zeros(len(RIG_AUS))
    aus[RIG_AUS.index("AU12")], aus[RIG_AUS.index("AU26")] = 3.0, 2.0
    lm = _project(basis, np.zeros(len(basis.shape_names)), aus, (10.0, -5.0, 3.0))
    fit = fit_landmarks(lm, basis, FitOptions(landmark_prior=False))
    # the L1 (sparsity) penalty shrinks a little
    assert fit.aus[RIG_AUS.index("AU12")] > 2.5 and fit.aus[RIG_AUS.index("AU26")] > 1.2
    assert np.all(fit.aus >= 0) and np.all(fit.aus <= 5)
    # the landmark prior is what a neutral face fits as: zero AUs
    neutral = _project(basis, np.zeros(len(basis.shape_names)), np.zeros(len(RIG_AUS)), (0.0, 0.0, 0.0))
    prior = landmark_prior()
    lm0 = neutral + 12.0 * prior * np.array([1.0, -1.0, -1.0])
    assert fit_landmarks(lm0, basis).aus.max() < 0.3


def test_point_weight_fits_the_weighted_landmarks_only(basis):
    aus = np.zeros(len(RIG_AUS))
    aus[RIG_AUS.index("AU01")], aus[RIG_AUS.index("AU12")] = 3.0, 3.0
    pose = (10.0, -5.0, 3.0)
    lm = _project(basis, np.zeros(len(basis.shape_names)), aus, pose)
    y = basis.neutral[:468, 1]
    keep = (y >= 1.0).astype(float)                            # the eyes and up
    bad = lm.copy()
    low = np.flatnonzero(y < 1.0)
    bad[low] += np.random.default_rng(2).normal(0, 20.0, (len(low), 3))
    opt = FitOptions(landmark_prior=False)
    fit = fit_landmarks(bad, basis, opt, point_weight=keep)
    plain = fit_landmarks(bad, basis, opt)
    assert abs(fit.aus[RIG_AUS.index("AU01")] - 3.0) < 0.3
    assert max(abs(fit.pose[k] - p) for k, p in zip(("yaw", "pitch", "roll"), pose)) < 0.5
    assert fit.residual < 0.01 < plain.residual                 # residual over the weighted points only
    assert np.array_equal(fit_landmarks(lm, basis, opt, point_weight=np.ones(468)).aus, fit_landmarks(lm, basis, opt).aus)
    for wrong in (np.ones(10), -keep, np.zeros(468), np.full(468, np.nan)):
        with pytest.raises(ValueError, match="point_weight"):
            fit_landmarks(lm, basis, opt, point_weight=wrong)


def test_noisy_landmarks_give_pose_within_a_degree(basis):
    rng = np.random.default_rng(1)
    lm = _project(basis, np.zeros(len(basis.shape_names)), np.zeros(len(RIG_AUS)), (15.0, -8.0, 5.0))
    iod = inter_ocular(lm)
    noisy = lm + rng.normal(0, 0.01 * iod, lm.shape)
    fit = fit_landmarks(noisy, basis, FitOptions(landmark_prior=False))
    assert max(abs(fit.pose[k] - p) for k, p in zip(("yaw", "pitch", "roll"), (15.0, -8.0, 5.0))) < 1.0
    assert 0.005 < fit.residual < 0.03          # scale-free: ~ the noise per inter-ocular distance


def test_rotation_to_pose_inverts_the_camera_rotation():
    rng = np.random.default_rng(0)
    for yaw, pitch, roll in rng.uniform(-40, 40, (20, 3)):
        pose = rotation_to_pose(rotation(yaw, pitch, roll))
        assert np.allclose([pose["yaw"], pose["pitch"], pose["roll"]], [yaw, pitch, roll], atol=1e-9)


def test_bad_landmarks_are_rejected(basis):
    with pytest.raises(ValueError):
        fit_landmarks(np.full((478, 3), np.nan), basis)
    with pytest.raises(ValueError):
        fit_landmarks(np.zeros((478, 2)), basis)
    with pytest.raises(ValueError):
        fit_landmarks(np.zeros((478, 3)), basis)      # zero inter-ocular distance


def test_landmark_prior_asset_is_symmetric(basis):
    off = landmark_prior()
    assert off.shape == (478, 3) and np.isfinite(off).all()
    mirrored = off[basis.mirror] * np.array([-1.0, 1.0, 1.0])
    assert np.abs(off[:468] - mirrored[:468]).max() < 1e-3
    allow = neutral_allowance()
    assert allow.shape == (len(RIG_AUS),) and np.all(allow >= 0) and np.all(allow <= 5)
