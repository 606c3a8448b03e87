"""Procedural face texture painting in the rig's UV space.

UV space is the canonical face's frontal projection: ``u = (x + 8.5) / 17``,
``v = (y + 10) / 19`` (x, y in cm). Image row 0 is the top of the face (v = 1), as
OpenGL samples textures with v = 1 - row / H.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from aukit import landmarks as lmk

UV_ORIGIN = np.array([-8.5, -10.0])
UV_SIZE = np.array([17.0, 19.0])


@dataclass(frozen=True)
class SkinLook:
    """Colours (linear RGB in [0, 1]) and amounts that drive the painting."""

    skin: np.ndarray
    lips: np.ndarray
    brows: np.ndarray
    hair: np.ndarray
    brow_thickness: float      # cm at the thickest point
    hairline_y: float          # cm; face above this is hair (> 9 means bald forehead)
    beard: float               # 0 none, ~0.4 stubble, 1 full beard
    blush: float               # 0..1 redness of cheeks and nose
    freckles: float            # 0..1


def grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Canonical (x, y) in cm of every texel centre, each ``(size, size)``."""
    c = (np.arange(size) + 0.5) / size
    x = UV_ORIGIN[0] + c * UV_SIZE[0]
    y = UV_ORIGIN[1] + (1.0 - c) * UV_SIZE[1]
    return np.meshgrid(x, y)


def noise(rng: np.random.Generator, size: int, cells: int, octaves: int = 3) -> np.ndarray:
    """Smooth value noise in about [-1, 1], ``(size, size)`` float32: random grids of
    ``cells``, ``2 cells``, ... resized bicubically and summed with halving amplitude."""
    out = np.zeros((size, size), np.float32)
    amp = 1.0
    for o in range(octaves):
        n = cells * 2 ** o + 1
        g = Image.fromarray(rng.uniform(-1, 1, (n, n)).astype(np.float32), mode="F")
        out += amp * np.asarray(g.resize((size, size), Image.Resampling.BICUBIC))
        amp *= 0.5
    return out / (2 - 2 ** (1 - octaves))


def polyline_distance(x: np.ndarray, y: np.ndarray, pts: np.ndarray,
                      margin: float = 1.2) -> tuple[np.ndarray, np.ndarray]:
    """Distance (cm) from each texel to a polyline, and the arc parameter (0..1) of the
    nearest point. Only texels within ``margin`` cm of the polyline's bounding box are
    computed (the rest get ``inf``), which keeps painting fast."""
    best = np.full(x.shape, np.inf)
    param = np.zeros(x.shape)
    lo, hi = pts.min(0) - margin, pts.max(0) + margin
    cols = np.flatnonzero((x[0] >= lo[0]) & (x[0] <= hi[0]))
    rows = np.flatnonzero((y[:, 0] >= lo[1]) & (y[:, 0] <= hi[1]))
    if len(cols) == 0 or len(rows) == 0:
        return best, param
    win = np.s_[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    xw, yw = x[win], y[win]
    bw, pw = best[win], param[win]
    seg_len = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    cum = np.concatenate([[0], np.cumsum(seg_len)]) / max(seg_len.sum(), 1e-12)
    for i in range(len(pts) - 1):
        a, ab = pts[i], pts[i + 1] - pts[i]
        if ab @ ab < 1e-12:
            continue
        t = np.clip(((xw - a[0]) * ab[0] + (yw - a[1]) * ab[1]) / (ab @ ab), 0, 1)
        d = np.hypot(xw - (a[0] + t * ab[0]), yw - (a[1] + t * ab[1]))
        closer = d < bw
        bw[closer] = d[closer]
        pw[closer] = (cum[i] + t * (cum[i + 1] - cum[i]))[closer]
    return best, param


def inside_polygon(x: np.ndarray, y: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Even-odd point-in-polygon test on a texel grid."""
    inside = np.zeros(x.shape, bool)
    n = len(poly)
    for i in range(n):
        (x1, y1), (x2, y2) = poly[i], poly[(i + 1) % n]
        cond = (y1 > y) != (y2 > y)
        xi = (x2 - x1) * (y - y1) / np.where(y2 == y1, 1e-9, y2 - y1) + x1
        inside ^= cond & (x < xi)
    return inside


def _soft(d: np.ndarray, width: float) -> np.ndarray:
    return np.clip(1.0 - d / width, 0.0, 1.0) ** 1.5


def paint_face(neutral: np.ndarray, look: SkinLook, rng: np.random.Generator, size: int = 256) -> np.ndarray:
    """The face texture, uint8 ``(size, size, 3)`` sRGB, painted from canonical landmarks."""
    x, y = grid(size)
    v2 = neutral[:, :2]
    col = np.broadcast_to(look.skin.astype(np.float32), (size, size, 3)).copy()
    col *= (1 + 0.06 * noise(rng, size, 4))[..., None]
    cheeks = sum(np.exp(-((x - cx) ** 2 + (y + 1.0) ** 2) / 3.0) for cx in (-4.2, 4.2))
    nose = np.exp(-(x ** 2 + (y + 0.3) ** 2) / 1.5)
    red = np.array([1.0, 0.55, 0.5])
    col = _mix(col, col * red, np.clip(look.blush * (0.35 * cheeks + 0.25 * nose), 0, 1))
    if look.freckles > 0:
        spots = (noise(rng, size, 40, 1) > 0.55) & (np.abs(y + 0.5) < 2.5)
        col = _mix(col, col * 0.8, look.freckles * spots * 0.6)
    col = _paint_beard(col, x, y, look, rng, size)
    col = _paint_lips(col, x, y, v2, look)
    col = _paint_nostrils(col, x, y)
    col = _paint_brows(col, x, y, v2, look, rng, size)
    col = _paint_lids(col, x, y, v2)
    col = _paint_hairline(col, x, y, look, rng, size)
    return to_srgb8(col)


def _mix(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    t = np.asarray(t)[..., None] if np.ndim(t) == 2 else t
    return a * (1 - t) + b * t


def _paint_lips(col, x, y, v2, look):
    poly = np.concatenate([v2[list(lmk.OUTER_UPPER_LIP)], v2[list(lmk.OUTER_LOWER_LIP)][::-1]])
    inside = inside_polygon(x, y, poly).astype(float)
    edge, _ = polyline_distance(x, y, np.concatenate([poly, poly[:1]]))
    t = np.where(inside > 0, 0.85, 0.0) + np.where(inside > 0, 0.15, 0.35) * _soft(edge, 0.12)
    return _mix(col, look.lips, np.clip(t, 0, 1))


def _paint_nostrils(col, x, y):
    d = sum(np.exp(-(((x - sx) / 0.32) ** 2 + ((y + 1.32) / 0.16) ** 2)) for sx in (-0.72, 0.72))
    return _mix(col, col * 0.25, np.clip(d, 0, 0.9))


def _paint_brows(col, x, y, v2, look, rng, size):
    strands = 0.75 + 0.25 * noise(rng, size, 64, 1)
    for upper, lower in ((lmk.R_BROW_UPPER, lmk.R_BROW_LOWER), (lmk.L_BROW_UPPER, lmk.L_BROW_LOWER)):
        mid = 0.5 * (v2[list(upper)] + v2[list(lower)])
        d, s = polyline_distance(x, y, mid)
        inner = s if mid[-1, 0] ** 2 < mid[0, 0] ** 2 else 1 - s  # 1 at the inner end
        half = look.brow_thickness * (0.35 + 0.5 * inner) / 2
        a = np.clip(1.0 - (d - half) / 0.12, 0, 1) * strands
        col = _mix(col, look.brows, np.clip(a, 0, 0.95))
    return col


def _paint_lids(col, x, y, v2):
    """Dark lash line on the upper lids, a fainter one on the lower lids, lid shadow."""
    for up, lo in ((lmk.R_UPPER_LID, lmk.R_LOWER_LID), (lmk.L_UPPER_LID, lmk.L_LOWER_LID)):
        d_up, _ = polyline_distance(x, y, v2[list(up)])
        d_lo, _ = polyline_distance(x, y, v2[list(lo)])
        col = _mix(col, col * 0.15, 0.9 * _soft(d_up, 0.11))
        col = _mix(col, col * 0.5, 0.5 * _soft(d_lo, 0.07))
        col = _mix(col, col * 0.8, 0.4 * _soft(d_up, 0.45))
    return col


def _paint_beard(col, x, y, look, rng, size):
    if look.beard <= 0.05:
        return col
    # below a line sloping from under the nose (y -1.3) to the jaw angle (y -4 at |x| 6.5)
    cheek_line = -1.3 - 0.42 * np.abs(x)
    region = np.clip((cheek_line - y) / 0.8, 0, 1) * np.clip((6.8 - np.abs(x)) / 0.8, 0, 1)
    region *= 1 - np.exp(-((x / 2.3) ** 2 + ((y + 4.2) / 0.75) ** 2) * 3)  # not on the lips
    grain = 0.75 + 0.25 * noise(rng, size, 96, 1)
    return _mix(col, look.hair * 0.8, np.clip(look.beard * region * grain, 0, 0.92))


def _paint_hairline(col, x, y, look, rng, size):
    edge = look.hairline_y - 0.25 * np.cos(x / 3.0) + 0.3 * noise(rng, size, 12, 2)
    a = np.clip((y - edge) / 0.35, 0, 1)
    return _mix(col, look.hair * (0.85 + 0.15 * noise(rng, size, 60, 1))[..., None], a)


def to_srgb8(linear: np.ndarray) -> np.ndarray:
    """Linear RGB in [0, 1] -> uint8 sRGB."""
    c = np.clip(linear, 0, 1)
    s = np.where(c <= 0.0031308, 12.92 * c, 1.055 * c ** (1 / 2.4) - 0.055)
    return np.round(s * 255).astype(np.uint8)


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    c = np.asarray(c, dtype=np.float64)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
