"""``ausynth report``: one self-contained HTML report (and its JSON) of evaluation runs.

    ausynth report runs/eval --out report.html            # also writes report.json
    ausynth report runs/eval_a runs/eval_b --out r.html --json summary.json

Contents: the model x test set matrix of every metric with its bootstrap interval (best
cell per column marked), metric vs real-data share and per-AU error plots (matplotlib),
image grids (input | output | attention per model and target; AU sweeps), and the
configs, dataset manifests, judges and package versions behind the numbers. Images are
inlined as base64 PNG; the file needs nothing else to display.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from aukit import atomic
from eval import plots
from eval.cli import CELLS
from eval.summary import HEADLINE, build_summary, is_baseline

SWEEP_AUS = ("AU01", "AU04", "AU06", "AU12", "AU15", "AU26")


def build_parser(prog: str = "ausynth report") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", type=Path, metavar="EVAL_DIR", help="directories written by ausynth eval")
    p.add_argument("--out", type=Path, required=True, help="HTML file to write")
    p.add_argument("--json", type=Path, help="summary JSON (default: OUT with .json)")
    p.add_argument("--title", default="ausynth evaluation report")
    p.add_argument("--provenance", type=Path, help="extra JSON/YAML (e.g. the experiment config) to embed")
    p.add_argument("--grid-faces", type=int, default=1, help="faces per image grid (default 1)")
    return p


def main(args: argparse.Namespace) -> int:
    try:
        summary = build_summary(args.runs)
    except (FileNotFoundError, ValueError, json.JSONDecodeError) as exc:
        print(f"ausynth report: {exc}", file=sys.stderr)
        return 2
    if not summary["matrix"]:
        print("ausynth report: no results in the given directories (metrics.jsonl is empty)", file=sys.stderr)
        return 2
    extra = yaml.safe_load(args.provenance.read_text()) if args.provenance else None
    html = render_html(summary, args.runs, args.title, extra, args.grid_faces)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(args.out, html)
    json_path = args.json or args.out.with_suffix(".json")
    if extra is not None:
        summary["experiment"] = extra
    atomic.write_text(json_path, json.dumps(summary, indent=1, default=str))
    print(f"ausynth report: wrote {args.out} ({len(html) / 1e6:.1f} MB) and {json_path}")
    return 0


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, (int, np.integer)):
        return str(v)
    v = float(v)
    if not np.isfinite(v):
        return "–"
    return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"


def _yaml(obj: Any) -> str:
    return yaml.safe_dump(json.loads(json.dumps(obj, default=str)), sort_keys=False, width=110)


def model_order(summary: dict[str, Any]) -> list[str]:
    """Models by real share (synthetic first), unknown shares next, baselines last."""
    def key(m: str) -> tuple:
        share = summary["models"].get(m, {}).get("real_share")
        return (is_baseline(m), share is None, share if share is not None else 0.0, m)
    names = set(summary["models"]) | {m for rows in summary["matrix"].values() for m in rows}
    return sorted(names, key=key)


def warnings_of(summary: dict[str, Any]) -> list[str]:
    out = []
    judged_by: dict[str, set[str]] = {}
    for src, judges in summary["judges"].items():
        if judges and judges.get("au_note"):
            out.append(f"{src}: {judges['au_note']}")
        annot = ((judges or {}).get("au") or {}).get("annotator", {}).get("name")
        for name, m in summary["models"].items():
            teachers = {(s.get("manifest_annotator") or {}).get("name") for s in m.get("sources") or []}
            if annot and annot in teachers:
                judged_by.setdefault(annot, set()).add(name)
    for annot, names in judged_by.items():
        out.append(f"The AU judge ({annot}) also pseudo-labelled the real training data of "
                   f"{', '.join(sorted(names))}: their AU errors are measured by their own teacher.")
    for src, per in summary["identity_overlap"].items():
        for model, sets in (per or {}).items():
            for ts, n in sets.items():
                if n:
                    out.append(f"{model} x {ts}: {n} test faces share an identity with the training data.")
    return out


def render_html(summary: dict[str, Any], dirs: list[Path], title: str, extra: Any, grid_faces: int) -> str:
    import jinja2
    from eval.templates import REPORT_HTML

    models = model_order(summary)
    sets = list(summary["test_sets"])
    metric_order = [m for m in HEADLINE if m in summary["matrix"]] + \
        [m for m in summary["matrix"] if m not in HEADLINE]
    env = jinja2.Environment(autoescape=jinja2.select_autoescape(default=True), undefined=jinja2.StrictUndefined)
    ci = next((c.get("stats", {}).get("ci") for c in summary["eval_configs"].values() if c), 0.95)
    intens = next((c["targets"]["intensities"] for c in summary["eval_configs"].values() if c), [])
    eff = plots.efficiency_plot(summary.get("efficiency", {}), [m for m in metric_order if m in HEADLINE],
                                {k: v["description"] for k, v in summary["metrics"].items()})
    cells = cell_files(dirs)
    return env.from_string(REPORT_HTML).render(
        s=summary, title=title, models=models, sets=sets, metric_order=metric_order, headline=HEADLINE,
        ci_pct=round(100 * (ci or 0.95)), fmt=_fmt, yaml=_yaml, is_baseline=is_baseline,
        share=lambda m: _fmt(summary["models"].get(m, {}).get("real_share")),
        warnings=warnings_of(summary), efficiency_png=eff, per_au_pngs=per_au_pngs(summary, models, sets),
        proto_grids=prototype_grids(cells, models, sets, grid_faces),
        sweep_grids=sweep_grids(cells, models, sets, grid_faces),
        intensities=", ".join(_fmt(v) for v in intens), extra_provenance=extra)


def per_au_pngs(summary: dict[str, Any], models: list[str], sets: list[str]) -> list[tuple[str, str]]:
    rows = summary["matrix"].get("au_mae_sweep", {})
    out = []
    for ts in sets:
        data = {m: rows[m][ts].get("breakdown", {}) for m in models if m in rows and ts in rows[m]}
        png = plots.per_au_plot(data, f"{ts}: |judge - target| of the swept AU (95% CI)", "FACS units")
        if png:
            out.append((ts, png))
    return out


def cell_files(dirs: list[Path]) -> dict[tuple[str, str], Path]:
    """(model, test set) -> cell table path, first directory wins."""
    out: dict[tuple[str, str], Path] = {}
    for d in dirs:
        for p in sorted((Path(d) / CELLS).glob("*__*.npz")):
            model, _, ts = p.stem.partition("__")
            out.setdefault((model, ts), p)
    return out


def _load_grid(path: Path) -> dict[str, np.ndarray] | None:
    with np.load(path, allow_pickle=False) as z:
        if "grid_out" not in z.files:
            return None
        return {k: z[k] for k in ("grid_in", "grid_out", "grid_att", "t_kind", "t_name", "t_intensity", "t_label")}


def _grid_models(cells, models, ts) -> dict[str, dict[str, np.ndarray]]:
    out = {}
    for m in models:
        if is_baseline(m) or (m, ts) not in cells:
            continue
        g = _load_grid(cells[(m, ts)])
        if g is not None:
            out[m] = g
    return out


def prototype_grids(cells, models, sets, n_faces: int) -> list[dict[str, Any]]:
    grids = []
    for ts in sets:
        data = _grid_models(cells, models, ts)
        if not data:
            continue
        first = next(iter(data.values()))
        emo = [i for i, k in enumerate(first["t_kind"]) if k == "emotion"]
        for f in range(min(n_faces, len(first["grid_in"]))):
            scale = 2 if len(data) <= 3 else 1   # keep the table within a screen's width
            rows = [{"label": str(first["t_label"][t]),
                     "pngs": [plots.png_b64(plots.strip([g["grid_in"][f], g["grid_out"][f, t], g["grid_att"][f, t]],
                                                        scale)) for g in data.values()]} for t in emo]
            if rows:
                grids.append({"test_set": ts, "face_id": f, "models": list(data), "rows": rows})
    return grids


def sweep_grids(cells, models, sets, n_faces: int) -> list[dict[str, Any]]:
    """Per test set and face: one row per (AU, model): input | outputs by intensity | attention."""
    grids = []
    for ts in sets:
        data = _grid_models(cells, models, ts)
        if not data:
            continue
        first = next(iter(data.values()))
        names = [str(n) for n, k in zip(first["t_name"], first["t_kind"]) if k == "au"]
        aus = [a for a in SWEEP_AUS if a in names] or sorted(set(names))[:4]
        for f in range(min(n_faces, len(first["grid_in"]))):
            rows, levels = [], []
            for a in aus:
                idx = [i for i, (n, k) in enumerate(zip(first["t_name"], first["t_kind"])) if k == "au" and n == a]
                idx.sort(key=lambda i: first["t_intensity"][i])
                levels = [_fmt(first["t_intensity"][i]) for i in idx]
                for m, g in data.items():
                    png = plots.png_b64(plots.strip([g["grid_in"][f], *[g["grid_out"][f, i] for i in idx],
                                                     g["grid_att"][f, idx[-1]]], scale=1 if g["grid_in"].shape[1] >= 64 else 2))
                    rows.append({"au": a, "model": m, "png": png})
            grids.append({"test_set": ts, "face_id": f, "rows": rows, "levels": levels})
    return grids
