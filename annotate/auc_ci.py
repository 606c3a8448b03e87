"""Uncertainty of the emotion-AUC check: identity-clustered bootstrap intervals.

Photos of one person are not independent (one actor can supply half of a small emotion's
faces), so a replicate resamples *identities* with replacement and keeps all their photos,
as counts per photo (:func:`identity_weights`, on :mod:`aukit.stats`). Every annotator is scored on the same
replicates, so the interval of a *difference* between two annotators is a paired
comparison: "beats the geometric fit" holds at 95% when that interval lies above 0.

Numpy only; the AUC of a weighted sample is computed for all replicates at once
(:func:`weighted_auc`, ties count one half, exactly like ``sklearn.metrics.roc_auc_score``
with ``sample_weight``).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from annotate.evalset import AUC_EMOTIONS, facs_score
from aukit.stats import face_weights, percentile_ci


def identity_weights(identity: np.ndarray, n_boot: int, seed: int | Sequence[int] = 0) -> np.ndarray:
    """(n_boot, N) float64 photo weights: each identity's draw count
    (:func:`aukit.stats.face_weights` over people), given to its photos."""
    _, cluster = np.unique(np.asarray(identity), return_inverse=True)
    return face_weights(int(cluster.max()) + 1, n_boot, seed)[:, cluster]


def weighted_auc(positive: np.ndarray, score: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ROC AUC of ``score`` (N,) for bool labels ``positive`` (N,) under each row of
    ``weights`` (B, N) -> (B,); NaN where a replicate has no positive or no negative."""
    order = np.argsort(score, kind="mergesort")
    s, pos, w = np.asarray(score)[order], np.asarray(positive, bool)[order], np.atleast_2d(weights)[:, order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])          # tie groups (sorted scores)
    wp = np.add.reduceat(w * pos, starts, axis=1)
    wn = np.add.reduceat(w * ~pos, starts, axis=1)
    below = np.cumsum(wn, axis=1) - wn                               # negatives scored lower
    num = (wp * (below + 0.5 * wn)).sum(axis=1)
    den = wp.sum(axis=1) * wn.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def auc_intervals(au17: dict[str, np.ndarray], emotion: np.ndarray, identity: np.ndarray,
                  baseline: str | None = None, n_boot: int = 2000, ci: float = 0.95,
                  seed: int = 0) -> dict[str, dict[str, dict[str, Any]]]:
    """Per annotator and emotion: ``{"auc", "ci": [lo, hi]}`` and, for annotators other than
    ``baseline``, ``"diff_ci"``: the interval of ``AUC - AUC(baseline)`` on the same
    replicates. ``au17``: name -> (N, 17) AUs of the same N faces (0-5)."""
    emotion, identity = np.asarray(emotion), np.asarray(identity)
    out: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in au17}
    for k, emo in enumerate(AUC_EMOTIONS):
        mask = (emotion == emo) | (emotion == "neutral")
        pos = emotion[mask] == emo
        if not pos.any() or pos.all():
            continue
        w = np.vstack([np.ones(int(mask.sum())), identity_weights(identity[mask], n_boot, [seed, k])])
        reps = {name: weighted_auc(pos, facs_score(a[mask], emo), w) for name, a in au17.items()}
        for name, r in reps.items():
            entry: dict[str, Any] = {"auc": float(r[0]), "ci": list(percentile_ci(r[1:], ci))}
            if baseline in reps and name != baseline:
                entry["diff_ci"] = list(percentile_ci(r[1:] - reps[baseline][1:], ci))
            out[name][emo] = entry
    return out
