"""eval.judges: expression (FER2013) and identity (dlib) judges, and their feature cache."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

from aukit.crop import crop_box, crop_image
from aukit.imageio import load_image
from eval.judges._common import JudgeModelError, box_from_landmarks, crop_rule_box
from eval.judges.cache import FeatureCache
from eval.judges.expression import FER_CLASSES, ExpressionJudge
from eval.judges.identity import SAME_PERSON_THRESHOLD, IdentityJudge


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """Mann-Whitney AUC: P(score of a positive > score of a negative), ties half."""
    diff = np.asarray(pos)[:, None] - np.asarray(neg)[None, :]
    return float((diff > 0).mean() + 0.5 * (diff == 0).mean())


@pytest.fixture(scope="module")
def expression():
    return ExpressionJudge()


@pytest.fixture(scope="module")
def identity():
    return IdentityJudge()


def test_expression_outputs(expression, feat_data):
    image = load_image(feat_data / "single_face.jpg")
    out = expression.run([image, image[:, ::-1].copy()])
    assert out.probs.shape == (2, 7) and out.probs.dtype == np.float32
    assert np.allclose(out.probs.sum(axis=1), 1.0, atol=1e-3)
    assert out.features.shape == (2, 128) and np.all(np.isfinite(out.features))
    assert out.box_source == ("detected", "detected")
    assert set(out.labels) <= set(FER_CLASSES)
    # a mirrored face is the same expression: close probabilities
    assert np.abs(out.probs[0] - out.probs[1]).max() < 0.25


def test_fallback_for_faceless_images(feat_data):
    blank = np.full((128, 128, 3), 120, np.uint8)
    out = ExpressionJudge(fallback="crop-rule").run([blank])
    assert out.box_source == ("crop-rule",) and np.isfinite(out.probs).all()
    none = ExpressionJudge(fallback="none").run([blank])
    assert none.box_source == ("none",) and np.isnan(none.probs).all() and none.labels == ["none"]


def test_crop_rule_box_matches_real_crops(analyzer, feat_data):
    """The closed-form box of an aukit crop agrees with the landmarks found in that crop."""
    image = load_image(feat_data / "single_face.jpg")
    face = analyzer.largest_face(image)
    crop = crop_image(image, crop_box(face.landmarks[:, :2]), 128)
    found = box_from_landmarks(analyzer.largest_face(crop).landmarks)
    rule = crop_rule_box(128, 128)
    assert abs(found.cx - rule.cx) < 4 and abs(found.cy - rule.cy) < 4 and abs(found.size - rule.size) < 4


def test_given_landmarks_skip_detection(expression, analyzer, feat_data):
    image = load_image(feat_data / "single_face.jpg")
    lm = analyzer.largest_face(image).landmarks
    a = expression.run([image]).probs
    b = expression.run([image], landmarks=[lm]).probs
    assert np.allclose(a, b, atol=1e-5)


def test_cache_hits_and_misses(tmp_path, feat_data, monkeypatch):
    image = load_image(feat_data / "single_face.jpg")
    cache = FeatureCache(tmp_path)
    judge = ExpressionJudge(cache=cache)
    first = judge.run([image])
    assert len(list(tmp_path.rglob("*.npy"))) == 1

    def boom(*a, **k):
        raise AssertionError("cache miss: recomputed")

    monkeypatch.setattr(judge, "_compute", boom)
    again = judge.run([image])
    assert np.array_equal(first.probs, again.probs) and again.box_source == first.box_source
    other = image.copy()
    other[0, 0, 0] ^= 1  # one bit of one pixel: a different key
    with pytest.raises(AssertionError, match="cache miss"):
        judge.run([other])
    monkeypatch.undo()

    class NextVersion(ExpressionJudge):
        version = ExpressionJudge.version + 1  # new preprocessing: old rows must not be reused

    NextVersion(cache=cache).run([image])
    assert len(list(tmp_path.rglob("*.npy"))) == 2


def test_missing_model_files_are_clear(tmp_path):
    with pytest.raises(JudgeModelError, match="model file not found"):
        ExpressionJudge(model_path=tmp_path / "nope.tflite")
    with pytest.raises(JudgeModelError, match="shape_predictor_5_face_landmarks.dat"):
        IdentityJudge(model_dir=tmp_path)


def test_identity_basic(identity, feat_data):
    image = load_image(feat_data / "single_face.jpg")
    emb = identity.embed([image, image[:, ::-1].copy()])
    assert emb.shape == (2, 128) and emb.dtype == np.float32
    assert identity.distance(emb[0], emb[1]) < 0.3          # mirror: same person
    assert identity.distance(emb[0], emb[0]) == 0.0
    assert identity.threshold == SAME_PERSON_THRESHOLD == 0.6


@pytest.mark.shared_data
def test_expression_separates_happy_from_neutral(expression, real_faces):
    images_dir, rows = real_faces
    rng = np.random.default_rng(1)
    picks = {}
    for emotion in ("happiness", "neutral"):
        pool = [r for r in rows if r["emotion"] == emotion]
        picks[emotion] = [pool[i] for i in rng.choice(len(pool), 150, replace=False)]
    probs = {e: expression.predict([load_image(images_dir / r["image"]) for r in rs])
             for e, rs in picks.items()}
    happy = FER_CLASSES.index("happy")
    score = auc(probs["happiness"][:, happy], probs["neutral"][:, happy])
    recall = float((probs["happiness"].argmax(axis=1) == happy).mean())
    print(f"\nFER happy-vs-neutral AUC {score:.3f}, happy recall {recall:.2f}")
    assert score > 0.85 and recall > 0.6


@pytest.mark.shared_data
def test_identity_same_person_closer_than_different(identity, real_faces):
    images_dir, rows = real_faces
    by_id = defaultdict(list)
    for r in rows:
        by_id[r["identity"]].append(r["image"])
    people = sorted(k for k, v in by_id.items() if len(v) >= 2)
    rng = np.random.default_rng(2)
    chosen = [people[i] for i in rng.choice(len(people), 16, replace=False)]
    a = identity.embed([load_image(images_dir / by_id[p][0]) for p in chosen])
    b = identity.embed([load_image(images_dir / by_id[p][1]) for p in chosen])
    same = identity.distance(a, b)
    diff = identity.distance(a, np.roll(b, 1, axis=0))
    acc = (np.mean(same < 0.6) + np.mean(diff >= 0.6)) / 2
    print(f"\ndlib same {same.mean():.3f} vs different {diff.mean():.3f}, accuracy@0.6 {acc:.2f}")
    assert same.mean() + 0.15 < diff.mean() and acc >= 0.8
