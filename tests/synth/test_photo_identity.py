"""Photo identities without a face detector: reconstruction of synthetic "photos" with exact
landmarks, the cache file, rendering (labels, holes), and the sampler."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from aukit.aus import RIG_AUS, au_vector, rig_to_ganimation
from synth.identity import photo
from synth.identity.photo_scene import PhotoHoleError, PhotoSceneGeometry
from synth.identity.sheet import photo_spec
from synth.scene import build_scene

from tests.synth.photo_helpers import synthetic_photo

SIZE = 64


@pytest.fixture(scope="module")
def photo_renderer(renderer):
    """Synthetic photos come from the session renderer (a second EGL renderer in one
    process breaks the first), so they are small: SIZE px."""
    return renderer


@pytest.fixture(scope="module")
def smiling(rig, cache, photo_renderer, tmp_path_factory):
    """A procedural face photographed smiling at yaw 12, reconstructed and saved."""
    img, lm, spec = synthetic_photo(rig, cache, photo_renderer, {"yaw": 12.0, "pitch": -4.0, "roll": 3.0},
                                    {"AU12": 3.5, "AU06": 2.0, "AU25": 1.5})
    ident = photo.reconstruct(img, lm, source="synthetic.png", source_sha1="0" * 20, rig=rig)
    path = tmp_path_factory.mktemp("ids") / "smiling.npz"
    photo.save(path, ident)
    return ident, str(path), img, lm


def test_reconstruction_fits_pose_and_removes_the_expression(smiling):
    ident, _, _, _ = smiling
    meta = ident.meta
    pose = meta["fit"]["pose"]
    # weak-perspective fit of a perspective render at 3 m: within a couple of degrees
    assert abs(pose["yaw"] - 12.0) < 3 and abs(pose["pitch"] + 4.0) < 3 and abs(pose["roll"] - 3.0) < 2
    assert meta["fit"]["residual"] < 0.03
    assert ident.source_aus[RIG_AUS.index("AU12")] > 1.5
    assert "AU12" in meta["fit"]["removed_aus"]
    # the identity mesh has closed lips and lowered lip corners relative to the source mesh
    v, s = ident.vertices, ident.source_vertices
    assert np.abs(v[13] - v[14]).max() < 1e-5
    assert v[61, 1] < s[61, 1] and v[291, 1] < s[291, 1]
    assert ident.texture.shape == (photo.TEXTURE_SIZE, photo.TEXTURE_SIZE, 3)
    assert ident.backdrop.shape == ident.photo.shape and ident.backdrop_state.shape == ident.backdrop.shape[:2]
    assert (ident.backdrop_state == 1).any()           # the inner face is inpainted


def test_keep_expression_keeps_the_fitted_face_and_closes_the_lips(rig, smiling):
    ident, _, img, lm = smiling
    kept = photo.reconstruct(img, lm, source="synthetic.png", source_sha1="0" * 20, rig=rig, expression="keep")
    assert kept.meta["fit"]["expression"] == "keep" and ident.meta["fit"]["expression"] == "remove"
    assert not kept.removed_aus.any() and kept.meta["fit"]["removed_aus"] == {}
    np.testing.assert_allclose(kept.source_aus, ident.source_aus)    # the same fit, only the removal differs
    v, s = kept.vertices, kept.source_vertices
    assert np.abs(v[13] - v[14]).max() < 1e-5                          # lips closed either way
    # the smile stays: the lip corners sit where the photo has them, above the removed identity's
    assert abs(v[61, 1] - s[61, 1]) < 0.05 * abs(ident.vertices[61, 1] - s[61, 1]) + 1e-4
    assert v[61, 1] > ident.vertices[61, 1] and v[291, 1] > ident.vertices[291, 1]
    with pytest.raises(ValueError, match="expression must be one of"):
        photo.reconstruct(img, lm, rig=rig, expression="neutralise")


def test_cache_file_round_trip(smiling, tmp_path):
    ident, path, _, _ = smiling
    back = photo.load(path)
    assert back.meta == ident.meta
    for f in dataclasses.fields(photo.PhotoIdentity):
        a, b = getattr(ident, f.name), getattr(back, f.name)
        if isinstance(a, np.ndarray):
            assert a.shape == b.shape and np.allclose(a, b, atol=1e-6), f.name
    assert photo.read_meta(path)["source_sha1"] == "0" * 20
    bogus = tmp_path / "bogus.npz"
    np.savez(bogus, meta=np.frombuffer(b'{"format": "other"}', np.uint8))
    with pytest.raises(ValueError, match="not an ausynth photo identity"):
        photo.load(bogus)


def test_neutral_rerender_at_the_source_reproduces_the_photo(rig, cache, photo_renderer, smiling):
    from aukit.crop import crop_box, crop_image

    ident, path, img, lm = smiling
    # re-render the *source* expression (identity + removed AUs) at the source pose
    src = {a: float(v) for a, v in zip(RIG_AUS, ident.removed_aus)}
    out = photo_renderer.render(build_scene(photo_spec(path, src, ident.source_pose, SIZE, 300.0), rig, cache))
    ref = crop_image(img, crop_box(lm[:, :2]), SIZE)
    inner = out["face_mask"] & (out["seg"] == 1)
    diff = np.abs(out["rgb"].astype(float) - ref.astype(float)).mean(2)[inner]
    assert np.median(diff) < 12, np.median(diff)


def test_texture_of_a_turned_face_is_filled_by_symmetry(rig, cache, photo_renderer, basis):
    img, lm, _ = synthetic_photo(rig, cache, photo_renderer, {"yaw": 40.0, "pitch": 0.0, "roll": 0.0})
    ident = photo.reconstruct(img, lm, rig=rig)
    x = basis.neutral[:468, 0]
    far = x > 4.0 if ident.source_pose["yaw"] > 0 else x < -4.0      # the side turned away
    assert ident.visibility[:468][far].mean() < 0.5
    assert ident.confidence[:468][far].mean() > 0.8


def test_labels_are_exactly_the_target_aus(rig, cache, renderer, smiling):
    _, path, _, _ = smiling
    target = {"AU01": 2.0, "AU02": 2.5, "AU26": 3.0}
    spec = photo_spec(path, target, {"yaw": 5.0, "pitch": 0.0, "roll": 0.0}, SIZE)
    geom = build_scene(spec, rig, cache)
    assert isinstance(geom, PhotoSceneGeometry)
    out = renderer.render(geom)
    assert out["rgb"].shape == (SIZE, SIZE, 3)
    assert spec.aus == {a: target.get(a, 0.0) for a in RIG_AUS}
    assert np.allclose(rig_to_ganimation(au_vector(spec.aus))[[0, 1, 15]], [2.0, 2.5, 3.0])
    assert (out["seg"] == 1).mean() > 0.2 and (out["seg"] == 3).any()      # face, open mouth
    assert out["landmark_visible"][:468].mean() > 0.8


def test_hole_guard_refuses_an_untextured_face(rig, cache, renderer, smiling):
    import synth.render.photo_layer as layer

    _, path, _, _ = smiling
    spec = photo_spec(path, {}, {"yaw": 0.0, "pitch": 0.0, "roll": 0.0}, SIZE)
    geom = build_scene(spec, rig, cache)
    renderer.render(geom)
    assert renderer.last_photo_holes[0] < 0.02
    broken = dataclasses.replace(geom, photo=dataclasses.replace(
        geom.photo, triangle_confidence=np.zeros_like(geom.photo.triangle_confidence)))
    assert layer.CHECK_HOLES
    with pytest.raises(PhotoHoleError):
        renderer.render(broken)


def test_sampled_photo_specs_render_without_holes(rig, cache, renderer, smiling):
    from synth.config import SynthConfig
    from synth.sampling import sample_scene

    _, path, _, _ = smiling
    cfg = SynthConfig()
    n_photo = 0
    for i in range(12):
        spec = sample_scene(cfg, 5, i, (), (path,))
        if spec.identity["kind"] != "photo":
            continue
        n_photo += 1
        assert spec.background == {"kind": "photo"} and spec.lights == ()
        spec = dataclasses.replace(spec, image_size=SIZE, occluders=())
        renderer.render(build_scene(spec, rig, cache))      # raises PhotoHoleError on holes
        assert renderer.last_photo_holes[0] <= 0.02
    assert n_photo >= 3


def test_sampling_is_deterministic_and_unchanged_without_a_pool(smiling):
    from synth.config import SynthConfig
    from synth.sampling import sample_scene

    _, path, _, _ = smiling
    cfg = SynthConfig()
    for i in range(5):
        assert sample_scene(cfg, 1, i) == sample_scene(cfg, 1, i, (), ())
        assert sample_scene(cfg, 1, i, (), (path,)) == sample_scene(cfg, 1, i, (), (path,))
    kinds = {sample_scene(cfg, 1, i, (), (path,)).identity["kind"] for i in range(20)}
    assert kinds == {"photo", "procedural"}


def test_photo_pose_stays_in_the_allowed_range(smiling):
    from synth.config import SynthConfig
    from synth.identity.photo_pool import allowed_pose, sample_photo

    ident, path, _, _ = smiling
    cfg = SynthConfig()
    allowed = allowed_pose(cfg, ident.meta)
    src = ident.source_pose
    for name, turn in zip(("yaw", "pitch", "roll"), cfg.identity.photo_max_turn):
        lo, hi = allowed[name]
        assert lo >= src[name] - turn - 1e-9 and hi <= src[name] + turn + 1e-9
    for i in range(30):
        d = sample_photo(cfg, 0, [path], np.random.default_rng(i))
        for name in ("yaw", "pitch", "roll"):
            assert allowed[name][0] <= d.pose[name] <= allowed[name][1]
        assert cfg.identity.photo_distance_cm[0] <= d.distance_cm <= cfg.identity.photo_distance_cm[1]


def test_grayscale_photos_give_grayscale_samples(rig, cache, photo_renderer, renderer, tmp_path):
    img, lm, _ = synthetic_photo(rig, cache, photo_renderer, {"yaw": 0.0, "pitch": 0.0, "roll": 0.0})
    gray = np.repeat(img.mean(2, keepdims=True).astype(np.uint8), 3, axis=2)
    ident = photo.reconstruct(gray, lm, rig=rig)
    assert ident.grayscale
    path = tmp_path / "gray.npz"
    photo.save(path, ident)
    out = renderer.render(build_scene(photo_spec(path, {"AU25": 3.0, "AU26": 3.0}, ident.source_pose, SIZE),
                                      rig, cache))
    rgb = out["rgb"].astype(int)
    assert np.abs(rgb[..., 0] - rgb[..., 1]).max() <= 1 and np.abs(rgb[..., 1] - rgb[..., 2]).max() <= 1


def test_wrinkle_scale_reaches_photo_identities(rig_with_wrinkles, cache, smiling):
    """Photo identities get the rig's wrinkles at 0.8 x ``identity.wrinkles``: none at 0,
    darker as the scale grows."""
    _, path, _, _ = smiling
    spec = photo_spec(path, {"AU04": 4.0, "AU12": 3.0}, {"yaw": 0.0, "pitch": 0.0, "roll": 0.0}, SIZE)
    sums = {}
    for scale in (0.0, 1.0, 2.0):
        geom = build_scene(spec, rig_with_wrinkles(scale), cache)
        if scale == 0.0:
            assert np.array_equal(geom.face_texture, geom.identity.texture)
        sums[scale] = geom.face_texture.astype(float).sum()
    assert sums[0.0] > sums[1.0] > sums[2.0]


def test_wrinkle_aus_reach_photo_identities(rig_with_wrinkles, cache, smiling):
    """``identity.wrinkle_aus=[AU01, AU02]`` on a photo identity: a frown and a smile paint
    nothing; a brow raise added paints its forehead lines, exactly as it does alone."""
    _, path, _, _ = smiling
    pose = {"yaw": 0.0, "pitch": 0.0, "roll": 0.0}
    forehead = rig_with_wrinkles(1.0, ("AU01", "AU02"))
    plain = build_scene(photo_spec(path, {"AU04": 4.0, "AU12": 3.0}, pose, SIZE), forehead, cache)
    assert np.array_equal(plain.face_texture, plain.identity.texture)
    raised = build_scene(photo_spec(path, {"AU01": 4.0, "AU04": 4.0, "AU12": 3.0}, pose, SIZE), forehead, cache)
    alone = build_scene(photo_spec(path, {"AU01": 4.0}, pose, SIZE), rig_with_wrinkles(1.0), cache)
    assert raised.face_texture.astype(float).sum() < plain.face_texture.astype(float).sum()
    assert np.array_equal(raised.face_texture, alone.face_texture)


def test_resting_creases_reach_photo_identities(rig_with_wrinkles, cache, smiling):
    """Photo identities get the spec's resting creases too, with the expression wrinkles off."""
    _, path, _, _ = smiling
    spec = photo_spec(path, {}, {"yaw": 0.0, "pitch": 0.0, "roll": 0.0}, SIZE)
    rig0 = rig_with_wrinkles(0.0)
    plain = build_scene(spec, rig0, cache)
    creased = build_scene(dataclasses.replace(spec, creases={"AU04": 5.0, "AU10": 5.0}), rig0, cache)
    assert np.array_equal(plain.face_texture, plain.identity.texture)
    assert creased.face_texture.astype(float).sum() < plain.face_texture.astype(float).sum()
