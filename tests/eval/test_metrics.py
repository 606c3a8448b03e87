"""Metrics on hand-built cell tables with known answers, applicability, and the JSONL log."""

from __future__ import annotations

import json

import numpy as np
import pytest

from aukit.aus import GANIMATION_AUS
from eval import metrics as M
from eval.judges.expression import FER_CLASSES
from eval.targets import build_targets

I12 = GANIMATION_AUS.index("AU12")


def table(n_faces: int = 4, judge_gain: float = 1.0, offset: float = 0.0) -> dict[str, np.ndarray]:
    """A cell whose judge reads ``gain * target + offset`` on every AU, and whose expression
    judge always says the intended emotion except for 'fear' (says 'surprise')."""
    targets = build_targets(["AU12", "AU01"], [1, 3, 5], ["happiness", "fear"])
    n_t = len(targets)
    face = np.tile(np.arange(n_faces), n_t)
    tidx = np.repeat(np.arange(n_t), n_faces)
    target_aus = np.stack([targets[t].aus for t in tidx])
    probs = np.zeros((len(face), 7))
    for r, t in enumerate(tidx):
        name = {"happiness": "happy", "fear": "surprise"}.get(targets[t].name, "neutral")
        probs[r, FER_CLASSES.index(name)] = 1.0
    return {
        "face": face, "target": tidx, "target_aus": target_aus,
        "judge_aus": gain_offset(target_aus, judge_gain, offset), "judge_detected": np.ones(len(face), bool),
        "judge_in": np.full((n_faces, 17), offset), "labels_in": np.zeros((n_faces, 17)),
        "fer_probs": probs, "feats": np.random.default_rng(0).normal(size=(len(face), 8)),
        "id_dist": np.where(np.arange(len(face)) % 2 == 0, 0.3, 0.7),
        "att_mean": np.full(len(face), 0.8), "att_replaced": np.full(len(face), 0.1),
        "att_kept": np.full(len(face), 0.6), "iou": np.full(len(face), 0.25),
        "precision": np.full(len(face), 0.5), "recall": np.full(len(face), np.nan),
        "t_kind": np.array([t.kind for t in targets]), "t_name": np.array([t.name for t in targets]),
        "t_intensity": np.array([t.intensity for t in targets]),
    }


def gain_offset(x: np.ndarray, gain: float, offset: float) -> np.ndarray:
    return x * gain + offset


def cell(t: dict, exact: bool = True, reference: np.ndarray | None = None) -> M.CellData:
    return M.CellData(t, M.make_weights(len(t["judge_in"]), 200, 0), exact, reference, max_boot=20)


def test_perfect_judge_gives_zero_au_error_and_unit_slope():
    r = M.compute(cell(table()), None, has_au=True)
    for name in ("au_mae", "au_mae_target", "au_mae_sweep", "au_delta_mae", "judge_floor_mae"):
        assert r[name]["value"] == pytest.approx(0.0, abs=1e-12), name
    assert r["au_slope"]["value"] == pytest.approx(1.0)
    assert r["au_slope"]["breakdown"]["AU12"]["value"] == pytest.approx(1.0)
    assert r["au_detect"]["value"] == 1.0


def test_half_strength_edits_are_measured():
    """Judge reads half the requested intensity: sweep error = mean(intensity) / 2, bias < 0."""
    r = M.compute(cell(table(judge_gain=0.5)), None, has_au=True)
    assert r["au_mae_sweep"]["value"] == pytest.approx(np.mean([1, 3, 5]) / 2)
    assert r["au_mae_sweep"]["breakdown"]["AU01"]["value"] == pytest.approx(1.5)
    assert r["au_bias_target"]["value"] < 0
    assert r["au_slope"]["value"] == pytest.approx(0.5)


def test_judge_offset_is_removed_by_the_delta_error_only():
    """A judge that adds 0.4 to every AU everywhere: absolute errors see it, the delta error
    against exact labels does not, and the floor reports it."""
    r = M.compute(cell(table(offset=0.4)), None, has_au=True)
    assert r["au_mae"]["value"] == pytest.approx(0.4)
    assert r["au_delta_mae"]["value"] == pytest.approx(0.0, abs=1e-12)
    assert r["judge_floor_mae"]["value"] == pytest.approx(0.4)


def test_expression_identity_attention_metrics():
    r = M.compute(cell(table()), None, has_au=True)
    assert r["expr_acc"]["value"] == pytest.approx(0.5)
    assert r["expr_acc"]["breakdown"]["happiness"]["value"] == 1.0
    assert r["expr_acc"]["breakdown"]["fear"]["value"] == 0.0
    assert r["expr_prob"]["value"] == pytest.approx(0.5)
    assert r["id_dist"]["value"] == pytest.approx(0.5) and r["id_same"]["value"] == pytest.approx(0.5)
    assert r["att_mean"]["value"] == pytest.approx(0.8)
    assert r["att_saturated"]["value"] == pytest.approx(0.7)
    assert r["att_iou"]["value"] == 0.25 and np.isnan(r["att_recall"]["value"])


def test_applicability_real_sets_and_no_au_judge():
    r = M.compute(cell(table(), exact=False), None, has_au=False)
    assert "au_mae" not in r and "au_delta_mae" not in r and "att_iou" not in r and "fd" not in r
    assert "expr_acc" in r and "id_same" in r


def test_realism_metrics_with_a_reference():
    t = table()
    ref_same = np.random.default_rng(0).normal(size=(300, 8))
    far = ref_same + 3.0
    near = M.compute(cell(t, reference=ref_same), ["fd", "kid"], True)
    away = M.compute(cell(t, reference=far), ["fd", "kid"], True)
    assert away["fd"]["value"] > near["fd"]["value"] + 50
    assert away["kid"]["value"] > near["kid"]["value"]
    assert near["fd"]["ci_low"] <= near["fd"]["ci_high"]


def test_registry_rejects_duplicates_and_bad_directions():
    with pytest.raises(ValueError):
        M.register("au_mae", "lower", "again")(lambda c: {})
    with pytest.raises(ValueError):
        M.register("new_metric", "sideways", "?")


def test_jsonl_append_resume_and_torn_lines(tmp_path):
    path = tmp_path / "metrics.jsonl"
    res = {"au_mae": {"value": np.float64(0.5), "ci_low": 0.4, "ci_high": float("nan"), "n": np.int64(3)}}
    M.append_results(path, "m", "s", "k1", res, {"ci": 0.95})
    with open(path, "a") as fh:
        fh.write('{"model": "m", "test_set"')  # a run killed mid-line
    assert M.done_keys(path) == {("m", "s", "au_mae", "k1")}
    rec = M.read_jsonl(path)[0]
    assert rec["value"] == 0.5 and rec["ci_high"] is None and rec["n"] == 3
    json.dumps(rec)
