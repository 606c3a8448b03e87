"""The machine-readable summary of one or more evaluation directories (the report's JSON).

Structure::

    {"schema": "ausynth-eval-summary/1", "generated": ..., "sources": [eval dirs],
     "feature_space": ..., "metrics": {name: {direction, description}},
     "models": {model: provenance}, "test_sets": {set: description},
     "matrix": {metric: {model: {set: {value, ci_low, ci_high, n, n_faces[, breakdown]}}}},
     "best": {metric: {set: model}},           # ranked metrics only, baseline excluded
     "best_significant": {metric: {set: bool}},  # best's CI overlaps no other model's
     "efficiency": {metric: {set: [{model, share, value, ci_low, ci_high}]}},
     "replacement": {metric: {set: {...}}},    # how much real data synthetic data replaces
     "judges": ..., "eval_configs": ..., "versions": ..., "commands": ...}
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from eval.cli import INFO, RESULTS
from eval.metrics import METRICS, read_jsonl
from eval.models import BASELINE

SCHEMA = "ausynth-eval-summary/1"
HEADLINE = ("au_mae_target", "au_slope", "au_delta_mae", "expr_acc", "id_same", "fd", "kid", "att_iou")
_RESULT_KEYS = ("value", "ci_low", "ci_high", "n", "n_faces", "breakdown")


def load_eval_dir(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(eval.json, the latest result line per (model, set, metric)) of one directory."""
    path = Path(path)
    if not (path / INFO).is_file():
        raise FileNotFoundError(f"{path} is not an evaluation directory (no {INFO}; run `ausynth eval`)")
    info = json.loads((path / INFO).read_text())
    latest: dict[tuple[str, str, str], dict[str, Any]] = {}
    for rec in read_jsonl(path / RESULTS):
        latest[(rec["model"], rec["test_set"], rec["metric"])] = rec
    return info, list(latest.values())


def is_baseline(model: str) -> bool:
    return model == BASELINE or model.startswith(BASELINE + "-")


def best_model(cells: dict[str, dict[str, Any]], direction: str) -> str | None:
    """The best non-baseline model of one column (None for ``info`` metrics or no values)."""
    vals = {m: c["value"] for m, c in cells.items() if not is_baseline(m) and c.get("value") is not None}
    if direction == "info" or not vals:
        return None
    key = {"lower": lambda m: vals[m], "higher": lambda m: -vals[m], "zero": lambda m: abs(vals[m])}[direction]
    return min(vals, key=key)


def best_is_significant(cells: dict[str, dict[str, Any]], best: str, direction: str) -> bool:
    """True when the best model's interval overlaps no other (non-baseline) model's interval."""
    b = cells[best]
    if b.get("ci_low") is None or b.get("ci_high") is None:
        return False
    others = [c for m, c in cells.items() if m != best and not is_baseline(m) and c.get("ci_low") is not None]
    if not others:
        return False
    return all(_significantly_better(b, c, direction) for c in others)


def replacement(points: list[dict[str, Any]], direction: str) -> dict[str, Any] | None:
    """Smallest real share whose interval overlaps the real-only model's interval.

    ``points``: efficiency points of one metric and test set. None without a real-only
    (share 1) model or for unranked metrics. ``synthetic_share_replaced = 1 - share``: the
    share of real data synthetic data replaced without a significant loss (CI overlap; a
    conservative reading: overlap is not equivalence)."""
    if direction == "info":
        return None
    full = [p for p in points if p["share"] == 1.0 and p["value"] is not None]
    if not full:
        return None
    ref = full[0]
    ok = [p for p in sorted(points, key=lambda p: p["share"]) if p["value"] is not None
          and p["ci_low"] is not None and ref["ci_low"] is not None
          and p["ci_high"] >= ref["ci_low"] and p["ci_low"] <= ref["ci_high"]]
    better = [p["model"] for p in points if p["share"] < 1.0 and p["ci_low"] is not None
              and ref["ci_low"] is not None and _significantly_better(p, ref, direction)]
    share = ok[0]["share"] if ok else None
    return {"real_only_model": ref["model"], "min_share_matching_real": share,
            "synthetic_share_replaced": None if share is None else round(1.0 - share, 4),
            "significantly_better_than_real_only": better}


def _significantly_better(p: dict[str, Any], ref: dict[str, Any], direction: str) -> bool:
    if direction == "lower":
        return p["ci_high"] < ref["ci_low"]
    if direction == "higher":
        return p["ci_low"] > ref["ci_high"]
    return max(abs(p["ci_low"]), abs(p["ci_high"])) < min(abs(ref["ci_low"]), abs(ref["ci_high"]))


def build_summary(dirs: list[Path]) -> dict[str, Any]:
    """Merge evaluation directories into the summary (model names must be unique across
    directories, except the baseline, which is taken from the first directory having it)."""
    out: dict[str, Any] = {"schema": SCHEMA, "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                           "sources": [str(Path(d).resolve()) for d in dirs], "models": {}, "test_sets": {},
                           "matrix": {}, "judges": {}, "eval_configs": {}, "versions": {}, "commands": {},
                           "realism_reference": {}, "identity_overlap": {}}
    for d in dirs:
        info, records = load_eval_dir(d)
        key = str(Path(d).resolve())
        for name, m in info.get("models", {}).items():
            if name in out["models"] and not is_baseline(name):
                raise ValueError(f"model {name!r} appears in two evaluation directories; rename one")
            out["models"].setdefault(name, m)
        out["test_sets"].update(info.get("test_sets", {}))
        for k in ("judges", "versions", "realism_reference", "identity_overlap"):
            out[k][key] = info.get(k)
        out["eval_configs"][key] = info.get("config")
        out["commands"][key] = info.get("command")
        out.setdefault("feature_space", info.get("feature_space"))
        out.setdefault("targets", info.get("targets"))
        for rec in records:
            cell = {k: rec[k] for k in _RESULT_KEYS if k in rec}
            out["matrix"].setdefault(rec["metric"], {}).setdefault(rec["model"], {})[rec["test_set"]] = cell
    out["metrics"] = {n: {"direction": METRICS[n].direction, "description": METRICS[n].description}
                      for n in METRICS if n in out["matrix"]}
    _rank(out)
    return out


def _rank(out: dict[str, Any]) -> None:
    """Fill ``best``, ``efficiency`` and ``replacement``."""
    sets = list(out["test_sets"])
    out["best"], out["best_significant"], out["efficiency"], out["replacement"] = {}, {}, {}, {}
    for metric, rows in out["matrix"].items():
        direction = out["metrics"][metric]["direction"]
        for ts in sets:
            column = {m: rows[m][ts] for m in rows if ts in rows[m]}
            best = best_model(column, direction)
            if best:
                out["best"].setdefault(metric, {})[ts] = best
                out["best_significant"].setdefault(metric, {})[ts] = best_is_significant(column, best, direction)
            points = [{"model": m, "share": out["models"][m].get("real_share"), **{k: c.get(k) for k in
                       ("value", "ci_low", "ci_high")}} for m, c in column.items()
                      if m in out["models"] and out["models"][m].get("real_share") is not None]
            if points:
                out["efficiency"].setdefault(metric, {})[ts] = sorted(points, key=lambda p: p["share"])
                rep = replacement(points, direction)
                if rep:
                    out["replacement"].setdefault(metric, {})[ts] = rep
