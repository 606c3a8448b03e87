"""Blender backend: label parity with pyrender, camera and depth definitions, shape keys,
determinism, the clear error without bpy, and ``ausynth render --backend blender``.

Tests that need bpy skip with a reason where the ``[blender]`` extra is not installed (CI
installs it). Images are tiny and sampled lightly: these check plumbing and labels, not
looks (bench/blender_parity.py writes the side-by-side contact sheet).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from aukit.config import load
from synth.config import SynthConfig
from synth.render import blender_params as bp
from synth.rig import SEG_CLASSES, Part
from synth.sampling import sample_scene
from synth.scene import build_scene

HAVE_BPY = importlib.util.find_spec("bpy") is not None
needs_bpy = pytest.mark.skipif(not HAVE_BPY, reason="needs bpy: pip install 'ausynth[blender]' (bpy==5.0.1)")
SIZE = 64
HINT = "pip install 'ausynth[blender]'"


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = (a | b).sum()
    return 1.0 if union == 0 else float((a & b).sum() / union)


def specs(n_plain: int = 3, n_occluded: int = 3):
    """Random specs (poses, AUs, lights, point lights) plus some with occluders."""
    plain = load(SynthConfig, overrides=[f"output.size={SIZE}", "occluders.probability=0"])
    occ = load(SynthConfig, overrides=[f"output.size={SIZE}", "occluders.probability=1"])
    return [sample_scene(plain, 5, i) for i in range(n_plain)] + [sample_scene(occ, 6, i) for i in range(n_occluded)]


@pytest.fixture(scope="module")
def ref():
    """pyrender at the same size. Deliberately never closed: pyrender's close() calls
    eglTerminate on the process-wide EGL display, which breaks every other live context
    (pyrender's session fixture, Blender's Workbench) later in the run."""
    from synth.render import make_renderer

    return make_renderer("pyrender", SIZE, antialias="ssaa2")


@pytest.fixture(scope="module")
def blender(cache):
    from synth.render import make_renderer

    r = make_renderer("blender", SIZE, samples=4, denoise=False, identity_cache=cache)
    yield r
    r.close()


@pytest.fixture(scope="module")
def pairs(rig, cache, ref, blender):
    out = []
    for spec in specs():
        geom = build_scene(spec, rig, cache)
        out.append((geom, ref.render(geom), blender.render(geom)))
    return out


# ---------------------------------------------------------------------------- without bpy
def test_missing_bpy_names_the_extra(monkeypatch):
    from synth.render import check_available, make_renderer

    monkeypatch.setitem(sys.modules, "bpy", None)          # `import bpy` now fails
    monkeypatch.delitem(sys.modules, "synth.render.blender_backend", raising=False)
    with pytest.raises(RuntimeError, match=r"pip install 'ausynth\[blender\]'"):
        make_renderer("blender", SIZE)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "bpy" else real(name, *a))
    with pytest.raises(RuntimeError, match=r"pip install 'ausynth\[blender\]'"):
        check_available("blender")
    check_available("pyrender")


def test_cli_refuses_blender_without_bpy_before_any_work(monkeypatch, tmp_path, capsys):
    from synth import cli

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "bpy" else real(name, *a))
    out = tmp_path / "ds"
    args = cli.build_parser().parse_args(["--n", "2", "--out", str(out), "--backend", "blender", "--workers", "2"])
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert HINT in err and "blender" in err
    assert not (out / "job.json").exists()


def test_blender_camera_reproduces_the_principal_point():
    from synth.camera import Camera
    from aukit.crop import CropBox

    cam = Camera(np.eye(4), 900.0, 900.0, 37.25, 71.5, 128, 128, CropBox(0, 0, 1))
    bc = bp.blender_camera(cam)
    pts = np.array([[0.0, 0.0, -50.0], [3.0, -2.0, -60.0], [-4.0, 5.0, -45.0]])
    uv, depth = cam.project(pts)
    # Blender's model: u = W/2 + f x/d - shift_x W, v = H/2 - f y/d + shift_y W
    f = bc.lens_mm / bc.sensor_width_mm * 128
    u = 64 + f * pts[:, 0] / depth - bc.shift_x * 128
    v = 64 - f * pts[:, 1] / depth + bc.shift_y * 128
    np.testing.assert_allclose(np.c_[u, v], uv, atol=1e-9)
    with pytest.raises(ValueError):
        bp.blender_camera(dataclasses.replace(cam, fy=901.0))


def test_depth_from_ids_is_the_zbuffer_depth(rig, cache, ref):
    """The Blender backend's depth definition, checked on pyrender's own id pass."""
    from synth.render.labels import decode_ids

    geom = build_scene(specs(1, 0)[0], rig, cache)
    ids, zbuf = ref._id_pass(geom)
    depth = bp.depth_from_ids(geom, ids)
    both = (zbuf > 0) & (depth > 0)
    assert np.array_equal(ids > 0, depth > 0) and both.sum() > 500
    np.testing.assert_allclose(depth[both], zbuf[both], atol=0.02)   # cm; GL depth is 24-bit
    assert decode_ids(np.zeros((1, 1, 3), np.uint8))[0, 0] == 0


def test_part_layout_keeps_one_winding_and_the_reversed_ids():
    tris = np.array([[0, 1, 2], [1, 3, 2]])
    v = np.zeros((4, 3))
    teeth = Part("teeth", v, np.concatenate([tris, tris[:, [0, 2, 1]]]), v, SEG_CLASSES["mouth"])
    lay = bp.part_layout(teeth)
    assert lay.primary.tolist() == [0, 1] and lay.back_tris.tolist() == [0, 1] and lay.back_ids.tolist() == [2, 3]
    cup = Part("cup", v, tris, v, SEG_CLASSES["occluder"], double_sided=True)
    lay = bp.part_layout(cup)
    assert lay.primary.tolist() == [0, 1] and lay.back_ids.tolist() == [0, 1]
    assert not len(bp.part_layout(Part("skin", v, tris, v, 1)).back_tris)


def test_only_the_mouth_cavity_is_an_inside_out_shell(rig, cache):
    geom = build_scene(specs(1, 0)[0], rig, cache)
    inside_out = {p.name for p in geom.parts if bp.inside_out(p, bp.part_layout(p))}
    assert inside_out == {"cavity"}


def test_cycles_seed_follows_the_sample():
    a, b = specs(2, 0)
    assert bp.cycles_seed(a) != bp.cycles_seed(b)
    assert bp.cycles_seed(a) == bp.cycles_seed(dataclasses.replace(a))
    assert 0 <= bp.cycles_seed(a) < 2**31


# ---------------------------------------------------------------------------- with bpy
@needs_bpy
def test_output_contract_matches_pyrender(pairs):
    for _, ref, out in pairs:
        assert set(out) == set(ref)
        for k in ref:
            assert out[k].shape == ref[k].shape and out[k].dtype == ref[k].dtype, k


@needs_bpy
def test_label_parity_with_pyrender(pairs):
    occluded = 0
    for geom, ref, out in pairs:
        assert np.abs(out["landmarks_2d"] - ref["landmarks_2d"]).max() <= 0.5
        assert iou(out["face_mask"], ref["face_mask"]) >= 0.98
        assert (out["seg"] == ref["seg"]).mean() >= 0.99
        assert (out["au_regions"] == ref["au_regions"]).mean() >= 0.99
        assert (out["landmark_visible"] == ref["landmark_visible"]).mean() >= 0.98
        both = (out["depth"] > 0) & (ref["depth"] > 0)
        assert np.median(np.abs(out["depth"][both] - ref["depth"][both])) < 0.05
        if ref["occlusion"].sum() > 10:
            occluded += 1
            assert iou(out["occlusion"], ref["occlusion"]) >= 0.95
            assert iou(out["face_occluded"], ref["face_occluded"]) >= 0.9
    assert occluded >= 1, "no spec had a visible occluder"


@needs_bpy
def test_background_is_composited_like_pyrender(pairs):
    from scipy.ndimage import binary_dilation

    for _, ref, out in pairs:
        far = ~binary_dilation((ref["seg"] > 0) | (out["seg"] > 0), iterations=3)
        assert far.sum() > 50
        np.testing.assert_array_equal(out["rgb"][far], ref["rgb"][far])


@needs_bpy
def test_faces_are_lit_and_coloured_like_pyrender(pairs):
    for geom, ref, out in pairs:
        skin = (ref["seg"] == SEG_CLASSES["face"]) & (out["seg"] == SEG_CLASSES["face"])
        a, b = ref["rgb"][skin].astype(float).mean(0), out["rgb"][skin].astype(float).mean(0)
        assert b.max() > 25, "face rendered black"
        assert np.abs(a - b).max() < 60, (a, b)


@needs_bpy
def test_render_is_deterministic_and_reuses_the_scene(rig, cache, blender):
    import bpy

    geom = build_scene(specs(1, 0)[0], rig, cache)
    a = blender.render(geom)
    n_objects = len(bpy.data.objects)
    b = blender.render(geom)
    assert np.array_equal(a["rgb"], b["rgb"]) and np.array_equal(a["seg"], b["seg"])
    assert len(bpy.data.objects) == n_objects


@needs_bpy
def test_skin_is_driven_by_au_shape_keys(rig, cache, blender):
    spec = specs(1, 0)[0]
    aus = {a: 0.0 for a in spec.aus} | {"AU12": 4.0, "AU26": 2.5, "AU45": 5.0}
    geom = build_scene(dataclasses.replace(spec, aus=aus), rig, cache)
    blender.render(geom)
    slot = next(s for s in blender._slots.values() if "face" in s.names)
    keys = slot.mesh.shape_keys.key_blocks
    assert keys["AU12"].value == 4.0 and keys["AU26"].value == 2.5 and keys["AU01"].value == 0.0
    deps = blender._scene_c.view_layers[0].depsgraph
    deps.update()
    ev = slot.obj.evaluated_get(deps)
    co = np.empty(len(ev.data.vertices) * 3, np.float32)
    ev.data.vertices.foreach_get("co", co)
    skin = next(p for p in geom.parts if p.name == "face").vertices
    np.testing.assert_allclose(co.reshape(-1, 3), skin, atol=1e-3)


@needs_bpy
def test_blender_projection_matches_the_camera(rig, cache, blender):
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Vector

    geom = build_scene(specs(1, 0)[0], rig, cache)
    blender.render(geom)
    uv, _ = geom.camera.project(geom.landmarks_world)
    pts = [world_to_camera_view(blender._scene_c, blender._cam, Vector(p)) for p in geom.landmarks_world[::25]]
    bl = np.array([[p.x * SIZE, (1 - p.y) * SIZE] for p in pts])
    np.testing.assert_allclose(bl, uv[::25], atol=1e-3)


@needs_bpy
@pytest.mark.slow
def test_cli_renders_with_blender(tmp_path):
    exe = shutil.which("ausynth") or str(Path(sys.executable).parent / "ausynth")
    out = tmp_path / "ds"
    cmd = [exe, "render", "--backend", "blender", "--n", "2", "--out", str(out), "--workers", "1",
           "--no-progress", "--set", "output.size=48", "--set", "blender.samples=2",
           "--set", "blender.denoise=false", "--set", "identity.pool_size=2"]
    env = dict(os.environ, PYOPENGL_PLATFORM="egl")
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert sorted(p.name for p in (out / "imgs").iterdir()) == ["00000000.jpg", "00000001.jpg"]
    assert len(list((out / "meta").glob("*.json"))) == 2 and (out / "manifest.json").is_file()


@needs_bpy
def test_photo_identities_render_flat_over_their_backdrop(rig, cache, ref, blender, tmp_path):
    """Photo identities are drawn as pyrender's photo pass draws them (flat, the photo's own
    light, feathered over the warped backdrop): same labels, nearly the same image."""
    from synth.identity import photo
    from synth.identity.photo_scene import PhotoSceneGeometry
    from synth.identity.sheet import photo_spec
    from tests.synth.photo_helpers import synthetic_photo

    img, lm, _ = synthetic_photo(rig, cache, ref, {"yaw": 8.0, "pitch": -3.0, "roll": 2.0}, {"AU12": 2.0})
    ident = photo.reconstruct(img, lm, source="synthetic.png", source_sha1="0" * 20, rig=rig)
    path = tmp_path / "ident.npz"
    photo.save(path, ident)
    geom = build_scene(photo_spec(str(path), {"AU12": 3.0, "AU25": 2.0}, {"yaw": 5.0, "pitch": 0.0, "roll": 0.0},
                                  SIZE, 300.0), rig, cache)
    assert isinstance(geom, PhotoSceneGeometry)
    a, b = ref.render(geom), blender.render(geom)
    assert iou(a["face_mask"], b["face_mask"]) >= 0.98 and (a["seg"] == b["seg"]).mean() >= 0.99
    diff = np.abs(a["rgb"].astype(int) - b["rgb"].astype(int))
    assert np.median(diff) <= 3 and diff.mean() < 6, (np.median(diff), diff.mean())
    assert blender.last_photo_holes[0] <= 0.02
    # and a procedural scene afterwards is lit again (the photo switch is per sample)
    out = blender.render(build_scene(specs(1, 0)[0], rig, cache))
    assert out["rgb"][out["seg"] == SEG_CLASSES["face"]].mean() > 25

