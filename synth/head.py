"""Geometry around the face mask: a lofted skull closing the face, so a face is a head.

The MediaPipe mesh stops at the face oval. The loft sweeps each oval vertex backwards over
an ellipsoidal skull to a pole behind the head. Loft vertices follow their oval vertex's
displacement (AU, identity shape) with a decay along the sweep, so the joint is seamless
and the whole head subdivides as one mesh.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from aukit import landmarks as lmk

SKULL_CENTER = np.array([0.0, 3.0, -4.5])     # cm, canonical frame
SKULL_RADII = np.array([7.7, 11.0, 9.6])       # x, y, z semi-axes (cm)
LOFT_T = (0.04, 0.09, 0.15, 0.22, 0.30, 0.40, 0.50, 0.62, 0.75, 0.88)
DECAY_T = 0.3                                  # oval motion fades out over this much sweep


@dataclass(frozen=True)
class Loft:
    """Loft vertices appended after the 478 face vertices.

    ``vertices``: (L, 3) neutral positions; ``triangles``: (T, 3) in combined indexing;
    ``extend``: (478 + L, 478) sparse map from face-vertex fields to combined fields;
    ``direction``: (L, 3) unit directions from the skull centre (for hair), ``t``: (L,)
    sweep parameter in [0, 1] (0 = at the face oval).
    """

    vertices: np.ndarray
    triangles: np.ndarray
    extend: sp.csr_matrix
    direction: np.ndarray
    t: np.ndarray


def _slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    omega = np.arccos(np.clip(a @ b, -1.0, 1.0))
    if omega < 1e-6:
        return a
    return (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)


def _ellipsoid_radius(d: np.ndarray) -> float:
    return float(1.0 / np.sqrt(np.sum((d / SKULL_RADII) ** 2)))


def build_loft(neutral: np.ndarray) -> Loft:
    """Sweep the face oval of ``neutral`` (478, 3) back to a pole behind the head."""
    oval = np.array(lmk.FACE_OVAL)
    n, k = len(oval), len(LOFT_T)
    back = np.array([0.0, 0.0, -1.0])
    verts, dirs, ts, rows, cols, vals = [], [], [], [], [], []
    for i, vid in enumerate(oval):
        rel = neutral[vid] - SKULL_CENTER
        r0, u = np.linalg.norm(rel), rel / np.linalg.norm(rel)
        for j, t in enumerate(LOFT_T):
            d = _slerp(u, back, t)
            s = min(1.0, t / 0.3)
            s = s * s * (3 - 2 * s)
            r = (1 - s) * r0 + s * _ellipsoid_radius(d)
            verts.append(SKULL_CENTER + r * d)
            dirs.append(d), ts.append(t)
            decay = max(0.0, 1.0 - t / DECAY_T) ** 2
            if decay > 0:
                rows.append(478 + i * k + j), cols.append(vid), vals.append(decay)
    pole = SKULL_CENTER + back * SKULL_RADII[2]
    verts.append(pole), dirs.append(back), ts.append(1.0)
    tris = []
    base = 478
    for i in range(n):
        i2 = (i + 1) % n
        a, b = oval[i], oval[i2]
        c, d = base + i * k, base + i2 * k
        tris += [[a, c, b], [b, c, d]]
        for j in range(k - 1):
            p, q = base + i * k + j, base + i2 * k + j
            tris += [[p, p + 1, q], [q, p + 1, q + 1]]
        tris.append([base + i * k + k - 1, base + n * k, base + i2 * k + k - 1])
    tris = orient_outward(np.array(tris), np.concatenate([neutral, np.array(verts)]))
    n_all = 478 + len(verts)
    ext = sp.coo_matrix((vals, (rows, cols)), shape=(n_all, 478)).tocsr()
    ext = (ext + sp.eye(n_all, 478, format="csr")).tocsr()
    return Loft(np.array(verts), tris, ext, np.array(dirs), np.array(ts))


def orient_outward(tris: np.ndarray, verts: np.ndarray, per_triangle: bool = True) -> np.ndarray:
    """Wind triangles so normals point away from the skull centre.

    ``per_triangle=False`` keeps a consistently wound mesh (the MediaPipe face) intact and
    only flips it as a whole if most triangles face inwards: the lips' inner surfaces face
    the centre legitimately and must not be flipped one by one.
    """
    v = verts[tris]
    normal = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
    inward = np.einsum("ij,ij->i", normal, v.mean(1) - SKULL_CENTER) < 0
    if not per_triangle:
        inward[:] = inward.mean() > 0.5
    out = tris.copy()
    out[inward] = out[inward][:, [0, 2, 1]]
    return out
