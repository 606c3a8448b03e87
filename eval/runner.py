"""The evaluation loop behind ``ausynth eval``: judges, realism references, cells, metrics.

Resumable at two levels: a cell table on disk made with the same key (checkpoint digest,
selected faces, targets, judges) is reused instead of recomputed, and a metric line in
``metrics.jsonl`` with the same (model, test set, metric, cell key) is not appended again.
Judge outputs are also cached per image hash in ``cache/``, so even a cell killed midway
recomputes only the generator's forward passes.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from eval import metrics as M
from eval.cli import CELLS, RESULTS, write_info
from eval.config import EvalConfig
from eval.models import baseline_model
from eval.protocols import Judges, cell_key, load_cell, run_cell, save_cell
from eval.targets import build_targets
from eval.testsets import (REAL, EvalSet, describe_faces, landmarks_of, load_images, reference_faces,
                           training_identities)


def build_judges(cfg: EvalConfig, cache_dir: Path) -> tuple[Judges, dict[str, Any]]:
    """Expression, identity and (if possible) AU judges sharing one feature cache."""
    from eval.judges.cache import FeatureCache
    from eval.judges.expression import ExpressionJudge
    from eval.judges.identity import IdentityJudge
    from eval.judges._common import JudgeModelError

    cache = FeatureCache(cache_dir)
    au, note = None, None
    if cfg.judges.au:
        from eval.judges.au import AUJudge
        try:
            au = AUJudge(cfg.judges.au_annotator, size=cfg.judges.au_crop_px, cache=cache)
        except JudgeModelError as exc:
            if cfg.judges.au_annotator != "auto":
                raise
            note = f"AU metrics skipped: {exc}"
            print(f"ausynth eval: warning: {note}", file=sys.stderr)
    judges = Judges(ExpressionJudge(cache=cache), IdentityJudge(cache=cache), au)
    desc = judges.describe()
    if note:
        desc["au_note"] = note
    return judges, desc


def reference_features(sets: list[EvalSet], cfg: EvalConfig, judges: Judges, size: int
                       ) -> tuple[np.ndarray | None, dict[str, Any]]:
    """Realism reference features (R, 128) at model size ``size``, and their description."""
    want = cfg.realism.reference
    if want == "auto":
        src = next((s for s in sets if s.kind == REAL), None)
        if src is None:
            return None, {"note": "no real test set: realism metrics skipped"}
    else:
        src = next((s for s in sets if s.name == want), None)
        if src is None:
            raise ValueError(f"realism.reference {want!r} is not a --test-set name")
    faces = reference_faces(src, cfg.realism.reference_split, cfg.realism.reference_max, cfg.select.seed)
    if len(faces) < 2:
        return None, {"note": f"reference {src.name}: fewer than 2 images"}
    images = load_images([f.image for f in faces], size)
    feats = judges.expression.run(images, [landmarks_of(src.root, f, size) for f in faces]).features
    feats = feats[np.isfinite(feats).all(1)]
    return feats, {"test_set": src.name, "split": cfg.realism.reference_split,
                   "excludes": "the faces selected for editing", "n_used": int(len(feats)), **describe_faces(faces)}


def identity_overlap(plan: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Per model and test set: selected test faces whose identity is in the model's training
    data (0 = identity-disjoint, the protocol's requirement); warns otherwise."""
    out: dict[str, dict[str, int]] = {}
    for model in plan["models"]:
        seen: set[str] = set()
        for src in model.info.get("sources", []):
            seen |= training_identities(src["path"])
        out[model.name] = {}
        for ts in plan["sets"]:
            n = sum(f.identity in seen for f in ts.faces if f.identity is not None)
            out[model.name][ts.name] = n
            if n:
                print(f"ausynth eval: warning: {n} test face(s) of {ts.name} share an identity with "
                      f"{model.name}'s training data", file=sys.stderr)
    return out


def run_evaluation(plan: dict[str, Any], cfg: EvalConfig, out: Path, metric_names: list[str] | None,
                   progress: bool = True) -> None:
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(cfg.cpu_threads)
    models = list(plan["models"])
    sizes = sorted({m.image_size for m in models}) or [64]
    if cfg.baseline:
        models += [baseline_model(s) for s in sizes]
        if len(sizes) > 1:  # one baseline row per image size, named apart
            for m in models[-len(sizes):]:
                m.name = f"{m.name}-{m.image_size}px"
    plan["all_models"] = models
    judges, judge_desc = build_judges(cfg, out / "cache")
    targets = build_targets(cfg.targets.aus, cfg.targets.intensities, cfg.targets.emotions)
    refs = {s: reference_features(plan["sets"], cfg, judges, s) for s in sizes}
    write_info(out, cfg, plan, judge_desc, {"realism_reference": {str(s): r[1] for s, r in refs.items()},
                                            "targets": [t.label for t in targets],
                                            "identity_overlap": identity_overlap(plan)})
    done = M.done_keys(out / RESULTS)
    weights_of: dict[int, np.ndarray] = {}
    total = sum(len(s.faces) * len(targets) for s in plan["sets"]) * len(models)
    bar = tqdm(total=total, unit="edit", disable=not progress, desc="eval")
    for model in models:
        for ts in plan["sets"]:
            key = cell_key(model, ts, targets, judges, cfg)
            path = out / CELLS / f"{model.name}__{ts.name}.npz"
            t0 = time.time()
            table = load_cell(path, key)
            if table is None:
                bar.set_postfix_str(f"{model.name} x {ts.name}")
                table = run_cell(model, ts, targets, judges, cfg, key, plan["device"], bar.update)
                save_cell(path, table)
            else:
                bar.update(len(ts.faces) * len(targets))
            n_f = len(ts.faces)
            weights = weights_of.setdefault(n_f, M.make_weights(n_f, cfg.stats.n_boot, cfg.stats.seed))
            cell = M.CellData(table, weights, ts.exact, refs[model.image_size][0], cfg.stats.ci,
                              cfg.realism.max_boot)
            names = [n for n in (metric_names or list(M.METRICS))
                     if (model.name, ts.name, n, key) not in done]
            if not names:
                continue
            results = M.compute(cell, names, judges.au is not None)
            M.append_results(out / RESULTS, model.name, ts.name, key, results,
                             {"ci": cfg.stats.ci, "n_boot": cfg.stats.n_boot,
                              "cell_seconds": round(time.time() - t0, 1)})
    bar.close()
