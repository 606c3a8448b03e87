"""A small vectorised numpy triangle rasteriser for 2D maps (texture space, photo space).

Used when a photo identity is built and once when it is loaded; never per rendered frame.
"""

from __future__ import annotations

import numpy as np

_MAX_BLOCK = 48      # triangles with a larger bounding box are done one by one
_BATCH_PIXELS = 1 << 20


def rasterize(xy: np.ndarray, triangles: np.ndarray, shape: tuple[int, int],
              depth: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Triangle id and barycentric coordinates of every pixel centre.

    ``xy``: (V, 2) vertex positions in pixels (x right, y down; pixel (i, j) has its centre
    at (j + 0.5, i + 0.5)). ``depth``: optional (V,) values; where triangles overlap the
    one with the *largest* interpolated depth wins (image frame: larger = nearer), else
    the one with the larger index.
    Returns ``ids`` (H, W) int32 (-1 = no triangle) and ``bary`` (H, W, 3) float32.
    """
    h, w = shape
    xy = np.asarray(xy, dtype=np.float64)
    tris = np.asarray(triangles, dtype=np.int64)
    p = xy[tris]                                                   # (T, 3, 2)
    lo = np.floor(p.min(1) - 0.5).astype(np.int64)
    hi = np.ceil(p.max(1) - 0.5).astype(np.int64)
    lo = np.maximum(lo, 0)
    hi = np.minimum(hi, [w - 1, h - 1])
    ext = hi - lo + 1
    det = ((p[:, 1, 1] - p[:, 2, 1]) * (p[:, 0, 0] - p[:, 2, 0])
           + (p[:, 2, 0] - p[:, 1, 0]) * (p[:, 0, 1] - p[:, 2, 1]))
    ok = (ext > 0).all(1) & (np.abs(det) > 1e-12)
    cand_t, cand_pix, cand_b = [], [], []
    block = int(min(_MAX_BLOCK, max(4, np.percentile(ext[ok].max(1), 99) if ok.any() else 4)))
    small = ok & (ext <= block).all(1)
    for group, block in ((np.flatnonzero(small), block), (np.flatnonzero(ok & ~small), None)):
        if len(group) == 0:
            continue
        if block is None:   # large triangles, one by one
            for t in group:
                r = _candidates(p[t:t + 1], det[t:t + 1], lo[t:t + 1], ext[t:t + 1],
                                int(ext[t].max()), w)
                cand_t.append(np.full(len(r[0]), t)), cand_pix.append(r[0]), cand_b.append(r[1])
        else:
            step = max(1, _BATCH_PIXELS // (block * block))
            for start in range(0, len(group), step):
                g = group[start:start + step]
                pix, bary, which = _candidates(p[g], det[g], lo[g], ext[g], block, w, return_which=True)
                cand_t.append(g[which]), cand_pix.append(pix), cand_b.append(bary)
    ids = np.full(h * w, -1, np.int32)
    out_b = np.zeros((h * w, 3), np.float32)
    if cand_t:
        t_all = np.concatenate(cand_t)
        pix = np.concatenate(cand_pix)
        b_all = np.concatenate(cand_b)
        if depth is not None:
            z = (b_all * np.asarray(depth, np.float64)[tris[t_all]]).sum(1)
            order = np.lexsort((z, pix))                         # by pixel, then depth ascending
        else:
            order = np.lexsort((t_all, pix))
        pix, t_all, b_all = pix[order], t_all[order], b_all[order]
        last = np.r_[pix[1:] != pix[:-1], True]                  # the last entry per pixel wins
        ids[pix[last]] = t_all[last]
        out_b[pix[last]] = b_all[last]
    return ids.reshape(h, w), out_b.reshape(h, w, 3)


def _candidates(p, det, lo, ext, block, w, return_which=False):
    """Pixels inside each triangle of the batch: flat pixel index, barycentrics (and which)."""
    oy, ox = np.mgrid[0:block, 0:block]
    px = lo[:, 0, None, None] + ox                                 # (T, B, B)
    py = lo[:, 1, None, None] + oy
    valid = (ox < ext[:, 0, None, None]) & (oy < ext[:, 1, None, None])
    xs, ys = px + 0.5, py + 0.5
    a, b, c = p[:, 0], p[:, 1], p[:, 2]
    d = det[:, None, None]
    l1 = ((b[:, 1, None, None] - c[:, 1, None, None]) * (xs - c[:, 0, None, None])
          + (c[:, 0, None, None] - b[:, 0, None, None]) * (ys - c[:, 1, None, None])) / d
    l2 = ((c[:, 1, None, None] - a[:, 1, None, None]) * (xs - c[:, 0, None, None])
          + (a[:, 0, None, None] - c[:, 0, None, None]) * (ys - c[:, 1, None, None])) / d
    l3 = 1.0 - l1 - l2
    inside = valid & (l1 >= -1e-9) & (l2 >= -1e-9) & (l3 >= -1e-9)
    which, iy, ix = np.nonzero(inside)
    pix = py[which, iy, ix] * w + px[which, iy, ix]
    bary = np.stack([l1[which, iy, ix], l2[which, iy, ix], l3[which, iy, ix]], 1)
    return (pix, bary, which) if return_which else (pix, bary)


def interpolate(ids: np.ndarray, bary: np.ndarray, triangles: np.ndarray, values: np.ndarray,
                fill: float = 0.0) -> np.ndarray:
    """Per-pixel barycentric interpolation of per-vertex ``values`` (V,) or (V, C)."""
    values = np.asarray(values, dtype=np.float64)
    squeeze = values.ndim == 1
    vals = values[:, None] if squeeze else values
    out = np.full(ids.shape + (vals.shape[1],), fill, dtype=np.float64)
    m = ids >= 0
    tri = np.asarray(triangles)[ids[m]]                       # (N, 3)
    out[m] = np.einsum("nk,nkc->nc", bary[m].astype(np.float64), vals[tri])
    return out[..., 0] if squeeze else out


def depth_visible(xy: np.ndarray, depth: np.ndarray, triangles: np.ndarray, shape: tuple[int, int],
                  tolerance: float) -> np.ndarray:
    """(V,) bool: vertex not hidden by a surface more than ``tolerance`` nearer (z-buffer)."""
    ids, bary = rasterize(xy, triangles, shape, depth)
    zmap = interpolate(ids, bary, triangles, depth, fill=-np.inf)
    h, w = shape
    col = np.clip(np.floor(xy[:, 0]).astype(int), 0, w - 1)
    row = np.clip(np.floor(xy[:, 1]).astype(int), 0, h - 1)
    return depth >= zmap[row, col] - tolerance
