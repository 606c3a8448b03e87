"""Frechet distance and KID on constructed features."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import linalg

from eval.judges.realism import (frechet_distance, kid, kid_weighted, mmd2_unbiased, poly_kernel,
                                 weighted_moments)


def fd_reference(a: np.ndarray, b: np.ndarray) -> float:
    """The textbook formula with scipy's sqrtm (what pytorch-fid does)."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def test_fd_of_identical_sets_is_zero():
    x = np.random.default_rng(0).normal(size=(500, 16))
    assert abs(frechet_distance(x, x)) < 1e-8


def test_fd_matches_sqrtm_formula_and_is_symmetric():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(400, 12)) @ rng.normal(size=(12, 12))
    b = rng.normal(size=(300, 12)) * 2 + 0.5
    assert frechet_distance(a, b) == pytest.approx(fd_reference(a, b), rel=1e-6)
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-9)


def test_fd_of_shifted_gaussians_is_the_squared_shift():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(20000, 4))
    shift = np.array([1.0, -2.0, 0.0, 0.5])
    assert frechet_distance(x, x + shift) == pytest.approx((shift ** 2).sum(), abs=1e-9)


def test_weighted_moments_equal_repeated_rows():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(10, 3))
    w = rng.integers(0, 4, 10).astype(float)
    w[0] = 1
    rep = np.repeat(x, w.astype(int), axis=0)
    mu, cov = weighted_moments(x, w)
    assert np.allclose(mu, rep.mean(0)) and np.allclose(cov, np.cov(rep, rowvar=False))


def test_kid_is_unbiased_for_equal_distributions():
    """Mean over many independent pairs of same-distribution sets is 0 within noise, while
    the biased (V-statistic) estimate is clearly positive."""
    rng = np.random.default_rng(4)
    vals, biased = [], []
    for _ in range(200):
        a, b = rng.normal(size=(30, 8)), rng.normal(size=(30, 8))
        vals.append(mmd2_unbiased(a, b))
        biased.append(poly_kernel(a, a).mean() + poly_kernel(b, b).mean() - 2 * poly_kernel(a, b).mean())
    se = np.std(vals) / np.sqrt(len(vals))
    assert abs(np.mean(vals)) < 3 * se
    assert np.mean(biased) > 10 * se


def test_kid_separates_different_distributions():
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(200, 8)), rng.normal(size=(200, 8)) + 0.7
    value, std = kid(a, b, subset_size=100, n_subsets=20)
    assert value > 5 * std > 0


def test_kid_weighted_equals_explicit_u_statistic_without_copy_pairs():
    rng = np.random.default_rng(6)
    a, b = rng.normal(size=(6, 3)), rng.normal(size=(5, 3))
    w = np.array([2.0, 0.0, 1.0, 3.0, 1.0, 1.0])
    got = kid_weighted(poly_kernel(a, a), poly_kernel(b, b), poly_kernel(a, b), w[None])[0]
    items = [i for i in range(6) for _ in range(int(w[i]))]
    k = poly_kernel(a, a)
    aa = np.mean([k[i, j] for p, i in enumerate(items) for q, j in enumerate(items) if p != q and i != j])
    kb = poly_kernel(b, b)
    bb = (kb.sum() - np.trace(kb)) / (5 * 4)
    ab = np.mean([poly_kernel(a, b)[i].mean() for i in items])
    assert got == pytest.approx(aa + bb - 2 * ab, rel=1e-9)
    ones = kid_weighted(poly_kernel(a, a), kb, poly_kernel(a, b), np.ones((1, 6)))[0]
    assert ones == pytest.approx(mmd2_unbiased(a, b), rel=1e-12)


def test_nan_features_are_refused():
    x = np.ones((5, 3))
    x[2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance(x, np.ones((5, 3)))
