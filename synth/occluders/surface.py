"""Exact point-to-surface signed distance (no extra dependencies), for occluder placement
and for tests that check occluders never enter the face."""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree


def signed_distance(points: np.ndarray, verts: np.ndarray, tris: np.ndarray, k: int = 12,
                    tree: cKDTree | None = None, chunk: int = 1024) -> np.ndarray:
    """Signed distance (cm) from each point to the closest point of the triangle surface,
    positive on the side the face normal points to; points > 3 cm away return +inf.

    Candidates per point: every triangle touching one of its ``k`` nearest vertices; all
    point-triangle pairs are evaluated at once (``chunk`` points at a time)."""
    points = np.asarray(points, np.float64)
    tree = tree or cKDTree(verts)
    out = np.full(len(points), np.inf)
    if len(points) == 0 or len(tris) == 0:
        return out
    inc = _incidence(len(verts), tris)
    dist, nearest = tree.query(points, k=k)
    near = np.flatnonzero(dist[:, 0] <= 3.0)
    for lo in range(0, len(near), chunk):
        idx = near[lo:lo + chunk]
        cand = inc[nearest[idx]].reshape(len(idx), -1)
        # ascending triangle ids, padding (-1 -> len(tris)) last: ties resolve to the lowest id
        cand = np.sort(np.where(cand < 0, len(tris), cand), axis=1)
        valid = cand < len(tris)
        safe = np.where(valid, cand, 0)
        a, b, c = (verts[tris[safe, j]] for j in range(3))               # (P, C, 3)
        p = np.broadcast_to(points[idx, None, :], a.shape)
        q = _closest_on_triangles(p.reshape(-1, 3), a.reshape(-1, 3), b.reshape(-1, 3),
                                  c.reshape(-1, 3)).reshape(a.shape)
        d = np.where(valid, np.linalg.norm(q - p, axis=2), np.inf)
        j = np.argmin(d, axis=1)
        rows = np.arange(len(idx))
        n = np.cross(b[rows, j] - a[rows, j], c[rows, j] - a[rows, j])
        sign = np.sign(np.einsum("ij,ij->i", points[idx] - q[rows, j], n))
        out[idx] = np.where(np.isfinite(d[rows, j]), d[rows, j] * sign, np.inf)
    return out


def _incidence(n_verts: int, tris: np.ndarray) -> np.ndarray:
    """(n_verts, max degree) int64: the triangles touching each vertex, -1 padded."""
    tris = np.asarray(tris, np.int64)
    v_idx = tris.ravel()
    t_idx = np.repeat(np.arange(len(tris)), 3)
    order = np.lexsort((t_idx, v_idx))
    v_sorted, t_sorted = v_idx[order], t_idx[order]
    counts = np.bincount(v_idx, minlength=n_verts)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    inc = -np.ones((n_verts, max(int(counts.max()), 1)), np.int64)
    inc[v_sorted, np.arange(len(v_sorted)) - starts[v_sorted]] = t_sorted
    return inc


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
