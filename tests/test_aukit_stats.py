"""Cluster bootstrap: weights, point estimates and interval coverage."""

from __future__ import annotations

import numpy as np

from aukit.stats import bootstrap_mean, bootstrap_statistic, face_weights, percentile_ci


def test_face_weights_are_resampling_counts():
    w = face_weights(7, 50, seed=1)
    assert w.shape == (50, 7) and np.all(w.sum(1) == 7) and np.all(w >= 0)
    assert np.array_equal(w, face_weights(7, 50, seed=1))


def test_point_estimate_is_the_plain_mean_of_finite_rows():
    v = np.array([1.0, 2.0, np.nan, 4.0, 5.0])
    f = np.array([0, 0, 1, 1, 2])
    r = bootstrap_mean(v, f, face_weights(3, 200))
    assert r["value"] == 3.0 and r["n"] == 4 and r["n_faces"] == 3
    assert r["ci_low"] <= 3.0 <= r["ci_high"]


def test_interval_covers_the_true_mean_at_about_the_nominal_rate():
    """200 simulated evaluations (20 faces x 10 correlated edits each): the 95% interval
    should contain the true mean in roughly 95% of them (clustered data, so a naive
    per-row bootstrap would under-cover)."""
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(200):
        face_effect = rng.normal(0, 1.0, 20)
        v = np.repeat(face_effect, 10) + rng.normal(0, 0.5, 200)
        f = np.repeat(np.arange(20), 10)
        r = bootstrap_mean(v, f, face_weights(20, 400, seed=int(rng.integers(1 << 30))))
        hits += r["ci_low"] <= 0.0 <= r["ci_high"]
    assert 0.86 <= hits / 200 <= 0.995


def test_clustered_interval_is_wider_than_treating_rows_as_independent():
    rng = np.random.default_rng(1)
    v = np.repeat(rng.normal(0, 1, 10), 20) + rng.normal(0, 0.1, 200)
    clustered = bootstrap_mean(v, np.repeat(np.arange(10), 20), face_weights(10, 500))
    naive = bootstrap_mean(v, np.arange(200), face_weights(200, 500))
    assert clustered["ci_high"] - clustered["ci_low"] > 2 * (naive["ci_high"] - naive["ci_low"])


def test_statistic_bootstrap_uses_row_weights():
    v = np.array([1.0, 3.0, 10.0])
    f = np.array([0, 1, 2])
    r = bootstrap_statistic(lambda w: (w @ v) / w.sum(1), f, face_weights(3, 300))
    assert r["value"] == np.mean(v) and r["ci_low"] < r["value"] < r["ci_high"]


def test_percentile_ci_ignores_nan_and_reports_nan_when_empty():
    assert percentile_ci(np.array([np.nan, 1.0, 1.0])) == (1.0, 1.0)
    assert all(np.isnan(percentile_ci(np.array([np.nan]))))
