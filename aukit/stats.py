"""Cluster bootstrap confidence intervals (numpy only; used by ``eval`` and by the
annotator AUC check, :mod:`annotate.auc_ci`, whose clusters are people), and per-column
correlations (:func:`column_pearson`).

Every evaluated row (one edit) belongs to a test *face*; edits of one face are correlated
(same identity, pose, lighting), so the unit of resampling is the face: a bootstrap
replicate draws ``F`` faces with replacement and keeps all their rows. The replicate is
represented by per-face counts ``w`` (``multinomial(F, 1/F)``), which lets ratio
statistics (means over rows) be computed for all replicates at once as
``(w @ per_face_sums) / (w @ per_face_counts)``.

Interval: the percentile interval of the replicates at level ``ci`` (default 95%).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def column_pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(K,) Pearson r of each column of (N, K) ``a`` with the same column of ``b``; NaN where
    either column is constant (e.g. predicted vs exact AUs, one AU per column)."""
    return np.array([float(np.corrcoef(x, y)[0, 1]) if x.std() > 0 and y.std() > 0 else float("nan")
                     for x, y in zip(np.asarray(a).T, np.asarray(b).T)], dtype=np.float64)


def face_weights(n_faces: int, n_boot: int, seed: int | Sequence[int] = 0) -> np.ndarray:
    """(n_boot, n_faces) float64 resampling counts; each row sums to ``n_faces``.
    ``seed``: anything ``numpy.random.default_rng`` takes (an int or a sequence of ints)."""
    if n_faces < 1:
        raise ValueError("need at least one face to bootstrap")
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_faces, np.full(n_faces, 1.0 / n_faces), size=n_boot).astype(np.float64)


def per_face_sums(values: np.ndarray, face: np.ndarray, n_faces: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-face sums and counts of finite ``values`` (rows,) grouped by ``face`` (rows,) ints."""
    values = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(values)
    sums = np.bincount(face[ok], weights=values[ok], minlength=n_faces)
    counts = np.bincount(face[ok], minlength=n_faces).astype(np.float64)
    return sums, counts


def percentile_ci(replicates: np.ndarray, ci: float = 0.95) -> tuple[float, float]:
    """(low, high) percentile interval of finite replicates (NaN, NaN if none)."""
    r = np.asarray(replicates, dtype=np.float64)
    r = r[np.isfinite(r)]
    if r.size == 0:
        return float("nan"), float("nan")
    alpha = (1.0 - ci) / 2.0
    lo, hi = np.quantile(r, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def bootstrap_mean(values: np.ndarray, face: np.ndarray, weights: np.ndarray,
                   ci: float = 0.95) -> dict[str, float]:
    """Mean of the finite ``values`` over rows with its cluster-bootstrap interval.

    ``values`` (rows,), ``face`` (rows,) face index per row, ``weights`` from
    :func:`face_weights`. Returns ``value``, ``ci_low``, ``ci_high``, ``n`` (finite rows),
    ``n_faces`` (faces with a finite row).
    """
    face = np.asarray(face, dtype=np.int64)
    sums, counts = per_face_sums(values, face, weights.shape[1])
    n = counts.sum()
    point = float(sums.sum() / n) if n > 0 else float("nan")
    with np.errstate(invalid="ignore", divide="ignore"):
        reps = (weights @ sums) / (weights @ counts)
    lo, hi = percentile_ci(reps, ci)
    return {"value": point, "ci_low": lo, "ci_high": hi, "n": int(n), "n_faces": int((counts > 0).sum())}


def bootstrap_statistic(stat, face: np.ndarray, weights: np.ndarray, ci: float = 0.95,
                        max_reps: int | None = None) -> dict[str, float]:
    """Any statistic of row weights: ``stat(row_weights (R, rows)) -> (R,)``.

    Row weights are the face counts expanded to rows; row weight 1 everywhere is the point
    estimate. ``max_reps`` caps the replicates (costly statistics such as FD/KID).
    """
    face = np.asarray(face, dtype=np.int64)
    w = weights if max_reps is None else weights[:max_reps]
    point = float(np.asarray(stat(np.ones((1, len(face)))))[0])
    reps = np.concatenate([np.asarray(stat(w[i:i + 32][:, face]), dtype=np.float64)
                           for i in range(0, len(w), 32)])
    lo, hi = percentile_ci(reps, ci)
    return {"value": point, "ci_low": lo, "ci_high": hi, "n": int(len(face)),
            "n_faces": int(len(np.unique(face)))}
