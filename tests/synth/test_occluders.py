"""Occluders: exact occlusion masks, landmark visibility, per-AU occluded fractions, no
intersection with the face; photometric effects; extra lights."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy.ndimage import binary_dilation
from scipy.spatial import cKDTree

from aukit.aus import RIG_AUS, au_vector
from aukit.landmarks import INNER_LOWER_LIP, INNER_UPPER_LIP
from aukit.config import load
from synth.config import SynthConfig
from synth.occluders import HeadState, build_occluders, class_of, sample_params
from synth.occluders.builders import BUILDERS
from synth.occluders.surface import signed_distance
from synth.render import photometric
from synth.rig import SEG_CLASSES
from synth.sampling import sample_scene
from synth.scene import build_scene

SIZE = 96
OPAQUE = ["hand", "mask", "hat", "microphone", "cup", "phone", "shape", "hair"]


def occluded_spec(kind: str, index: int, aus=None, lens=None):
    cfg = load(SynthConfig, overrides=["occluders.probability=0", f"output.size={SIZE}"])
    spec = sample_scene(cfg, 21, index)
    rng = np.random.default_rng(index)
    params = sample_params(kind, rng, lens_weights={lens: 1.0} if lens else None)
    occ = ({"kind": kind, "class_id": class_of(kind, params), "params": params},)
    return dataclasses.replace(
        spec, occluders=occ, pose={"yaw": 0.0, "pitch": 0.0, "roll": 0.0}, photometric={},
        aus={a: 0.0 for a in RIG_AUS} | (aus or {}), camera={"distance_cm": 90.0, "jitter": [0, 0, 0]})


@pytest.fixture(scope="module")
def r96():
    from synth.render import make_renderer

    r = make_renderer("pyrender", SIZE, antialias="ssaa2")
    yield r
    r.close()


def _vivid(spec):
    """Same occluders in a colour nothing else has (a skin-coloured hand over skin changes
    no pixel, yet it is an occluder: the colour test needs a visible difference)."""
    occ = tuple({**o, "params": {**o["params"], "color": [0.9, 0.05, 0.9], "match_skin": False,
                                 "match_hair": False}} for o in spec.occluders)
    return dataclasses.replace(spec, occluders=occ)


@pytest.mark.parametrize("kind", OPAQUE + ["sunglasses"])
def test_occlusion_mask_is_exactly_what_changes(kind, rig, cache, r96):
    spec = occluded_spec("glasses" if kind == "sunglasses" else kind, 3, lens="sunglasses" if kind == "sunglasses" else None)
    spec = _vivid(spec)
    bare = dataclasses.replace(spec, occluders=())
    with_occ = r96.render(build_scene(spec, rig, cache))
    without = r96.render(build_scene(bare, rig, cache))
    changed = np.abs(with_occ["rgb"].astype(int) - without["rgb"].astype(int)).max(axis=2) > 3
    occ = with_occ["occlusion"]
    assert occ.sum() > 5, f"{kind} should cover something"
    # every changed pixel is an occluder pixel, up to one pixel of antialiased edge, and back;
    # a supersampled sub-pixel sliver may tint up to 3 stray pixels
    assert (changed & ~binary_dilation(occ, iterations=1)).sum() <= 3
    assert (occ & ~binary_dilation(changed, iterations=1)).sum() <= 3
    # occluder-free labels are unchanged where nothing covers them
    same = ~binary_dilation(occ, iterations=1)
    assert np.array_equal(with_occ["seg"][same], without["seg"][same])


@pytest.mark.parametrize("kind", ["hand", "mask", "glasses"])
def test_landmark_visibility_agrees_with_the_mask(kind, rig, cache, r96):
    out = r96.render(build_scene(occluded_spec(kind, 5, lens="sunglasses"), rig, cache))
    uv = out["landmarks_2d"]
    col, row = np.floor(uv[:, 0]).astype(int), np.floor(uv[:, 1]).astype(int)
    inside = (col >= 0) & (col < SIZE) & (row >= 0) & (row < SIZE)
    under = np.zeros(len(uv), bool)
    under[inside] = out["occlusion"][row[inside], col[inside]]
    assert under.any(), "the occluder should cover some landmarks"
    assert not (out["landmark_visible"] & under).any()


def test_au_occlusion_fraction(rig, cache, r96):
    spec = occluded_spec("hand", 1, aus={"AU12": 4.0, "AU01": 3.0})
    spec = dataclasses.replace(spec, occluders=tuple(
        {**o, "params": {**o["params"], "pose": "over_mouth", "offset": [0.0, 0.0]}} for o in spec.occluders))
    out = r96.render(build_scene(spec, rig, cache))
    frac = dict(zip(RIG_AUS, out["au_occlusion"]))
    assert frac["AU12"] > 0.3           # the hand hides much of the smile
    assert frac["AU01"] < 0.2           # but not the brows
    assert np.isnan(frac["AU26"])       # inactive AU: no region
    bare = r96.render(build_scene(dataclasses.replace(spec, occluders=()), rig, cache))
    assert dict(zip(RIG_AUS, bare["au_occlusion"]))["AU12"] == 0.0
    assert out["face_occluded"].sum() > 0 and not bare["face_occluded"].any()


@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_occluders_never_intersect_the_face(kind, rig, cache):
    for index in range(4):
        spec = occluded_spec(kind, 10 + index, aus={"AU26": 3.0, "AU12": 3.0})
        ident, geo = cache.get(spec.identity)
        skin = rig.deform(geo, au_vector(spec.aus))
        normals = rig.normals(skin)
        ev, iris = rig.eyes(geo, (0.0, 0.0))
        head = HeadState(skin, normals, rig.triangles, rig.is_face_tri, rig.landmarks(skin, iris),
                         geo.eye_centers, cKDTree(skin))
        # signed distance to the closest point of the skin surface (not an open-mouth rim
        # triangle: a mask may bridge the open mouth, and those normals say nothing)
        lips = np.array(INNER_UPPER_LIP + INNER_LOWER_LIP)
        tris = rig.triangles[~np.isin(rig.triangles, lips).any(axis=1)]
        for _, _, pieces in build_occluders(spec.occluders, head):
            for p in pieces:
                signed = signed_distance(p.vertices, skin, tris)
                assert signed.min() > -0.05, f"{kind} piece dips into the skin"


def test_occluder_sampling_respects_config():
    cfg = load(SynthConfig, overrides=["occluders.probability=1.0", "occluders.kinds={cup: 1.0}",
                                       "occluders.max_count=1"])
    specs = [sample_scene(cfg, 0, i).occluders for i in range(20)]
    assert all(len(s) == 1 and s[0]["kind"] == "cup" for s in specs)
    none = load(SynthConfig, overrides=["occluders.probability=0.0"])
    assert all(sample_scene(none, 0, i).occluders == () for i in range(20))


def test_photometric_effects_are_exact_and_recorded():
    rgb = np.random.default_rng(0).integers(40, 200, (32, 32, 3)).astype(np.uint8)
    p = {"exposure_ev": 0.5, "blur_sigma": 0.8, "noise_std": 4.0, "jpeg_quality": 50, "noise_seed": 7}
    a, b = photometric.apply(rgb, p), photometric.apply(rgb, p)
    assert np.array_equal(a, b) and not np.array_equal(a, rgb)
    brighter = photometric.apply(rgb, {"exposure_ev": 1.0, "noise_seed": 0})
    assert brighter.mean() > rgb.mean() + 10
    assert np.array_equal(photometric.apply(rgb, {}), rgb)
    spec = sample_scene(load(SynthConfig, overrides=["photometric.jpeg_p=1.0"]), 0, 0)
    assert 30 <= spec.photometric["jpeg_quality"] <= 90


def test_extra_point_light_brightens(rig, cache, r96):
    spec = occluded_spec("shape", 0)
    spec = dataclasses.replace(spec, occluders=())
    lit = dataclasses.replace(spec, lights=spec.lights + ({"kind": "point", "role": "extra", "azimuth": 0.0,
                                                           "elevation": 10.0, "kelvin": 6000.0,
                                                           "intensity": 20000.0, "distance_cm": 60.0},))
    a = r96.render(build_scene(spec, rig, cache))
    b = r96.render(build_scene(lit, rig, cache))
    face = a["seg"] == SEG_CLASSES["face"]
    assert b["rgb"][face].mean() > a["rgb"][face].mean() + 5
