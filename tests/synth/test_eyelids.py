"""Eyelids: a neutral face keeps its lid gap, and closing lids still cover the eyeballs."""

from __future__ import annotations

import numpy as np
import pytest

from aukit import landmarks as lmk
from aukit.aus import RIG_AUS
from synth import parts
from synth.rig import EYELID_CM

LIDS = ((lmk.R_UPPER_LID + lmk.R_LOWER_LID), (lmk.L_UPPER_LID + lmk.L_LOWER_LID))


def _identities(rig):
    rng = np.random.default_rng(5)
    n = len(rig.basis.shape_names)
    return [rig.prepare(np.zeros(n))] + [rig.prepare(rng.uniform(-1.5, 1.5, n)) for _ in range(3)]


def _lid_gap(v: np.ndarray) -> float:
    """Mean upper-to-lower lid distance over eye width (frontal x-y), both eyes."""
    gap = lambda u, lo, a, b: np.linalg.norm(v[u, :2] - v[lo, :2]) / np.linalg.norm(v[a, :2] - v[b, :2])  # noqa: E731
    return 0.5 * (gap(159, 145, 33, 133) + gap(386, 374, 263, 362))


def test_neutral_face_keeps_its_lid_margins(rig):
    """At rest the collision must not move the lids: it once opened every neutral eye ~16%."""
    for ident in _identities(rig):
        rest = rig.deform(ident, np.zeros(len(RIG_AUS)))
        for ids in LIDS:
            assert np.abs(rest[list(ids)] - ident.base[list(ids)]).max() < 1e-6
        assert _lid_gap(rest) == pytest.approx(_lid_gap(ident.base), abs=1e-6)


@pytest.mark.parametrize("au", ["AU45", "AU43", "AU07"])
def test_closing_lids_stay_outside_the_eyeballs(rig, au):
    aus = np.zeros(len(RIG_AUS))
    aus[RIG_AUS.index(au)] = 5.0
    for ident in _identities(rig):
        v = rig.deform(ident, aus)
        skin = rig.loft_weight < 0.5
        for c in ident.eye_centers:
            dist = np.linalg.norm(v[skin] - c, axis=1)
            assert dist.min() >= parts.EYE_RADIUS + EYELID_CM - 1e-6


def test_closed_lids_move_towards_each_other(rig):
    """Blinking still narrows the gap (the eyeballs did not just swallow the motion)."""
    aus = np.zeros(len(RIG_AUS))
    aus[RIG_AUS.index("AU45")] = 5.0
    for ident in _identities(rig):
        assert _lid_gap(rig.deform(ident, aus)) < 0.35 * _lid_gap(ident.base)
