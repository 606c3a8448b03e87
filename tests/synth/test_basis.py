"""Rig geometry: neutral, symmetry, and each AU moving its region in its FACS direction."""

from __future__ import annotations

import numpy as np
import pytest

from aukit import landmarks as lmk
from aukit.aus import RIG_AUS

# vertex ids (subject's right side; x < 0): inner brow, outer brow, upper/lower lid
# centre, lip corner, upper/lower lip centre (inner), chin, nose ala, cheek
INNER_BROW, OUTER_BROW, UPPER_LID, LOWER_LID = 107, 70, 159, 145
CORNER, LIP_UP, LIP_LO, CHIN, ALA, CHEEK = 61, 13, 14, 152, 48, 117


def move(basis, au: str, intensity: float = 5.0) -> np.ndarray:
    """Displacement (478, 3) in cm of one AU at ``intensity``."""
    return basis.au_fields[RIG_AUS.index(au)] * intensity


def test_zero_aus_give_the_neutral_mesh(basis):
    v = basis.deform(np.zeros(len(RIG_AUS)))
    np.testing.assert_allclose(v, basis.neutral)
    assert v.shape == (478, 3)


def test_neutral_is_symmetric_with_closed_lips(basis):
    flipped = basis.neutral[basis.mirror] * [-1, 1, 1]
    np.testing.assert_allclose(basis.neutral, flipped, atol=1e-9)
    up, lo = list(lmk.INNER_UPPER_LIP[1:-1]), list(lmk.INNER_LOWER_LIP[1:-1])
    assert np.abs(basis.neutral[up] - basis.neutral[lo]).max() < 0.02


def test_scale_is_centimetres(basis):
    inter_ocular = np.linalg.norm(basis.neutral[33] - basis.neutral[263])
    assert 8.0 < inter_ocular < 10.5


@pytest.mark.parametrize("au", [a for a in RIG_AUS])
def test_fields_are_mirror_symmetric_and_move_something(basis, au):
    f = move(basis, au)
    np.testing.assert_allclose(f[basis.mirror] * [-1, 1, 1], f, atol=1e-6)
    assert np.linalg.norm(f, axis=1).max() > 0.15, f"{au} barely moves anything"


@pytest.mark.parametrize("au", [a for a in RIG_AUS if a not in ("AU26", "AU27")])
def test_face_contour_is_held_except_by_the_jaw(basis, au):
    f = move(basis, au)
    assert np.linalg.norm(f[list(lmk.FACE_OVAL)], axis=1).max() < 1e-6


def test_brow_aus(basis):
    au01, au02, au04 = move(basis, "AU01"), move(basis, "AU02"), move(basis, "AU04")
    assert au01[INNER_BROW, 1] > 0.6 and au01[INNER_BROW, 1] > 3 * abs(au01[OUTER_BROW, 1])
    assert au02[OUTER_BROW, 1] > 0.6 and au02[OUTER_BROW, 1] > 3 * abs(au02[INNER_BROW, 1])
    assert au04[INNER_BROW, 1] < -0.4                  # down
    assert au04[INNER_BROW, 0] > 0.3                   # right brow moves towards +x: together
    assert au04[basis.mirror[INNER_BROW], 0] < -0.3    # left brow towards -x


def test_eye_aus(basis):
    gap = lambda f: (basis.neutral[UPPER_LID, 1] + f[UPPER_LID, 1]) - (basis.neutral[LOWER_LID, 1] + f[LOWER_LID, 1])
    zero = np.zeros((478, 3))
    assert gap(move(basis, "AU05")) > gap(zero) + 0.2   # upper lid raised: eye wider
    assert move(basis, "AU07")[LOWER_LID, 1] > 0.03     # lower lid tightened upwards
    assert move(basis, "AU06")[CHEEK, 1] > 0.3          # cheek raised
    for au in ("AU43", "AU45"):
        assert abs(gap(move(basis, au))) < 0.02, f"{au} at 5 must close the eye"
        assert gap(move(basis, au, 2.5)) > 0.2          # half-closed at 2.5


def test_mouth_aus(basis):
    au12, au15, au20 = move(basis, "AU12"), move(basis, "AU15"), move(basis, "AU20")
    assert au12[CORNER, 1] > 0.4 and au12[CORNER, 0] < -0.2   # right corner up and out
    assert au15[CORNER, 1] < -0.3                              # corner down
    assert au20[CORNER, 0] < -0.4 and abs(au20[CORNER, 1]) < 0.2
    assert move(basis, "AU14")[CORNER, 2] < -0.15             # pulled back (dimpler)
    assert move(basis, "AU10")[0, 1] > 0.2                    # upper lip up
    assert move(basis, "AU17")[199, 1] > 0.1                  # chin boss (mentalis) up
    assert move(basis, "AU09")[ALA, 1] > 0.25                 # nose wing up
    assert move(basis, "AU28")[LIP_UP, 2] < -0.3              # lips sucked in
    w = lambda f: abs((basis.neutral[61] + f[61])[0] - (basis.neutral[291] + f[291])[0])
    assert w(move(basis, "AU23")) < w(np.zeros((478, 3))) - 0.2   # lips narrowed


def test_smile_curves_up_and_keeps_the_lips_in_front_of_the_teeth(basis):
    """AU12 at 5: corners rise well above the mid-lips (a curve, not a raised flat mouth),
    and the mid-lips stay in front of the dental arches (the PLS row alone pushed them
    ~1 cm back, through the teeth)."""
    from synth import parts

    au12 = move(basis, "AU12")
    assert au12[CORNER, 1] > 3 * max(au12[LIP_UP, 1], au12[LIP_LO, 1], 0.05)
    lip_y = 0.5 * (basis.neutral[LIP_UP, 1] + basis.neutral[LIP_LO, 1])
    front_z = 0.5 * (basis.neutral[LIP_UP, 2] + basis.neutral[LIP_LO, 2])
    upper, lower = parts.arches(lip_y, front_z)
    smiled = basis.neutral + au12
    for v, arch in ((LIP_UP, upper), (LIP_LO, lower), (0, upper), (17, lower)):
        assert smiled[v, 2] > arch.z(smiled[v, 0]) + 0.1, f"vertex {v} behind the teeth"


def test_lips_part_showing_the_upper_teeth(basis):
    """AU25 lifts the upper lip over the incisor edge (below ``lip_y``), as in a parted-lip smile."""
    from synth import parts

    f = move(basis, "AU25", 3.0)
    lip_y = 0.5 * (basis.neutral[LIP_UP, 1] + basis.neutral[LIP_LO, 1])
    upper, _ = parts.arches(lip_y, basis.neutral[LIP_UP, 2])
    lip_lo = basis.neutral[LIP_LO, 1] + f[LIP_LO, 1]
    shown = (basis.neutral[LIP_UP, 1] + f[LIP_UP, 1]) - max(upper.y_bottom, lip_lo)
    assert shown > 0.4                                  # cm of upper incisor in view
    thinning = f[17, 1] - f[LIP_LO, 1]                  # outer minus inner lower-lip drop
    assert abs(thinning) < 0.05                         # the lower lip keeps its thickness


def test_per_handle_pls_axes_reweight_the_pls_row():
    """A handle's ``pls_axes`` scales that handle's PLS displacement per axis."""
    from importlib import resources as ilr

    import yaml

    from aukit import basis as bmod

    res = bmod.feat_resources()
    rec = yaml.safe_load(ilr.files("assets").joinpath(bmod.ASSET_FILE).read_text())
    au12 = dict(rec["aus"]["AU12"])
    au12["handles"] = [{"ids": [61], "pls": True}]
    flat = dict(au12, handles=[{"ids": [61], "pls": True, "pls_axes": [1.0, 1.0, 0.0]}])
    full = bmod._build(res, {**rec, "aus": {**rec["aus"], "AU12": au12}})
    zeroed = bmod._build(res, {**rec, "aus": {**rec["aus"], "AU12": flat}})
    k = RIG_AUS.index("AU12")
    assert abs(full.au_fields[k][61, 2]) > 0.05
    assert abs(zeroed.au_fields[k][61, 2]) < 1e-9
    np.testing.assert_allclose(zeroed.au_fields[k][61, :2], full.au_fields[k][61, :2], atol=1e-9)


def test_lips_part_only_for_opening_aus(basis):
    up, lo = list(lmk.INNER_UPPER_LIP[1:-1]), list(lmk.INNER_LOWER_LIP[1:-1])
    def opening(au):
        v = basis.neutral + move(basis, au)
        return float((v[up, 1] - v[lo, 1]).max())
    for au in ("AU25", "AU26", "AU27", "AU10"):
        assert opening(au) > 0.4, f"{au} should part the lips"
    for au in ("AU12", "AU15", "AU17", "AU20", "AU23", "AU24", "AU14"):
        assert opening(au) < 0.02, f"{au} should keep closed lips closed"


def test_jaw_aus_rotate_the_mandible(basis):
    au26, au27 = move(basis, "AU26"), move(basis, "AU27")
    assert au26[CHIN, 1] < -1.0 and au27[CHIN, 1] < au26[CHIN, 1] - 0.5
    assert np.linalg.norm(au26[10]) < 1e-6              # forehead does not move
    # teeth follow the same linear map as the chin skin (weight 1 at the chin)
    aus = np.zeros(len(RIG_AUS))
    aus[RIG_AUS.index("AU26")] = 5
    m = basis.jaw_transform(aus)
    chin = basis.neutral[CHIN]
    expect = chin + au26[CHIN] / max(basis.jaw_weight[CHIN], 1e-9)
    np.testing.assert_allclose(m[:3, :3] @ chin + m[:3, 3], expect, atol=0.05)


def test_intensity_is_linear(basis):
    for au in ("AU12", "AU01", "AU26"):
        np.testing.assert_allclose(move(basis, au, 2.0) * 2, move(basis, au, 4.0), rtol=1e-6)


def test_every_au_documents_its_source(basis):
    for au in RIG_AUS:
        src = basis.sources[au]
        assert src["source"] in ("pls", "constructed", "jaw", "eyelid") and len(src["why"]) > 20
