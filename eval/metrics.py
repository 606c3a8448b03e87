"""The metric registry: each metric turns a cell table (:mod:`eval.protocols`) into a value
with a cluster-bootstrap confidence interval (:mod:`aukit.stats`).

A metric declares its ``direction`` (``lower``/``higher`` is better, ``zero``: closest to 0
is better, ``info``: descriptive, never ranked) and what it ``needs`` (``au``: an AU judge;
``exact``: exact input labels, i.e. a synthetic test set; ``regions``: AU region masks;
``reference``: realism reference features). Metrics whose needs a cell cannot meet are
skipped, not reported as NaN. Add one with :func:`register`.

Results are appended to ``metrics.jsonl`` one line per (model, test set, metric), as the
EDM/StyleGAN3 metric logs do; :func:`done_keys` reads them back so a rerun computes only
what is missing.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from aukit.aus import GANIMATION_AUS
from eval.judges.expression import FER_CLASSES, FER_TO_EMOTION
from eval.judges.identity import SAME_PERSON_THRESHOLD
from eval.judges.realism import frechet_from_moments, kid_weighted, poly_kernel, weighted_moments, _sqrt_psd
from aukit.stats import bootstrap_mean, bootstrap_statistic, face_weights, percentile_ci

EMOTION_TO_FER = {v: FER_CLASSES.index(k) for k, v in FER_TO_EMOTION.items()}


@dataclass
class CellData:
    """A cell table plus what metrics share: bootstrap weights, reference features."""

    table: dict[str, np.ndarray]
    weights: np.ndarray                 # (n_boot, F) face resampling counts
    exact: bool
    reference: np.ndarray | None = None  # (R, 128) realism reference features
    ci: float = 0.95
    max_boot: int = 200
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def face(self) -> np.ndarray:
        return self.table["face"].astype(np.int64)

    def rows(self, kind: str) -> np.ndarray:
        """bool (M,): rows whose target is of ``kind`` (``au`` or ``emotion``)."""
        return self.table["t_kind"][self.table["target"]] == kind

    def mean(self, values: np.ndarray, mask: np.ndarray | None = None) -> dict[str, Any]:
        v = np.asarray(values, np.float64).copy()
        if mask is not None:
            v[~mask] = np.nan
        return bootstrap_mean(v, self.face, self.weights, self.ci)


@dataclass(frozen=True)
class Metric:
    name: str
    direction: str
    description: str
    fn: Callable[[CellData], dict[str, Any]]
    needs: frozenset[str] = frozenset()


METRICS: dict[str, Metric] = {}


def register(name: str, direction: str, description: str, needs: tuple[str, ...] = ()):
    """Decorator adding ``fn(cell) -> result dict`` to :data:`METRICS`."""
    if direction not in ("lower", "higher", "zero", "info"):
        raise ValueError(f"bad direction {direction!r}")

    def wrap(fn: Callable[[CellData], dict[str, Any]]) -> Callable[[CellData], dict[str, Any]]:
        if name in METRICS:
            raise ValueError(f"metric {name!r} is already registered")
        METRICS[name] = Metric(name, direction, description, fn, frozenset(needs))
        return fn
    return wrap


def applicable(metric: Metric, cell: CellData, has_au: bool) -> bool:
    have = {"exact", "regions"} if cell.exact else set()
    if has_au:
        have.add("au")
    if cell.reference is not None and len(cell.reference) >= 2:
        have.add("reference")
    return metric.needs <= have


# ----------------------------------------------------------------------------- AU error

def _abs_err(cell: CellData) -> np.ndarray:
    return np.abs(cell.table["judge_aus"].astype(np.float64) - cell.table["target_aus"])


@register("au_mae", "lower", "mean |judge - target| over all 17 AUs of every edit (FACS units)", ("au",))
def _au_mae(cell: CellData) -> dict[str, Any]:
    return cell.mean(_abs_err(cell).mean(1))


def _target_rows(cell: CellData, signed: bool) -> np.ndarray:
    err = cell.table["judge_aus"].astype(np.float64) - cell.table["target_aus"]
    err = err if signed else np.abs(err)
    active = cell.table["target_aus"] > 0
    with np.errstate(invalid="ignore"):
        return np.where(active, err, 0).sum(1) / active.sum(1)


@register("au_mae_target", "lower", "mean |judge - target| over the AUs each target sets (> 0)", ("au",))
def _au_mae_target(cell: CellData) -> dict[str, Any]:
    return cell.mean(_target_rows(cell, signed=False))


@register("au_bias_target", "zero", "mean (judge - target) over the AUs each target sets; < 0: "
          "edits come out weaker than asked", ("au",))
def _au_bias_target(cell: CellData) -> dict[str, Any]:
    return cell.mean(_target_rows(cell, signed=True))


@register("au_mae_sweep", "lower", "single-AU targets: |judge - intensity| of the swept AU; "
          "per-AU breakdown", ("au",))
def _au_mae_sweep(cell: CellData) -> dict[str, Any]:
    t = cell.table
    sweep = cell.rows("au")
    col = np.array([GANIMATION_AUS.index(n) if k == "au" else 0 for k, n in zip(t["t_kind"], t["t_name"])])
    rows_col = col[t["target"]]
    err = np.abs(t["judge_aus"][np.arange(len(rows_col)), rows_col] - t["t_intensity"][t["target"]])
    res = cell.mean(err, sweep)
    swept_au = t["t_name"][t["target"]]
    res["breakdown"] = {a: _short(cell.mean(err, sweep & (swept_au == a)))
                        for a in GANIMATION_AUS if np.any(sweep & (swept_au == a))}
    return res


@register("au_slope", "higher", "single-AU targets: least-squares slope of the judged vs the "
          "requested intensity of the swept AU (input = 0), mean over AUs; 1 = full response, "
          "0 = the AU is ignored; per-AU breakdown", ("au",))
def _au_slope(cell: CellData) -> dict[str, Any]:
    t = cell.table
    n_f = len(t["judge_in"])
    per_au, stats = {}, []
    for a in GANIMATION_AUS:
        rows = np.flatnonzero(cell.rows("au") & (t["t_name"][t["target"]] == a))
        if rows.size == 0:
            continue
        j = GANIMATION_AUS.index(a)
        x = np.concatenate([t["t_intensity"][t["target"][rows]], np.zeros(n_f)])
        y = np.concatenate([t["judge_aus"][rows, j], t["judge_in"][:, j]]).astype(np.float64)
        f = np.concatenate([cell.face[rows], np.arange(n_f)])
        ok = np.isfinite(y)
        stat = _slope_stat(x[ok], y[ok])
        res = bootstrap_statistic(stat, f[ok], cell.weights, cell.ci)
        per_au[a] = _short(res)
        stats.append((stat, f[ok]))
    if not stats:
        return {"value": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"), "n": 0, "n_faces": 0}
    point = float(np.nanmean([v["value"] for v in per_au.values()]))
    reps = np.nanmean([s(cell.weights[:, f]) for s, f in stats], axis=0)
    lo, hi = percentile_ci(reps, cell.ci)
    return {"value": point, "ci_low": lo, "ci_high": hi, "n": int(sum(len(f) for _, f in stats)),
            "n_faces": n_f, "breakdown": per_au}


def _slope_stat(x: np.ndarray, y: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    def stat(w: np.ndarray) -> np.ndarray:
        sw = w.sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mx, my = (w @ x) / sw, (w @ y) / sw
            cov = (w @ (x * y)) / sw - mx * my
            var = (w @ (x * x)) / sw - mx * mx
            return cov / var
    return stat


@register("au_delta_mae", "lower", "synthetic sets: |(judge(out) - judge(in)) - (target - exact "
          "input label)| over 17 AUs: the judged change against the exact requested change, "
          "free of the judge's per-face offset", ("au", "exact"))
def _au_delta_mae(cell: CellData) -> dict[str, Any]:
    t, f = cell.table, cell.face
    judged = t["judge_aus"].astype(np.float64) - t["judge_in"][f]
    asked = t["target_aus"] - t["labels_in"][f]
    return cell.mean(np.abs(judged - asked).mean(1))


@register("judge_floor_mae", "info", "synthetic sets: the AU judge's own error on the unedited "
          "inputs against their exact labels (mean over 17 AUs): the noise floor of AU errors",
          ("au", "exact"))
def _judge_floor(cell: CellData) -> dict[str, Any]:
    t = cell.table
    err = np.abs(t["judge_in"].astype(np.float64) - t["labels_in"]).mean(1)
    return bootstrap_mean(err, np.arange(len(err)), cell.weights, cell.ci)


@register("au_detect", "higher", "share of edits in which the AU judge found a face", ("au",))
def _au_detect(cell: CellData) -> dict[str, Any]:
    return cell.mean(cell.table["judge_detected"].astype(np.float64))


# ----------------------------------------------------------------------------- expression

def _intended(cell: CellData) -> tuple[np.ndarray, np.ndarray]:
    t = cell.table
    names = t["t_name"][t["target"]]
    ok = cell.rows("emotion") & np.isin(names, list(EMOTION_TO_FER))
    idx = np.array([EMOTION_TO_FER.get(n, 0) for n in names])
    return ok & np.isfinite(t["fer_probs"]).all(1), idx


@register("expr_acc", "higher", "emotion prototypes: share of edits the expression judge "
          "classifies as the intended emotion; per-emotion breakdown")
def _expr_acc(cell: CellData) -> dict[str, Any]:
    ok, idx = _intended(cell)
    hit = (np.nan_to_num(cell.table["fer_probs"]).argmax(1) == idx).astype(np.float64)
    res = cell.mean(hit, ok)
    names = cell.table["t_name"][cell.table["target"]]
    res["breakdown"] = {e: _short(cell.mean(hit, ok & (names == e))) for e in np.unique(names[ok])}
    return res


@register("expr_prob", "higher", "emotion prototypes: the judge's probability of the intended emotion")
def _expr_prob(cell: CellData) -> dict[str, Any]:
    ok, idx = _intended(cell)
    return cell.mean(np.nan_to_num(cell.table["fer_probs"])[np.arange(len(idx)), idx], ok)


# ----------------------------------------------------------------------------- identity

@register("id_dist", "lower", "dlib embedding distance between input and edited face")
def _id_dist(cell: CellData) -> dict[str, Any]:
    return cell.mean(cell.table["id_dist"])


@register("id_same", "higher", f"share of edits still the same person (distance < {SAME_PERSON_THRESHOLD})")
def _id_same(cell: CellData) -> dict[str, Any]:
    d = cell.table["id_dist"].astype(np.float64)
    return cell.mean(np.where(np.isfinite(d), d < SAME_PERSON_THRESHOLD, np.nan))


# ----------------------------------------------------------------------------- realism

def _feats(cell: CellData) -> tuple[np.ndarray, np.ndarray]:
    x = cell.table["feats"].astype(np.float64)
    ok = np.isfinite(x).all(1)
    return x[ok], cell.face[ok]


@register("fd", "lower", "Frechet distance between all edits and the real reference, FER "
          "penultimate features", ("reference",))
def _fd(cell: CellData) -> dict[str, Any]:
    x, f = _feats(cell)
    ref = cell.reference.astype(np.float64)
    mu_r, s_r = weighted_moments(ref)
    root = _sqrt_psd(s_r)

    def stat(w: np.ndarray) -> np.ndarray:
        return np.array([frechet_from_moments(mu_r, s_r, *weighted_moments(x, wi), sqrt_a=root) for wi in w])
    return bootstrap_statistic(stat, f, cell.weights, cell.ci, cell.max_boot)


@register("kid", "lower", "kernel distance (unbiased MMD^2, cubic kernel) between all edits and "
          "the real reference, FER penultimate features", ("reference",))
def _kid(cell: CellData) -> dict[str, Any]:
    x, f = _feats(cell)
    ref = cell.reference.astype(np.float64)
    k_xx, k_rr, k_xr = poly_kernel(x, x), poly_kernel(ref, ref), poly_kernel(x, ref)
    return bootstrap_statistic(lambda w: kid_weighted(k_xx, k_rr, k_xr, w), f, cell.weights,
                               cell.ci, cell.max_boot)


# ----------------------------------------------------------------------------- attention

@register("att_mean", "info", "mean attention A (1 = input kept)")
def _att_mean(cell: CellData) -> dict[str, Any]:
    return cell.mean(cell.table["att_mean"])


@register("att_saturated", "info", "share of pixels with saturated attention (A < 0.05 or > 0.95); "
          "breakdown: replaced (A < 0.05) and kept (A > 0.95)")
def _att_sat(cell: CellData) -> dict[str, Any]:
    t = cell.table
    res = cell.mean(t["att_replaced"] + t["att_kept"])
    res["breakdown"] = {"replaced": _short(cell.mean(t["att_replaced"])), "kept": _short(cell.mean(t["att_kept"]))}
    return res


for _name, _desc in (("iou", "IoU"), ("precision", "precision"), ("recall", "recall")):
    def _region_metric(cell: CellData, key: str = _name) -> dict[str, Any]:
        return cell.mean(cell.table[key])
    register(f"att_{_name}", "higher", f"synthetic sets: {_desc} of the edit mask (1 - A > 0.5) "
             "against the rendered regions of the target's AUs", ("regions",))(_region_metric)


# ----------------------------------------------------------------------------- running, JSONL

def _short(res: dict[str, Any]) -> dict[str, Any]:
    return {k: res[k] for k in ("value", "ci_low", "ci_high", "n") if k in res}


def compute(cell: CellData, names: list[str] | None, has_au: bool) -> dict[str, dict[str, Any]]:
    """Results of the named (default: all) applicable metrics."""
    out = {}
    for name in list(METRICS) if names is None else names:
        metric = METRICS[name]
        if applicable(metric, cell, has_au):
            out[name] = {**metric.fn(cell), "direction": metric.direction}
    return out


def make_weights(n_faces: int, n_boot: int, seed: int) -> np.ndarray:
    return face_weights(n_faces, n_boot, seed)


def done_keys(path: Path) -> set[tuple[str, str, str, str]]:
    """(model, test_set, metric, cell_key) of every result line already in ``path``."""
    keys = set()
    for rec in read_jsonl(path):
        keys.add((rec.get("model"), rec.get("test_set"), rec.get("metric"), rec.get("cell_key")))
    return keys


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Result lines of a metrics.jsonl; a torn last line (killed run) is skipped."""
    if not Path(path).is_file():
        return []
    out = []
    for line in Path(path).read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def append_results(path: Path, model: str, test_set: str, cell_key: str,
                   results: dict[str, dict[str, Any]], extra: dict[str, Any]) -> None:
    """Append one line per metric (flushed per line so a kill loses at most one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torn = path.is_file() and path.stat().st_size > 0 and path.read_bytes()[-1:] != b"\n"
    with open(path, "a") as fh:
        if torn:  # a killed run left half a line: start ours on a fresh one
            fh.write("\n")
        for name, res in results.items():
            rec = {"model": model, "test_set": test_set, "metric": name, **_jsonable(res),
                   "cell_key": cell_key, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **extra}
            fh.write(json.dumps(rec) + "\n")
            fh.flush()


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return None if not np.isfinite(obj) else float(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    return obj
