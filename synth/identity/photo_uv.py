"""The photo-texture layout of photo identities: where each face texel lies on the rig.

A cylinder around the vertical axis behind the face, the same for every identity, so a
texture unwrapped from one photo (:mod:`synth.identity.photo`) maps onto any pose and
expression of the rig (:mod:`synth.identity.photo_scene`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from synth.identity.raster import rasterize

if TYPE_CHECKING:
    from synth.rig import HeadRig

TEXTURE_SIZE = 512         # px: face texture in the rig's UV layout
_LAYOUTS: dict[tuple[int, int], tuple[Any, np.ndarray, np.ndarray, np.ndarray]] = {}
UV_AXIS_Z = -8.0           # cm: axis of the cylindrical texture layout (behind the face)
UV_RADIUS = 9.0            # cm: arc length = UV_RADIUS * angle
UV_SPAN = 18.0             # cm covered by the texture, both directions
UV_CENTER_Y = -0.5         # cm


def photo_uv(vertices: np.ndarray) -> np.ndarray:
    """Texture coordinates (u, v; v up) of the photo-texture layout for *neutral rig* vertices
    (N, 3): a cylinder around the vertical axis behind the face, ``u = 0.5`` on the midline.

    Mirror-symmetric (x -> -x is u -> 1 - u) and, unlike ``HeadRig.face_uv`` (frontal
    coordinates pushed through the subdivision, which folds near the face contour), without
    folds on the fine face mesh. The same layout serves every identity.
    """
    v = np.asarray(vertices, np.float64)
    theta = np.arctan2(v[:, 0], v[:, 2] - UV_AXIS_Z)
    return np.stack([0.5 + UV_RADIUS * theta / UV_SPAN, 0.5 + (v[:, 1] - UV_CENTER_Y) / UV_SPAN], 1)


def texture_layout(rig: "HeadRig", size: int = TEXTURE_SIZE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rig's fine-mesh UVs in the photo layout, and the face-triangle id and barycentrics
    of every texel (cached per rig and size)."""
    key = (id(rig), size)
    hit = _LAYOUTS.get(key)
    if hit is None or hit[0] is not rig:
        uv = photo_uv(rig.neutral)
        ids, bary = rasterize(texel_coords(uv, size), rig.triangles[rig.is_face_tri], (size, size))
        if len(_LAYOUTS) >= 4:
            _LAYOUTS.clear()
        hit = _LAYOUTS[key] = (rig, uv.astype(np.float32), ids, bary)
    return hit[1], hit[2], hit[3]


def texel_coords(uv: np.ndarray, size: int) -> np.ndarray:
    """Texture coordinates (u, v; v up) -> texel pixel coordinates (x right, y down)."""
    return np.stack([uv[:, 0] * size, (1.0 - uv[:, 1]) * size], 1)
