"""Loop subdivision as a sparse linear operator.

Loop subdivision is linear in vertex positions, so one sparse matrix ``S`` maps coarse
vertices to fine ones: ``fine = S @ coarse``. Pushing the neutral mesh *and* every AU
field through the same ``S`` keeps deformation and subdivision consistent (subdividing the
deformed mesh equals deforming the subdivided one) at the cost of one sparse product.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class Subdivision:
    """``matrix``: (V_fine, V_coarse) CSR; ``triangles``: (4T, 3) fine triangles.

    Fine vertices ``0..V_coarse-1`` are the (moved) coarse vertices, in order; the rest
    are edge points, so coarse vertex ids stay valid landmark ids after subdivision.
    """

    matrix: sp.csr_matrix
    triangles: np.ndarray


def loop_subdivision(triangles: np.ndarray, n_vertices: int, iterations: int = 1) -> Subdivision:
    """Compose ``iterations`` Loop steps on a mesh with boundaries (holes allowed)."""
    mat = sp.identity(n_vertices, format="csr")
    tris = np.asarray(triangles, dtype=np.int64)
    n = n_vertices
    for _ in range(iterations):
        step, tris = _loop_step(tris, n)
        mat = (step @ mat).tocsr()
        n = step.shape[0]
    return Subdivision(mat, tris)


def _loop_step(tris: np.ndarray, n: int) -> tuple[sp.csr_matrix, np.ndarray]:
    half = np.concatenate([tris[:, [0, 1]], tris[:, [1, 2]], tris[:, [2, 0]]])
    opposite = np.concatenate([tris[:, 2], tris[:, 0], tris[:, 1]])
    key = np.sort(half, axis=1)
    edges, inverse, counts = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.ravel()
    boundary_edge = counts == 1
    rows, cols, vals = [], [], []

    def add(r, c, v):
        rows.append(np.asarray(r)), cols.append(np.asarray(c)), vals.append(np.asarray(v, float))

    # odd (edge) points
    e_ids = n + np.arange(len(edges))
    w_end = np.where(boundary_edge, 0.5, 0.375)
    add(e_ids, edges[:, 0], w_end)
    add(e_ids, edges[:, 1], w_end)
    interior_half = ~boundary_edge[inverse]
    add(n + inverse[interior_half], opposite[interior_half], np.full(interior_half.sum(), 0.125))
    # even (original) points
    nbrs = [set() for _ in range(n)]
    bnbrs = [set() for _ in range(n)]
    for (a, b), is_b in zip(edges.tolist(), boundary_edge.tolist()):
        nbrs[a].add(b), nbrs[b].add(a)
        if is_b:
            bnbrs[a].add(b), bnbrs[b].add(a)
    for v in range(n):
        if bnbrs[v]:
            b = sorted(bnbrs[v])[:2]
            add([v], [v], [0.75])
            add([v] * len(b), b, [0.125 * 2 / len(b)] * len(b))
        elif nbrs[v]:
            k = len(nbrs[v])
            beta = 3.0 / 16.0 if k == 3 else 3.0 / (8.0 * k)
            add([v], [v], [1 - k * beta])
            add([v] * k, sorted(nbrs[v]), [beta] * k)
        else:
            add([v], [v], [1.0])
    m = sp.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                      shape=(n + len(edges), n)).tocsr()
    t = len(tris)
    mid = n + inverse.reshape(3, t).T          # midpoints of edges (01, 12, 20) per triangle
    a, b, c = tris.T
    m01, m12, m20 = mid.T
    new = np.concatenate([np.stack([a, m01, m20], 1), np.stack([m01, b, m12], 1),
                          np.stack([m20, m12, c], 1), np.stack([m01, m12, m20], 1)])
    return m, new
