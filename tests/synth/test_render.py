"""pyrender backend: output contract, labels consistent with geometry, subdivision."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from aukit.aus import RIG_AUS
from aukit.crop import crop_box
from aukit.landmarks import LM68, NOSE_TIP
from synth.config import SynthConfig
from synth.rig import SEG_CLASSES
from synth.sampling import sample_scene
from synth.scene import build_scene
from synth.subdivide import loop_subdivision

SIZE = 64


def spec_with(index=0, yaw=0.0, aus=None, **changes):
    cfg = SynthConfig()
    spec = sample_scene(cfg, 11, index)
    spec = dataclasses.replace(spec, image_size=SIZE, camera={"distance_cm": 80.0, "jitter": [0.0, 0.0, 0.0]},
                               pose={"yaw": yaw, "pitch": 0.0, "roll": 0.0}, gaze={"yaw": 0.0, "pitch": 0.0},
                               aus={a: 0.0 for a in RIG_AUS} | (aus or {}), occluders=(), photometric={},
                               **changes)
    return spec


@pytest.fixture(scope="module")
def frontal(rig, cache, renderer):
    geom = build_scene(spec_with(), rig, cache)
    return geom, renderer.render(geom)


def test_output_contract(frontal):
    _, out = frontal
    assert out["rgb"].shape == (SIZE, SIZE, 3) and out["rgb"].dtype == np.uint8
    assert out["seg"].shape == (SIZE, SIZE) and out["seg"].dtype == np.uint8
    assert out["face_mask"].dtype == bool and out["au_regions"].dtype == np.uint32
    assert out["depth"].dtype == np.float32
    assert out["landmarks_2d"].shape == (478, 2) and out["landmarks_3d"].shape == (478, 3)
    assert out["landmark_visible"].shape == (478,) and out["landmarks68_2d"].shape == (68, 2)


def test_face_fills_the_crop_like_the_crop_rule(frontal):
    geom, out = frontal
    box = crop_box(out["landmarks_2d"])
    # with zero jitter the crop rule applied to the output landmarks gives the full image
    assert abs(box.side - SIZE) < 0.5 and abs(box.cx - SIZE / 2) < 0.5 and abs(box.cy - SIZE / 2) < 0.5
    assert 0.25 < out["face_mask"].mean() < 0.9


def test_landmarks_sit_on_their_surfaces(frontal):
    _, out = frontal
    x, y = out["landmarks_2d"][NOSE_TIP].astype(int)
    assert out["seg"][y, x] == SEG_CLASSES["face"]
    # the inner 51 points are visible; jaw-contour vertices can be self-occluded by the
    # cheekbones under perspective (they are mesh vertices, not silhouette points)
    assert out["landmark_visible"][list(LM68[17:])].all()
    # depth of the id pass agrees with the landmark's own depth
    assert abs(out["depth"][y, x] - (-out["landmarks_3d"][NOSE_TIP, 2])) < 0.5


def test_yaw_hides_the_far_side(rig, cache, renderer):
    out = renderer.render(build_scene(spec_with(yaw=50.0), rig, cache))
    vis = out["landmark_visible"]
    jaw = np.array(LM68[:17])
    # yaw > 0 turns the face to the image right: the subject's left contour goes out of view
    assert vis[jaw[:4]].all() and not vis[jaw[-4:]].all()


def test_au_regions_follow_active_aus(frontal, rig, cache, renderer):
    _, neutral = frontal
    assert not neutral["au_regions"].any()
    out = renderer.render(build_scene(spec_with(aus={"AU12": 4.0}), rig, cache))
    bit = np.uint32(1 << RIG_AUS.index("AU12"))
    region = (out["au_regions"] & bit) > 0
    assert region.sum() > 30
    rows = np.nonzero(region)[0]
    assert rows.mean() > SIZE * 0.55                    # lower face
    lm = out["landmarks_2d"][61].astype(int)
    assert region[lm[1], lm[0]]                         # the lip corner is in the region


def test_open_mouth_shows_the_interior(rig, cache, renderer):
    out = renderer.render(build_scene(spec_with(aus={"AU26": 5.0, "AU25": 3.0}), rig, cache))
    assert (out["seg"] == SEG_CLASSES["mouth"]).sum() > 5
    closed = renderer.render(build_scene(spec_with(), rig, cache))
    assert (closed["seg"] == SEG_CLASSES["mouth"]).sum() <= 2


def test_closed_eyes_hide_the_eyeballs(rig, cache, renderer):
    open_ = renderer.render(build_scene(spec_with(), rig, cache))
    shut = renderer.render(build_scene(spec_with(aus={"AU43": 5.0}), rig, cache))
    assert (open_["seg"] == SEG_CLASSES["eyes"]).sum() > 4
    assert (shut["seg"] == SEG_CLASSES["eyes"]).sum() <= 1


def test_rendering_is_deterministic(rig, cache, renderer):
    geom = build_scene(spec_with(index=3, aus={"AU06": 3.0}), rig, cache)
    a, b = renderer.render(geom), renderer.render(geom)
    assert np.array_equal(a["rgb"], b["rgb"]) and np.array_equal(a["seg"], b["seg"])


def test_loop_subdivision_keeps_affine_functions():
    # a flat triangulated grid with a boundary: Loop subdivision reproduces planes
    n = 6
    xy = np.stack(np.meshgrid(np.arange(n), np.arange(n)), -1).reshape(-1, 2).astype(float)
    tris = []
    for i in range(n - 1):
        for j in range(n - 1):
            a = i * n + j
            tris += [[a, a + 1, a + n], [a + 1, a + n + 1, a + n]]
    sub = loop_subdivision(np.array(tris), len(xy), iterations=2)
    plane = np.c_[xy, 0.3 * xy[:, 0] - 0.2 * xy[:, 1] + 1.0]
    fine = sub.matrix @ plane
    np.testing.assert_allclose(fine[:, 2], 0.3 * fine[:, 0] - 0.2 * fine[:, 1] + 1.0, atol=1e-9)
    np.testing.assert_allclose(np.asarray(sub.matrix.sum(axis=1)).ravel(), 1.0)
    assert len(sub.triangles) == 16 * len(tris)


def test_wrinkle_scale_darkens_only_the_texture(rig_with_wrinkles, cache):
    """``identity.wrinkles``: the frown's creases darken the texture in proportion to the
    scale; at 0 the texture is the identity's own; geometry and labels do not change."""
    spec = spec_with(aus={"AU04": 5.0})
    geoms = {s: build_scene(spec, rig_with_wrinkles(s), cache) for s in (0.0, 1.0, 2.0)}
    base = geoms[0.0].identity.texture
    assert np.array_equal(geoms[0.0].face_texture, base)
    dark = {s: base.astype(float).sum() - g.face_texture.astype(float).sum() for s, g in geoms.items()}
    assert 0 < dark[1.0] < dark[2.0]
    for s in (1.0, 2.0):
        assert all(np.array_equal(a.vertices, b.vertices) for a, b in zip(geoms[0.0].parts, geoms[s].parts))
    neutral = build_scene(spec_with(), rig_with_wrinkles(2.0), cache)
    assert np.array_equal(neutral.face_texture, base)   # no active AU: no creases


def test_resting_creases_darken_only_the_texture(rig_with_wrinkles, cache):
    """A spec's resting creases are painted even with the expression wrinkles off, deeper
    with their strength, and move nothing: same parts, same vertices."""
    rig0 = rig_with_wrinkles(0.0)
    plain = build_scene(spec_with(), rig0, cache)
    geoms = {v: build_scene(spec_with(creases={"AU04": v, "AU12": v}), rig0, cache) for v in (2.0, 5.0)}
    base = plain.face_texture.astype(float).sum()
    assert np.array_equal(plain.face_texture, plain.identity.texture)
    assert base > geoms[2.0].face_texture.astype(float).sum() > geoms[5.0].face_texture.astype(float).sum()
    assert all(np.array_equal(a.vertices, b.vertices) for a, b in zip(plain.parts, geoms[5.0].parts))


def test_wrinkle_aus_paint_only_the_chosen_creases(rig_with_wrinkles, cache):
    """``identity.wrinkle_aus=[AU01]`` with a brow raise and a frown active paints exactly the
    brow raise's forehead lines (what AU01 alone paints), not the frown's; resting creases are
    never filtered."""
    both = spec_with(aus={"AU01": 5.0, "AU04": 5.0})
    chosen = build_scene(both, rig_with_wrinkles(1.0, ("AU01",)), cache).face_texture
    alone = build_scene(spec_with(aus={"AU01": 5.0}), rig_with_wrinkles(1.0), cache).face_texture
    full = build_scene(both, rig_with_wrinkles(1.0), cache).face_texture
    assert np.array_equal(chosen, alone)
    assert full.astype(float).sum() < chosen.astype(float).sum() < alone.astype(float).sum() + 1
    resting = spec_with(aus={"AU04": 5.0}, creases={"AU12": 5.0})
    filtered = build_scene(resting, rig_with_wrinkles(1.0, ("AU01",)), cache).face_texture
    crease_only = build_scene(spec_with(creases={"AU12": 5.0}), rig_with_wrinkles(0.0), cache).face_texture
    assert np.array_equal(filtered, crease_only)


def test_wrinkle_scale_is_validated(basis):
    from aukit.config import ConfigError, load
    from synth.config import WRINKLE_AUS
    from synth.identity.wrinkles import wrinkle_maps
    from synth.rig import HeadRig

    with pytest.raises(ConfigError, match="identity.wrinkles"):
        load(SynthConfig, overrides=["identity.wrinkles=-1"])
    with pytest.raises(ValueError, match="wrinkles"):
        HeadRig(wrinkles=4.0)
    assert load(SynthConfig, overrides=["identity.wrinkle_aus=[AU01, AU02]"]).identity.wrinkle_aus == ("AU01", "AU02")
    for bad, why in (("[AU25]", "no wrinkle map"), ("[AU01, AU01]", "twice"), ("AU01", "expected a list")):
        with pytest.raises(ConfigError, match=why):
            load(SynthConfig, overrides=[f"identity.wrinkle_aus={bad}"])
    with pytest.raises(ConfigError, match="no wrinkle map"):
        HeadRig(wrinkle_aus=("AU26",))
    neutral = np.ascontiguousarray(basis.neutral, np.float64)
    assert tuple(wrinkle_maps(neutral.tobytes(), 8)) == WRINKLE_AUS


def test_au_gain_scales_the_chosen_fields_everywhere_the_rig_poses_from():
    """``identity.au_gain={AU05: 2}``: the AU05 field (in ``rig.basis``, which the photo backdrop
    warps with, and in the subdivided rig) is twice as long; every other field is unchanged."""
    from aukit.config import ConfigError, load
    from synth.config import GAIN_AUS
    from synth.rig import HeadRig

    plain, gained = HeadRig(), HeadRig(au_gain={"AU05": 2.0})
    k = RIG_AUS.index("AU05")
    assert np.abs(plain.au_fields[k]).max() > 0
    np.testing.assert_allclose(gained.au_fields[k], 2 * plain.au_fields[k], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(gained.basis.au_fields[k], 2 * plain.basis.au_fields[k])
    others = [j for j in range(len(RIG_AUS)) if j != k]
    assert np.array_equal(gained.au_fields[others], plain.au_fields[others])
    assert np.array_equal(gained.neutral, plain.neutral)
    assert HeadRig(au_gain={}).basis is plain.basis                   # no gain: the shared basis
    assert load(SynthConfig, overrides=["identity.au_gain={AU05: 1.6, AU07: 2}"]).identity.au_gain == \
        {"AU05": 1.6, "AU07": 2.0}
    assert "AU26" not in GAIN_AUS and "AU45" not in GAIN_AUS
    for bad, why in (("{AU26: 2}", "cannot be scaled"), ("{AU99: 2}", "cannot be scaled"),
                     ("{AU05: 10}", "must be in"), ("[AU05]", "expected a mapping|mapping")):
        with pytest.raises(ConfigError, match=why):
            load(SynthConfig, overrides=[f"identity.au_gain={bad}"])
    with pytest.raises(ConfigError, match="cannot be scaled"):
        HeadRig(au_gain={"AU43": 2.0})
