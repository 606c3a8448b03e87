"""Photo identities in a scene: geometry, the warped backdrop, shading and the hole check.

:func:`build_photo_scene` is what :func:`synth.scene.build_scene` runs for an identity spec
``{"kind": "photo", "file": ".../<key>.npz", ...}``. It returns a
:class:`PhotoSceneGeometry`: the usual parts (face skin textured with the photo in the
rig's UV layout, eyeballs, mouth interior) for the labels, plus a :class:`PhotoLayer` the
pyrender backend composites over (``synth/render/photo_layer.py``):

* **Head motion.** The face is re-posed in 3D (exact target AUs, pose relative to the
  camera). The backdrop (hair, ears, neck, background of the photo) follows by a smooth
  2D warp: control points on the face contour and the rig's skull loft move like the head
  (source pose and AUs -> target pose and AUs), points on the neck move half as much, and
  points away from the head stay on the background plane; piecewise-linear in between
  (:mod:`synth.identity.photo_backdrop`).
* **Seams.** The face's opacity ramps from 0 on its contour to 1 ``FEATHER_CM`` inside
  (vertex alpha); under the ramp the backdrop shows the same photo pixels, warped with the
  contour, so there is no edge. Compositing is premultiplied in linear light.
* **Shading.** Flat colour pass: texture x ``(S(n_target) / S(n_source))^(1/2.2)`` with the
  photo's own fitted first-order light ``S`` (``PhotoIdentity.light``), so the neutral
  re-render reproduces the photo and expressions/pose change the shading. Eyes and mouth
  interior use the same light with colours from the photo (iris, sclera, skin level).
  The spec's key/fill lights do not apply to photo identities (the photo has its light).
* **Grayscale photos** give grayscale samples (CG parts included).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from synth import parts
from synth.camera import head_matrix
from synth.identity import photo as photo_mod
from synth.identity.photo_uv import texture_layout
from synth.identity.photo_backdrop import warp_backdrop
from synth.identity.procedural import HairStyle, Identity
from synth.identity.paint import UV_ORIGIN, UV_SIZE
from synth.identity.raster import interpolate
from synth.identity.wrinkles import MAP_SIZE, MAX_DARKENING, crease_shade, crease_terms
from synth.rig import SEG_CLASSES, HeadRig, IdentityGeometry, Part, _interior
from synth.scene import SceneGeometry, pose_head, resting_creases

SHADE_RANGE = (0.55, 1.7)        # clamp of the relighting ratio
HOLE_LIMIT = 0.02                # a sample may show at most this fraction of holes (pixels) ...
OUTSIDE_LIMIT = 0.25             # ... and of backdrop filled from outside the photo
TEETH_OVER_SKIN = 1.8            # teeth luminance / skin luminance (linear)
RIM_SHADOW = 0.25                # eyeball darkening at the lid margins
WRINKLE_STRENGTH = 0.8           # the rig's wrinkle maps, toned down on photos (they have real skin)
_MOUTH_RGB = {"upper_teeth": [0.80, 0.76, 0.66], "lower_teeth": [0.78, 0.74, 0.64],
              "cavity": [0.10, 0.025, 0.025], "tongue": [0.45, 0.13, 0.12]}


class PhotoHoleError(RuntimeError):
    """A rendered sample would show untextured or inpainted regions (never emitted)."""


@dataclass(frozen=True)
class PhotoRecord(Identity):
    """An :class:`Identity` backed by a :class:`~synth.identity.photo.PhotoIdentity`, with the
    per-rig data the renderer needs (fine-mesh feather alpha, confidence, source normals)."""

    photo: photo_mod.PhotoIdentity | None = None
    feather: np.ndarray | None = None            # (Vf,) opacity over the backdrop
    relight: np.ndarray | None = None            # (Vf,) how much relighting applies (0 at the contour)
    confidence: np.ndarray | None = None         # (Vf,) texture confidence
    source_normals: np.ndarray | None = None     # (Vf, 3) camera-frame normals at the source
    source_coarse: np.ndarray | None = None      # (Vc, 3) coarse face+loft mesh at the source
    backdrops: dict = field(default_factory=dict)   # output size -> prefiltered linear backdrop


@dataclass(frozen=True)
class PhotoLayer:
    """What the backend needs beyond the parts: flat colours, the warped backdrop."""

    colors: dict[str, np.ndarray]     # part name -> (N, 4) float32 multipliers (rgb, alpha)
    backdrop: np.ndarray              # (H, W, 3) float32 linear RGB, output size
    backdrop_state: np.ndarray        # (H, W) uint8: 0 photo, 1 inpainted face, 2 outside the photo
    grayscale: bool
    key: str                          # identity key (texture cache)
    triangle_confidence: np.ndarray   # (T_face,) mean texture confidence of face triangles
    triangle_feather: np.ndarray      # (T_face,) mean opacity of face triangles


@dataclass(frozen=True)
class PhotoSceneGeometry(SceneGeometry):
    photo: PhotoLayer | None = None


# ---------------------------------------------------------------------------- identities
def load_record(path: str, rig: HeadRig) -> tuple[PhotoRecord, IdentityGeometry]:
    """Load an identity file and precompute its rig geometry (~50 ms)."""
    pid = photo_mod.load(path)
    b = rig.basis
    v_id = pid.vertices.astype(np.float64)
    sub = rig.subdiv.matrix
    base = np.asarray(sub @ photo_mod.combined(rig, v_id))
    centers = rig.eye_centers(base)
    lip_y, front_z = float(base[[13, 14], 1].mean()), float(base[[13, 14], 2].mean())
    arches = parts.arches(lip_y, front_z)
    width = float(abs(base[78, 0] - base[308, 0]))
    geo = IdentityGeometry(base=base, eye_centers=centers, hair=np.zeros(len(base)), arches=arches,
                           interior=_interior(arches, lip_y, front_z, width))
    n_loft = len(rig.loft.vertices)
    feather = np.asarray(sub @ np.concatenate([photo_mod.opacity(v_id, pid.visibility, b), np.zeros(n_loft)]))
    fade = np.asarray(sub @ np.concatenate([photo_mod.feather_weights(v_id, b, photo_mod.MARGIN_CM),
                                            np.zeros(n_loft)]))
    conf = np.asarray(sub @ np.concatenate([pid.confidence.astype(np.float64), np.zeros(n_loft)]))
    src_coarse = photo_mod.combined(rig, pid.source_model())
    src_fine = np.asarray(sub @ src_coarse)
    normals = rig.normals(src_fine).astype(np.float64) @ pid.rotation.T
    meta = pid.meta
    skin_lin = np.full(3, float(meta.get("skin_luminance", 0.25)))
    eyes = meta["eyes"]
    rec = PhotoRecord(spec={"kind": "photo", "key": pid.key}, shape=pid.shape, texture=pid.texture,
                      skin=skin_lin, hair=skin_lin * 0.3, eye=np.asarray(eyes["iris"]),
                      style=HairStyle(front=1.0, back=1.0, thickness=0.0, bald=True), uv=None,
                      photo=pid, feather=np.clip(feather, 0, 1), relight=np.clip(fade, 0, 1),
                      confidence=np.clip(conf, 0, 1),
                      source_normals=normals, source_coarse=src_coarse)
    return rec, geo


def cache_get(cache, spec: dict) -> tuple[PhotoRecord, IdentityGeometry]:
    """``IdentityCache.get`` for photo identities (same LRU, keyed by file)."""
    key = ("photo", str(spec["file"]))
    items = cache._items
    if key in items:
        items.move_to_end(key)
        return items[key]
    entry = load_record(str(spec["file"]), cache.rig)
    items[key] = entry
    if len(items) > cache.capacity:
        items.popitem(last=False)
    return entry


# ---------------------------------------------------------------------------- scene
def build_photo_scene(spec, rig: HeadRig, cache) -> PhotoSceneGeometry:
    """Deform, re-pose and frame a photo identity; warp its backdrop (see module doc)."""
    rec, geo = cache.get(spec.identity)
    pid = rec.photo
    p = pose_head(spec, rig, geo)
    aus, skin, normals, eyes_v, bits = p.aus, p.skin, p.normals, p.eyes, p.bits
    head, lm_head, lm_world, cam = p.head, p.landmarks_head, p.landmarks_world, p.camera
    face = rig.is_face_tri
    light = pid.light
    rot = head[:3, :3]

    n_cam = normals.astype(np.float64) @ rot.T
    shade = _shade(light, n_cam) / _shade(light, rec.source_normals)
    # the backdrop is not relit: fade the relighting out towards the face contour
    shade = (1.0 + (np.clip(shade, *SHADE_RANGE) - 1.0) * rec.relight) ** (1 / 2.2)
    # near the contour, surface seen edge-on in this view gives way to the backdrop (which
    # holds the true silhouette, warped with the head): no double silhouette
    facing = np.clip((n_cam[:, 2] - 0.1) / 0.35, 0.0, 1.0)
    alpha = rec.feather * (1.0 - (1.0 - rec.relight) * (1.0 - facing * facing * (3 - 2 * facing)))
    face_rgba = np.concatenate([np.repeat(shade[:, None], 3, 1), alpha[:, None]], 1).astype(np.float32)
    colors = {"face": face_rgba}
    uv, _, _ = texture_layout(rig, rec.texture.shape[0])
    all_parts = [Part("face", skin, rig.triangles[face], normals, SEG_CLASSES["face"], uv=uv,
                      texture="face", roughness=0.62, tri_regions=bits[face])]
    all_parts += _eye_parts(rig, rec, geo, eyes_v, bits, rot, light, colors)
    all_parts += _mouth_parts(rig, rec, geo, aus, bits, rot, light, colors)
    all_parts += _occluders(spec, rig, rec, geo, skin, normals, lm_head, rot, light, colors)
    frames = {"head": head, "neck": head_matrix(spec.pose, 0.5)}
    texture = apply_wrinkles_soft(rec.texture, aus, rig, resting_creases(spec))
    ftris = rig.triangles[face]
    layer = PhotoLayer(
        colors=colors, grayscale=pid.grayscale, key=pid.key,
        triangle_confidence=rec.confidence[ftris].mean(1).astype(np.float32),
        triangle_feather=rec.feather[ftris].mean(1).astype(np.float32),
        **warp_backdrop(rec, rig, aus, spec.pose, cam))
    return PhotoSceneGeometry(spec, tuple(all_parts), frames, cam, lm_world, rec, texture, photo=layer)


def apply_wrinkles_soft(texture: np.ndarray, aus: np.ndarray, rig: HeadRig,
                        resting: np.ndarray | None = None) -> np.ndarray:
    """The rig's per-AU wrinkle darkening (``synth.identity.wrinkles``) and the spec's resting
    creases, mapped from the rig's frontal UV layout onto the photo layout, at
    ``WRINKLE_STRENGTH`` x the rig's ``wrinkles`` (resting creases: x ``RESTING_STRENGTH``)."""
    terms = crease_terms(aus, resting, rig.basis.neutral, MAP_SIZE, rig.wrinkles, rig.wrinkle_aus)
    if not terms:
        return texture
    mapx, mapy = _wrinkle_lookup(rig, texture.shape[0])
    terms = [(cv2.remap(np.clip(dark, 0, MAX_DARKENING).astype(np.float32), mapx, mapy, cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_CONSTANT, borderValue=0.0), WRINKLE_STRENGTH * s)
             for dark, s in terms]
    return np.clip(texture * crease_shade(terms)[..., None], 0, 255).astype(np.uint8)


_WRINKLE_LOOKUP: dict = {}


def _wrinkle_lookup(rig: HeadRig, size: int) -> tuple[np.ndarray, np.ndarray]:
    """For every texel of the photo layout, its position in the wrinkle maps (frontal
    canonical coordinates of the neutral surface point, ``synth.identity.paint.grid``)."""
    key = (id(rig), size)
    hit = _WRINKLE_LOOKUP.get(key)
    if hit is None or hit[0] is not rig:
        _, ids, bary = texture_layout(rig, size)
        xy = interpolate(ids, bary, rig.triangles[rig.is_face_tri], rig.neutral[:, :2], fill=-100.0)
        col = (xy[..., 0] - UV_ORIGIN[0]) / UV_SIZE[0] * MAP_SIZE - 0.5
        row = (1.0 - (xy[..., 1] - UV_ORIGIN[1]) / UV_SIZE[1]) * MAP_SIZE - 0.5
        if len(_WRINKLE_LOOKUP) >= 4:
            _WRINKLE_LOOKUP.clear()
        hit = _WRINKLE_LOOKUP[key] = (rig, col.astype(np.float32), row.astype(np.float32))
    return hit[1], hit[2]


def _shade(light: np.ndarray, n: np.ndarray) -> np.ndarray:
    s = light[0] + n @ light[1:]
    return np.maximum(s, 0.08 * max(light[0], 0.1))


def _srgb_mult(linear: np.ndarray) -> np.ndarray:
    """Linear colours -> display values the flat shader outputs directly (sRGB curve)."""
    c = np.clip(linear, 0, 1)
    return np.where(c <= 0.0031308, c * 12.92, 1.055 * c ** (1 / 2.4) - 0.055)


def _rgba(linear: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    out = np.ones((len(linear), 4), np.float32)
    out[:, :3] = _srgb_mult(linear)
    out[:, 3] = alpha
    return out


def _rim(bits_tri: np.ndarray, rig: HeadRig, hole: str) -> np.uint32:
    touch = rig.rim_triangles[hole]
    return np.bitwise_or.reduce(bits_tri[touch]) if touch.any() else np.uint32(0)


def _eye_parts(rig, rec, geo, eyes_v, bits, rot, light, colors):
    unit, tris, angle = rig._eye_tpl
    eyes = rec.photo.meta["eyes"]
    base = parts.eye_colors(angle, np.asarray(eyes["iris"]), np.asarray(eyes["sclera"]))
    out = []
    for k, ev in enumerate(eyes_v):
        n = (ev - geo.eye_centers[k]) / parts.EYE_RADIUS
        # relative to the light on a forward-facing surface: the photo's colours are lit already
        sh = _shade(light, n @ rot.T) / _shade(light, np.array([[0.0, 0.0, 1.0]]))
        name = f"eye_{'rl'[k]}"
        colors[name] = _rgba(base * (np.clip(sh, *SHADE_RANGE) * _eye_occlusion(n))[:, None])
        rb = _rim(bits, rig, ("eye_r", "eye_l")[k])
        out.append(Part(name, ev, tris, n.astype(np.float32), SEG_CLASSES["eyes"],
                        roughness=0.15, tri_regions=np.full(len(tris), rb, np.uint32)))
    return out


def _eye_occlusion(n: np.ndarray) -> np.ndarray:
    """Darkening of the eyeball towards the lid margins (head frame directions ``n``): in
    real photos the sclera next to the lids is in shadow; a uniformly lit CG eyeball looks
    like a stare. Not under the upper lid only: sclera shown above the iris is what makes
    raised lids (AU05) read as surprise, and a darkened top reads as sadness."""
    away = np.degrees(np.arccos(np.clip(n[:, 2], -1.0, 1.0)))      # from the head's forward axis
    return 1.0 - RIM_SHADOW * np.clip((away - 20.0) / 25.0, 0.0, 1.0)


def _mouth_parts(rig, rec, geo, aus, bits, rot, light, colors):
    jaw = rig.basis.jaw_transform(aus)
    rb = _rim(bits, rig, "mouth")
    # the photo's exposure: teeth brighter than its skin (albedo ~1.8x), never beyond CG-white
    level = float(np.clip(TEETH_OVER_SKIN * rec.photo.meta.get("skin_luminance", 0.25) / 0.8, 0.2, 1.1))
    out = []
    for name, (v, t, shade, w, n0) in geo.interior.items():
        moved = v @ jaw[:3, :3].T + jaw[:3, 3]
        v2 = v * (1 - w[:, None]) + moved * w[:, None]
        n = np.where(w[:, None] > 0.5, n0 @ jaw[:3, :3].T, n0).astype(np.float32)
        sh = _shade(light, n.astype(np.float64) @ rot.T) / _shade(light, np.array([[0.0, 0.0, 1.0]]))
        lin = np.asarray(_MOUTH_RGB[name]) * shade[:, None] * level * np.clip(sh, 0.3, 1.2)[:, None]
        colors[name] = _rgba(lin)
        tris = np.concatenate([t, t[:, [0, 2, 1]]]) if "teeth" in name else t
        out.append(Part(name, v2, tris, n, SEG_CLASSES["mouth"], roughness=0.35 if "teeth" in name else 0.8,
                        tri_regions=np.full(len(tris), rb, np.uint32)))
    return out


def _occluders(spec, rig, rec, geo, skin, normals, lm_head, rot, light, colors):
    """Occluders of the spec (built by the scene module, if it has them), flat-shaded with
    the photo's light. See-through parts (lenses) are not drawn on photo identities."""
    if not getattr(spec, "occluders", ()):
        return []
    from synth import scene as scene_mod

    build = getattr(scene_mod, "_occluder_parts", None)
    if build is None:
        return []
    out = []
    for p in build(spec, rig, rec, geo, skin, normals, lm_head):
        if getattr(p, "alpha", 1.0) < 1.0:
            continue
        n = np.asarray(p.normals, np.float64)
        frame = rot if p.node == "head" else np.eye(3)
        sh = _shade(light, n @ frame.T) / _shade(light, np.array([[0.0, 0.0, 1.0]]))
        colors[p.name] = _rgba(np.asarray(p.colors, np.float64) * np.clip(sh, 0.3, 1.3)[:, None])
        out.append(p)
    return out


def hole_fractions(geom: PhotoSceneGeometry, ids: np.ndarray, alpha: np.ndarray) -> tuple[float, float]:
    """Fractions of the image that show holes and outside-the-photo fill.

    ``ids``: the id pass (1-based global triangle ids; the face part comes first);
    ``alpha``: the face layer's opacity at the output size. Holes = face pixels whose
    texture confidence is below ``CONF_MIN`` (weighted by the face's opacity there) plus
    backdrop pixels from the inpainted face interior that the face does not cover.
    """
    layer = geom.photo
    n_face = len(geom.parts[0].triangles)
    t = ids.astype(np.int64) - 1
    in_face = (t >= 0) & (t < n_face)
    tri = t[in_face]
    low = layer.triangle_confidence[tri] < photo_mod.CONF_MIN
    face_holes = float((low * layer.triangle_feather[tri]).sum())
    exposed = alpha < 0.5
    inpainted = float(((layer.backdrop_state == 1) & exposed).sum())
    outside = float(((layer.backdrop_state == 2) & exposed).sum())
    return (face_holes + inpainted) / ids.size, outside / ids.size
