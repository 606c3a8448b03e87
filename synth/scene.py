"""From a scene spec to renderable geometry: backend-agnostic, numpy only.

:func:`build_scene` turns (spec, rig, identity) into :class:`SceneGeometry`: parts in their
rigid frames, the framed camera, lights, world-space landmarks and AU region bits. Both
backends render the same ``SceneGeometry``, so labels share one definition.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from aukit.aus import au_vector
from aukit.schema import SceneSpec
from synth import parts
from synth.camera import Camera, framed_camera, head_matrix
from synth.identity import Identity, hair_coverage, procedural_identity
from synth.identity.wrinkles import apply_wrinkles
from synth.occluders import HeadState, build_occluders
from synth.occluders import shapes as occ_shapes
from synth.rig import SEG_CLASSES, HeadRig, IdentityGeometry, Part

SCLERA = np.array([0.80, 0.76, 0.72])


@dataclass(frozen=True)
class SceneGeometry:
    """Everything a backend draws. ``frames`` maps a part's ``node`` to its 4x4 world pose."""

    spec: SceneSpec
    parts: tuple[Part, ...]
    frames: dict[str, np.ndarray]
    camera: Camera
    landmarks_world: np.ndarray      # (478, 3) cm
    identity: Identity
    face_texture: np.ndarray         # (H, W, 3) uint8: identity texture + expression wrinkles


class IdentityCache:
    """LRU cache of identities and their rig geometry (building one costs ~0.2 s)."""

    def __init__(self, rig: HeadRig, capacity: int = 256):
        self.rig, self.capacity = rig, capacity
        self._items: OrderedDict[int, tuple[Identity, IdentityGeometry]] = OrderedDict()

    def get(self, spec: dict) -> tuple[Identity, IdentityGeometry]:
        if spec.get("kind") == "photo":  # photo-reconstructed identities (synth/identity/photo_scene.py)
            from synth.identity.photo_scene import cache_get

            return cache_get(self, spec)
        if spec.get("kind") != "procedural":
            raise ValueError(f"unsupported identity kind {spec.get('kind')!r}")
        key = int(spec["seed"])
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        rig = self.rig
        ident = procedural_identity(key, rig.basis.neutral, len(rig.basis.shape_names))
        hair = hair_coverage(ident.style, rig.loft_dir, rig.loft_t, rig.loft_weight)
        geo = rig.prepare(ident.shape, ident.style.thickness, hair)
        self._items[key] = (ident, geo)
        if len(self._items) > self.capacity:
            self._items.popitem(last=False)
        return ident, geo


@dataclass(frozen=True)
class PosedHead:
    """The expressed, posed and framed head of one spec (shared by procedural and photo
    scenes). ``aus``: (len(RIG_AUS),) FACS 0-5; ``skin``/``normals``: (V, 3) head frame, cm;
    ``eyes``: per-eye vertices; ``iris``: iris centres; ``head``: (4, 4) head -> world;
    ``landmarks_head``/``landmarks_world``: (478, 3); ``camera``; ``bits``: (T,) uint32 AU
    region bits per triangle."""

    aus: np.ndarray
    skin: np.ndarray
    normals: np.ndarray
    eyes: list
    iris: np.ndarray
    head: np.ndarray
    landmarks_head: np.ndarray
    landmarks_world: np.ndarray
    camera: Camera
    bits: np.ndarray


def pose_head(spec: SceneSpec, rig: HeadRig, geo: IdentityGeometry) -> PosedHead:
    """Apply the spec's AUs, gaze and head pose to an identity and frame the camera on it."""
    aus = au_vector(spec.aus)
    skin = rig.deform(geo, aus)
    eyes_v, iris = rig.eyes(geo, (spec.gaze["yaw"], spec.gaze["pitch"]))
    head = head_matrix(spec.pose)
    lm_head = rig.landmarks(skin, iris)
    lm_world = lm_head @ head[:3, :3].T + head[:3, 3]
    cam = framed_camera(lm_world, spec.camera["distance_cm"], spec.image_size, tuple(spec.camera["jitter"]))
    return PosedHead(aus, skin, rig.normals(skin), eyes_v, iris, head, lm_head, lm_world, cam,
                     rig.region_bits(aus))


def resting_creases(spec: SceneSpec) -> np.ndarray | None:
    """The spec's resting creases as a ``RIG_AUS`` vector (FACS 0-5), or None if it has none."""
    return au_vector(spec.creases) if spec.creases else None


def build_scene(spec: SceneSpec, rig: HeadRig, cache: IdentityCache) -> SceneGeometry:
    """Deform, dress and frame the head of ``spec``."""
    if spec.identity.get("kind") == "photo":  # a re-posed photo face over its own backdrop
        from synth.identity.photo_scene import build_photo_scene

        return build_photo_scene(spec, rig, cache)
    ident, geo = cache.get(spec.identity)
    p = pose_head(spec, rig, geo)
    all_parts = [*_skin_parts(rig, ident, geo, p.skin, p.normals, p.bits),
                 *_eye_parts(rig, ident, p.eyes, geo, p.bits),
                 *_mouth_parts(rig, geo, p.aus, p.bits, p.skin),
                 _neck_part(rig, ident),
                 *_occluder_parts(spec, rig, ident, geo, p.skin, p.normals, p.landmarks_head)]
    frames = {"head": p.head, "neck": head_matrix(spec.pose, 0.5)}
    texture = apply_wrinkles(ident.texture, p.aus, rig.basis.neutral, rig.wrinkles, resting_creases(spec),
                             rig.wrinkle_aus)
    return SceneGeometry(spec, tuple(all_parts), frames, p.camera, p.landmarks_world, ident, texture)


def _skin_parts(rig, ident, geo, skin, normals, bits):
    tris = rig.triangles
    face = rig.is_face_tri
    mix = np.clip((geo.hair - 0.3) / 0.4, 0, 1)[:, None]
    colors = ident.skin * (1 - mix) + ident.hair * mix
    return [
        Part("face", skin, tris[face], normals, SEG_CLASSES["face"], uv=rig.face_uv,
             texture="face", roughness=0.62, tri_regions=bits[face]),
        Part("head", skin, tris[~face], normals, SEG_CLASSES["head"], colors=colors.astype(np.float32),
             roughness=0.75, tri_regions=np.zeros((~face).sum(), np.uint32)),
    ]


def _rim_bits(bits_tri: np.ndarray, rig: HeadRig, hole: str) -> np.uint32:
    """AU bits of the triangles touching a hole's rim: the hole's interior inherits them."""
    touch = rig.rim_triangles[hole]
    return np.bitwise_or.reduce(bits_tri[touch]) if touch.any() else np.uint32(0)


def _eye_parts(rig, ident, eyes_v, geo, bits):
    unit, tris, angle = rig._eye_tpl
    col = parts.eye_colors(angle, ident.eye, SCLERA).astype(np.float32)
    out = []
    for k, ev in enumerate(eyes_v):
        n = (ev - geo.eye_centers[k]) / parts.EYE_RADIUS
        rb = _rim_bits(bits, rig, ("eye_r", "eye_l")[k])
        out.append(Part(f"eye_{'rl'[k]}", ev, tris, n.astype(np.float32), SEG_CLASSES["eyes"],
                        colors=col, roughness=0.15, tri_regions=np.full(len(tris), rb, np.uint32)))
    return out


def _mouth_parts(rig, geo, aus, bits, skin):
    jaw = rig.basis.jaw_transform(aus)
    rb = _rim_bits(bits, rig, "mouth")
    colors = {"upper_teeth": [0.80, 0.76, 0.66], "lower_teeth": [0.78, 0.74, 0.64],
              "cavity": [0.10, 0.025, 0.025], "tongue": [0.45, 0.13, 0.12]}
    out = []
    for name, (v, t, shade, w, n0) in geo.interior.items():
        moved = v @ jaw[:3, :3].T + jaw[:3, 3]
        v2 = v * (1 - w[:, None]) + moved * w[:, None]
        n = np.where(w[:, None] > 0.5, n0 @ jaw[:3, :3].T, n0).astype(np.float32)
        c = (np.asarray(colors[name]) * shade[:, None]).astype(np.float32)
        tris = np.concatenate([t, t[:, [0, 2, 1]]]) if "teeth" in name else t
        out.append(Part(name, v2, tris, n, SEG_CLASSES["mouth"], colors=c,
                        roughness=0.35 if "teeth" in name else 0.8,
                        tri_regions=np.full(len(tris), rb, np.uint32)))
    return out


def _occluder_parts(spec, rig, ident, geo, skin, normals, lm_head) -> list[Part]:
    if not spec.occluders:
        return []
    head = HeadState(skin, normals, rig.triangles, rig.is_face_tri, lm_head, geo.eye_centers, cKDTree(skin))
    out = []
    for instance, klass, pieces in build_occluders(spec.occluders, head, ident.skin, ident.hair):
        for k, pc in enumerate(pieces):
            color = np.broadcast_to(np.asarray(pc.color, np.float32), pc.vertices.shape).astype(np.float32)
            out.append(Part(f"occluder{instance}_{k}", pc.vertices, pc.triangles,
                            occ_shapes.normals(pc.vertices, pc.triangles), SEG_CLASSES["occluder"],
                            colors=color, roughness=pc.roughness, metallic=pc.metallic, alpha=pc.alpha,
                            double_sided=True, instance=instance, occluder_class=klass,
                            tri_regions=np.zeros(len(pc.triangles), np.uint32)))
    return out


def _neck_part(rig, ident):
    v, t, _ = rig._neck
    c = np.tile((ident.skin * 0.85).astype(np.float32), (len(v), 1))
    return Part("neck", v, t, rig.neck_normals, SEG_CLASSES["neck"], node="neck", colors=c,
                roughness=0.8, tri_regions=np.zeros(len(t), np.uint32))
