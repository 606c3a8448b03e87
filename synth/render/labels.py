"""Pixel labels from a triangle-id pass, and landmark projection/visibility.

Backends render every triangle of the scene in a flat colour that encodes its global id
(24-bit RGB, 0 = background), at the output resolution, without antialiasing. From that
image and the scene geometry this module derives every pixel label, so all backends share
one definition of segmentation, face mask, AU regions and landmark visibility.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aukit.aus import RIG_AUS
from aukit.landmarks import LM68
from synth.rig import SEG_CLASSES
from synth.scene import SceneGeometry

VISIBILITY_TOL_CM = 0.35   # a landmark is visible if it is this close to the visible surface


@dataclass(frozen=True)
class IdTable:
    """Per-triangle lookup tables indexed by global id (entry 0 = background)."""

    seg: np.ndarray        # (N+1,) uint8 segmentation class
    regions: np.ndarray    # (N+1,) uint32 AU-region bitmask (RIG_AUS bit order)
    instance: np.ndarray   # (N+1,) uint8 occluder instance (0 = none)
    klass: np.ndarray      # (N+1,) uint8 occluder class (0 = none)

    @classmethod
    def of(cls, geom: SceneGeometry) -> "IdTable":
        cols: dict[str, list[np.ndarray]] = {k: [np.zeros(1, np.uint32)] for k in ("seg", "reg", "ins", "cls")}
        for p in geom.parts:
            n = len(p.triangles)
            cols["seg"].append(np.full(n, p.seg))
            cols["reg"].append(p.tri_regions if p.tri_regions is not None else np.zeros(n))
            cols["ins"].append(np.full(n, p.instance))
            cols["cls"].append(np.full(n, p.occluder_class))
        cat = {k: np.concatenate(v) for k, v in cols.items()}
        return cls(cat["seg"].astype(np.uint8), cat["reg"].astype(np.uint32),
                   cat["ins"].astype(np.uint8), cat["cls"].astype(np.uint8))


def id_colors(n: int, offset: int) -> np.ndarray:
    """(n, 3) float32 flat colours encoding ids ``offset + 1 .. offset + n``."""
    ids = np.arange(offset + 1, offset + n + 1, dtype=np.int64)
    rgb = np.stack([ids & 255, (ids >> 8) & 255, (ids >> 16) & 255], 1)
    return (rgb / 255.0).astype(np.float32)


def decode_ids(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 id image -> (H, W) int64 ids."""
    c = rgb.astype(np.int64)
    return c[..., 0] | (c[..., 1] << 8) | (c[..., 2] << 16)


def pixel_labels(geom: SceneGeometry, ids: np.ndarray, depth: np.ndarray,
                 ids_clear: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """All per-pixel and landmark labels of one render.

    ``ids_clear`` is the id image of the same scene without occluders (None when there
    are none); it defines what the occluders hide.

    Returns:
      seg (H, W) uint8 classes (:data:`synth.rig.SEG_CLASSES`);
      face_mask (H, W) bool: face skin, eyes and mouth interior;
      au_regions (H, W) uint32: bit k = pixel shows a surface RIG_AUS[k] moves (> 0.5 mm);
      depth (H, W) float32 cm along the view axis, 0 = background;
      landmarks_2d (478, 2) float32 px; landmarks_3d (478, 3) float32 camera frame cm;
      landmark_visible (478,) bool (hidden by the head itself or by an occluder);
      landmarks68_2d (68, 2); face_box [x0, y0, x1, y1] px;
      occlusion (H, W) bool: an occluder is the visible surface;
      occluder_instance / occluder_class (H, W) uint8 (instance = 1-based index into the
      spec's occluders; class = synth.occluders.OCCLUDER_CLASSES; 0 = none);
      face_occluded (H, W) bool: pixels of the face (face_mask of the occluder-free scene)
      that an occluder hides;
      au_occlusion (len(RIG_AUS),) float32: fraction of each AU's region pixels hidden by
      occluders (NaN where the AU has no region in view).
    """
    table = IdTable.of(geom)
    ids = np.clip(ids, 0, len(table.seg) - 1)
    seg = table.seg[ids]
    face = _face(seg)
    uv, z = geom.camera.project(geom.landmarks_world)
    # occluders never intersect the face, so an occluder at a landmark's pixel is in front of
    # it, however close (a mask fits within the depth tolerance)
    visible = landmark_visibility(uv, z, depth, seg == SEG_CLASSES["occluder"])
    cam = geom.camera.view(geom.landmarks_world)
    lo, hi = uv[list(LM68)].min(0), uv[list(LM68)].max(0)
    return {
        "seg": seg, "face_mask": face, "au_regions": table.regions[ids],
        "depth": depth.astype(np.float32),
        "landmarks_2d": uv.astype(np.float32), "landmarks_3d": cam.astype(np.float32),
        "landmark_visible": visible, "landmarks68_2d": uv[list(LM68)].astype(np.float32),
        "face_box": np.array([lo[0], lo[1], hi[0], hi[1]], np.float32),
        **occlusion_labels(table, ids, seg, ids_clear),
    }


def _face(seg: np.ndarray) -> np.ndarray:
    return np.isin(seg, [SEG_CLASSES["face"], SEG_CLASSES["eyes"], SEG_CLASSES["mouth"]])


def occlusion_labels(table: IdTable, ids: np.ndarray, seg: np.ndarray,
                     ids_clear: np.ndarray | None) -> dict[str, np.ndarray]:
    occlusion = seg == SEG_CLASSES["occluder"]
    n_aus = len(RIG_AUS)
    if ids_clear is None:
        clear_regions = table.regions[ids]
        face_occluded = np.zeros_like(occlusion)
    else:
        ids_clear = np.clip(ids_clear, 0, len(table.seg) - 1)
        clear_regions = table.regions[ids_clear]
        face_occluded = occlusion & _face(table.seg[ids_clear])
    visible_regions = table.regions[ids]
    bits = np.uint32(1) << np.arange(n_aus, dtype=np.uint32)
    total = ((clear_regions[..., None] & bits) > 0).sum(axis=(0, 1))
    kept = ((visible_regions[..., None] & bits) > 0).sum(axis=(0, 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        hidden = np.where(total > 0, 1.0 - kept / np.maximum(total, 1), np.nan)
    return {"occlusion": occlusion, "occluder_instance": table.instance[ids],
            "occluder_class": table.klass[ids], "face_occluded": face_occluded,
            "au_occlusion": hidden.astype(np.float32)}


def landmark_visibility(uv: np.ndarray, z: np.ndarray, depth: np.ndarray,
                        occluder: np.ndarray | None = None) -> np.ndarray:
    """Visible = inside the image, no surface more than the tolerance in front of it, and no
    occluder at its pixel.

    A landmark on the silhouette may fall on a background pixel (depth 0): it is not
    hidden by anything, so it counts as visible.
    """
    h, w = depth.shape
    col = np.floor(uv[:, 0]).astype(int)
    row = np.floor(uv[:, 1]).astype(int)
    inside = (col >= 0) & (col < w) & (row >= 0) & (row < h)
    d = np.zeros(len(uv))
    d[inside] = depth[row[inside], col[inside]]
    hidden = (d > 0) & (d < z - VISIBILITY_TOL_CM)
    if occluder is not None:
        hidden[inside] |= occluder[row[inside], col[inside]]
    return inside & ~hidden
