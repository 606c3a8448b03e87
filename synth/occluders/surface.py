"""Exact point-to-surface signed distance (no extra dependencies), for occluder placement
and for tests that check occluders never enter the face."""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree


def signed_distance(points: np.ndarray, verts: np.ndarray, tris: np.ndarray, k: int = 12,
                    tree: cKDTree | None = None) -> np.ndarray:
    """Signed distance (cm) from each point to the closest point of the triangle surface,
    positive on the side the face normal points to; points > 3 cm away return +inf."""
    tree = tree or cKDTree(verts)
    vert_tris: list[list[int]] = [[] for _ in range(len(verts))]
    for t, tri in enumerate(tris.tolist()):
        for v in tri:
            vert_tris[v].append(t)
    out = np.full(len(points), np.inf)
    dist, nearest = tree.query(points, k=k)
    for i, p in enumerate(points):
        if dist[i, 0] > 3.0:
            continue
        cand = np.unique([t for v in nearest[i] for t in vert_tris[v]])
        if len(cand) == 0:
            continue
        a, b, c = (verts[tris[cand, j]] for j in range(3))
        q = _closest_on_triangles(p, a, b, c)
        d = np.linalg.norm(q - p, axis=1)
        j = int(np.argmin(d))
        n = np.cross(b[j] - a[j], c[j] - a[j])
        out[i] = d[j] * np.sign((p - q[j]) @ n)
    return out


def _closest_on_triangles(p, a, b, c):
    """Closest points to ``p`` on triangles (a, b, c) (Ericson, Real-Time Collision Detection)."""
    ab, ac, ap = b - a, c - a, p - a
    d1, d2 = np.einsum("ij,ij->i", ab, ap), np.einsum("ij,ij->i", ac, ap)
    bp, cp = p - b, p - c
    d3, d4 = np.einsum("ij,ij->i", ab, bp), np.einsum("ij,ij->i", ac, bp)
    d5, d6 = np.einsum("ij,ij->i", ab, cp), np.einsum("ij,ij->i", ac, cp)
    va, vb, vc = d3 * d6 - d5 * d4, d5 * d2 - d1 * d6, d1 * d4 - d3 * d2
    denom = np.where(va + vb + vc == 0, 1e-12, va + vb + vc)
    v, w = vb / denom, vc / denom
    out = a + ab * v[:, None] + ac * w[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        rules = [
            ((d1 <= 0) & (d2 <= 0), a),
            ((d3 >= 0) & (d4 <= d3), b),
            ((d6 >= 0) & (d5 <= d6), c),
            ((vc <= 0) & (d1 >= 0) & (d3 <= 0), a + ab * (d1 / (d1 - d3))[:, None]),
            ((vb <= 0) & (d2 >= 0) & (d6 <= 0), a + ac * (d2 / (d2 - d6))[:, None]),
            ((va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0),
             b + (c - b) * ((d4 - d3) / ((d4 - d3) + (d5 - d6)))[:, None]),
        ]
    done = np.zeros(len(a), bool)
    for cond, val in rules:
        sel = cond & ~done
        out[sel] = val[sel]
        done |= cond
    return out
