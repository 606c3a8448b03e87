"""Primitive meshes for occluders. Each returns ``(vertices (N, 3), triangles (T, 3))``,
counter-clockwise seen from outside, in centimetres."""

from __future__ import annotations

import numpy as np


def _grid_tris(rows: int, cols: int, wrap: bool) -> np.ndarray:
    """Triangles of a (rows x cols) vertex grid, optionally wrapped around in ``cols``."""
    tris = []
    c_end = cols if wrap else cols - 1
    for r in range(rows - 1):
        for c in range(c_end):
            c2 = (c + 1) % cols
            a, b, d, e = r * cols + c, r * cols + c2, (r + 1) * cols + c, (r + 1) * cols + c2
            tris += [[a, d, b], [b, d, e]]
    return np.array(tris, dtype=np.int64)


def tube(path: np.ndarray, radius, segments: int = 10, caps: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """A tube of (per-point) ``radius`` along a polyline ``path`` (P, 3), with end caps."""
    path = np.asarray(path, float)
    radius = np.broadcast_to(np.asarray(radius, float), (len(path),))
    tangents = np.gradient(path, axis=0)
    tangents /= np.maximum(np.linalg.norm(tangents, axis=1, keepdims=True), 1e-9)
    ref = np.array([0.0, 0.0, 1.0]) if abs(tangents[0, 2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    verts, axis_pts = [], []
    for p, t, r in zip(path, tangents, radius):
        u = np.cross(t, ref)
        u /= max(np.linalg.norm(u), 1e-9)
        w = np.cross(t, u)
        ang = np.linspace(0, 2 * np.pi, segments, endpoint=False)
        verts.append(p + r * (np.cos(ang)[:, None] * u + np.sin(ang)[:, None] * w))
        axis_pts.append(np.repeat(p[None], segments, 0))
    verts, axis_pts = np.concatenate(verts), np.concatenate(axis_pts)
    tris = _grid_tris(len(path), segments, wrap=True)
    if caps:
        n = len(verts)
        verts = np.concatenate([verts, path[[0, -1]]])
        last = (len(path) - 1) * segments
        cap = [[n, (k + 1) % segments, k] for k in range(segments)]
        cap += [[n + 1, last + k, last + (k + 1) % segments] for k in range(segments)]
        tris = np.concatenate([tris, np.array(cap)])
        axis_pts = np.concatenate([axis_pts, path[[0, -1]] - tangents[[0, -1]] * [[1], [-1]]])
    return verts, _orient_away(verts, tris, axis_pts)


def ellipsoid(center, radii, rings: int = 8, segments: int = 12) -> tuple[np.ndarray, np.ndarray]:
    th = np.linspace(0, np.pi, rings + 1)[1:-1]
    ph = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    ring = np.stack([np.outer(np.sin(th), np.cos(ph)), np.outer(np.sin(th), np.sin(ph)),
                     np.outer(np.cos(th), np.ones_like(ph))], -1).reshape(-1, 3)
    verts = np.concatenate([[[0, 0, 1]], ring, [[0, 0, -1]]]) * np.asarray(radii) + np.asarray(center)
    body = _grid_tris(rings - 1, segments, wrap=True) + 1
    top = [[0, 1 + k, 1 + (k + 1) % segments] for k in range(segments)]
    last, end = 1 + (rings - 2) * segments, len(verts) - 1
    bottom = [[last + k, end, last + (k + 1) % segments] for k in range(segments)]
    tris = np.concatenate([np.array(top), body, np.array(bottom)])
    return verts, _outward(verts, tris)


def box(center, size, rotation: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(size) / 2
    corners = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)]) * s
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    tris = np.array([t for a, b, c, d in quads for t in ([a, b, c], [a, c, d])])
    if rotation is not None:
        corners = corners @ rotation.T
    verts = corners + np.asarray(center)
    return verts, _outward(verts, tris)


def cylinder(center, radius: float, height: float, segments: int = 16, axis: int = 1,
             open_top: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Upright (along ``axis``) cylinder; ``open_top`` leaves a hole (cups)."""
    ang = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    circle = np.stack([radius * np.cos(ang), radius * np.sin(ang)], 1)
    verts = []
    for h in (-height / 2, height / 2):
        v = np.zeros((segments, 3))
        others = [i for i in range(3) if i != axis]
        v[:, others[0]], v[:, others[1]], v[:, axis] = circle[:, 0], circle[:, 1], h
        verts.append(v)
    verts = np.concatenate(verts)
    tris = list(_grid_tris(2, segments, wrap=True))
    verts = np.concatenate([verts, [np.eye(3)[axis] * -height / 2]])
    tris += [[2 * segments, (k + 1) % segments, k] for k in range(segments)]
    if not open_top:
        verts = np.concatenate([verts, [np.eye(3)[axis] * height / 2]])
        tris += [[2 * segments + 1, segments + k, segments + (k + 1) % segments] for k in range(segments)]
    verts = verts + np.asarray(center)
    tris = np.array(tris, dtype=np.int64)
    return verts, (_outward(verts, tris) if not open_top else tris)


def torus_path(center, radius: float, ellipse=(1.0, 1.0), points: int = 24) -> np.ndarray:
    """Closed elliptical path in the xy plane (for glasses rims), (points + 1, 3)."""
    a = np.linspace(0, 2 * np.pi, points + 1)
    return np.stack([radius * ellipse[0] * np.cos(a), radius * ellipse[1] * np.sin(a), 0 * a], 1) + center


def disc(points: np.ndarray, center: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A fan filling a closed rim (lenses): ``points`` (P, 3) around ``center``."""
    verts = np.concatenate([[center], points])
    n = len(points)
    tris = np.array([[0, 1 + k, 1 + (k + 1) % n] for k in range(n)])
    return verts, tris


def merge(*meshes: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    verts, tris, base = [], [], 0
    for v, t in meshes:
        verts.append(v)
        tris.append(t + base)
        base += len(v)
    return np.concatenate(verts), np.concatenate(tris)


def normals(v: np.ndarray, t: np.ndarray) -> np.ndarray:
    fn = np.cross(v[t[:, 1]] - v[t[:, 0]], v[t[:, 2]] - v[t[:, 0]])
    n = np.zeros_like(v, dtype=np.float64)
    for k in range(3):
        np.add.at(n, t[:, k], fn)
    return (n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def _orient_away(verts: np.ndarray, tris: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """Flip triangles whose normal points towards their vertices' inner reference points."""
    p = verts[tris]
    fn = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    inward = np.einsum("ij,ij->i", fn, p.mean(1) - inner[tris].mean(1)) < 0
    out = tris.copy()
    out[inward] = out[inward][:, [0, 2, 1]]
    return out


def _outward(verts: np.ndarray, tris: np.ndarray) -> np.ndarray:
    """Flip triangles facing the centroid (all these primitives are star-shaped)."""
    c = verts.mean(0)
    p = verts[tris]
    fn = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    inward = np.einsum("ij,ij->i", fn, p.mean(1) - c) < 0
    out = tris.copy()
    out[inward] = out[inward][:, [0, 2, 1]]
    return out
