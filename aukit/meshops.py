"""Small numpy/scipy mesh operations used to build the rig's displacement fields."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra
from scipy.sparse.linalg import spsolve


def edges_of(triangles: np.ndarray) -> np.ndarray:
    """Unique undirected edges ``(E, 2)`` of a triangle list ``(T, 3)``."""
    e = np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]])
    e = np.sort(e, axis=1)
    return np.unique(e, axis=0)


def adjacency(vertices: np.ndarray, triangles: np.ndarray) -> sp.csr_matrix:
    """Symmetric sparse matrix of edge lengths (cm) between connected vertices."""
    e = edges_of(triangles)
    length = np.linalg.norm(vertices[e[:, 0]] - vertices[e[:, 1]], axis=1)
    n = len(vertices)
    a = sp.coo_matrix((length, (e[:, 0], e[:, 1])), shape=(n, n))
    return (a + a.T).tocsr()


def laplacian(vertices: np.ndarray, triangles: np.ndarray) -> sp.csr_matrix:
    """Random-walk graph Laplacian ``I - D^-1 W`` with inverse-edge-length weights."""
    adj = adjacency(vertices, triangles)
    w = adj.copy()
    w.data = 1.0 / np.maximum(w.data, 1e-6)
    deg = np.asarray(w.sum(axis=1)).ravel()
    deg[deg == 0] = 1.0
    return (sp.identity(len(vertices)) - sp.diags(1.0 / deg) @ w).tocsr()


def geodesic_from(vertices: np.ndarray, triangles: np.ndarray, sources: np.ndarray) -> np.ndarray:
    """Shortest edge-path distance (cm) from the nearest vertex of ``sources`` to every vertex."""
    if len(sources) == 0:
        return np.full(len(vertices), np.inf)
    d = dijkstra(adjacency(vertices, triangles), directed=False, indices=np.unique(sources))
    return d.min(axis=0)


def smooth_fill(lap: sp.csr_matrix, fixed: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Biharmonic interpolation: values at ``fixed`` vertex ids, smoothest field elsewhere.

    Minimises ``||L x||^2`` over the free vertices; ``values`` is ``(len(fixed), C)``.
    Returns the full ``(V, C)`` field. Vertices unreachable from any constraint get 0.
    """
    n = lap.shape[0]
    values = np.asarray(values, dtype=np.float64).reshape(len(fixed), -1)
    out = np.zeros((n, values.shape[1]))
    out[fixed] = values
    free = np.setdiff1d(np.arange(n), fixed)
    if len(free) == 0:
        return out
    q = (lap.T @ lap).tocsr()
    q_ff = q[free][:, free] + sp.identity(len(free)) * 1e-9
    rhs = -(q[free][:, fixed] @ values)
    sol = spsolve(q_ff.tocsc(), rhs)
    out[free] = np.asarray(sol).reshape(len(free), -1)
    return out


def mirror_map(vertices: np.ndarray, tol: float = 0.6) -> np.ndarray:
    """For each vertex, the index of the vertex nearest its reflection ``x -> -x``."""
    from scipy.spatial import cKDTree

    ref = vertices * np.array([-1.0, 1.0, 1.0])
    dist, idx = cKDTree(vertices).query(ref)
    if np.any(dist > tol):
        raise ValueError(f"mesh is not symmetric within {tol} cm (max {dist.max():.2f})")
    return idx.astype(np.int64)


def similarity_fit(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares ``s, R, t`` with ``dst ~ s * R @ src + t`` (Umeyama, no reflection)."""
    ms, md = src.mean(0), dst.mean(0)
    a, b = src - ms, dst - md
    u, sv, vt = np.linalg.svd(a.T @ b)
    d = np.sign(np.linalg.det(u @ vt))
    corr = np.diag([1.0, 1.0, d])
    rot = (u @ corr @ vt).T
    scale = float((sv * np.diag(corr)).sum() / (a**2).sum())
    return scale, rot, md - scale * rot @ ms


def vertex_normals(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals ``(V, 3)`` (float32)."""
    v = vertices[triangles]
    fn = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
    n = np.zeros_like(vertices, dtype=np.float64)
    for k in range(3):
        np.add.at(n, triangles[:, k], fn)
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    return n.astype(np.float32)
