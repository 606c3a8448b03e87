"""Rebuild ``assets/landmark_prior.json``: the rig-frame offset between MediaPipe's landmarks of
real neutral faces and the rig's neutral mesh (used by ``aukit.fitting`` as the fit's neutral).

Method: MediaPipe landmarks (``aukit.faces``) of ``--n`` photos labelled *neutral* in
``../shared/data/real_faces`` (seeded sample), a pose + shape fit without AUs and without
the prior, the per-vertex rig-frame residual ("detail"); the median over near-frontal
faces (|yaw|, |pitch| < 20 deg), made left/right symmetric. Prints and writes
``bench/results/photo_fit_calibration.json`` (with the AU statistics of the fit with the
new prior on held-out neutral and happy photos).

    python bench/photo_fit_calibration.py [--n 2000] [--write-asset]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from aukit.aus import RIG_AUS  # noqa: E402
from aukit.basis import load_basis  # noqa: E402
from aukit.fitting import PRIOR_FILE, FitOptions, fit_landmarks, landmark_prior  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "real_faces"


def landmarks_of(rows, analyzer):
    from aukit.imageio import load_image

    out = []
    for r in rows:
        face = analyzer.largest_face(load_image(DATA / "images" / r["image"]))
        out.append(None if face is None else face.landmarks.astype(np.float64))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--write-asset", action="store_true", help="overwrite assets/landmark_prior.json")
    args = ap.parse_args()
    if not DATA.is_dir():
        print(f"needs {DATA}", file=sys.stderr)
        return 2
    from aukit.faces import FaceAnalyzer

    rows = list(csv.DictReader(open(DATA / "labels.csv")))
    rng = np.random.default_rng(args.seed)
    neutral = [r for r in rows if r["emotion"] == "neutral"]
    happy = [r for r in rows if r["emotion"] == "happiness"]
    pick = [neutral[i] for i in rng.choice(len(neutral), min(args.n, len(neutral)), replace=False)]
    train_ids = {r["identity"] for r in pick}
    held_n = [r for r in neutral if r["identity"] not in train_ids][:200]
    held_h = [r for r in happy if r["identity"] not in train_ids][:200]
    t0 = time.time()
    with FaceAnalyzer() as fa:
        lms = [x for x in landmarks_of(pick, fa) if x is not None]
        held = {"neutral": landmarks_of(held_n, fa), "happiness": landmarks_of(held_h, fa)}
    b = load_basis()
    details, poses = [], []
    for lm in lms:
        f = fit_landmarks(lm, b, FitOptions(fit_aus=False, landmark_prior=False))
        details.append(f.detail)
        poses.append([f.pose["yaw"], f.pose["pitch"]])
    details, poses = np.array(details), np.array(poses)
    frontal = (np.abs(poses) < 20).all(1)
    off = np.median(details[frontal], axis=0)
    off = 0.5 * (off + off[b.mirror] * np.array([-1.0, 1.0, 1.0]))
    off[468:] = 0.0
    # with the offset as the neutral: AU activations of the calibration faces themselves;
    # their upper quartile is the "neutral allowance" (what neutral faces fit anyway)
    import aukit.fitting as fitting

    saved = fitting.landmark_prior
    fitting.landmark_prior = lambda: off          # type: ignore[assignment]
    try:
        cal_aus = np.array([fit_landmarks(lm, b).aus for lm, keep in zip(lms, frontal) if keep])
    finally:
        fitting.landmark_prior = saved
    allowance = {a: round(float(np.percentile(cal_aus[:, i], 75)), 3) for i, a in enumerate(RIG_AUS)}
    if args.write_asset:
        asset = {
            "description": "Rig-frame offset (cm) from the rig's neutral mesh to MediaPipe's landmarks of real "
                           "neutral faces: median residual of a pose+shape fit (no AUs) over near-frontal neutral "
                           "photos of the real_faces set, left/right symmetrised. aukit.fitting adds it to the "
                           "neutral so that AUs explain expressions, not MediaPipe's idea of a face.",
            "built_by": "bench/photo_fit_calibration.py", "n_faces": int(frontal.sum()), "seed": args.seed,
            "neutral_allowance": allowance,
            "allowance_description": "per-AU 75th percentile of the fitted AUs of the same neutral faces: "
                                     "photo identities remove only the excess over it (the rest is identity)",
            "offset_cm": np.round(off, 4).tolist(),
        }
        (REPO / "assets" / PRIOR_FILE).write_text(json.dumps(asset) + "\n")
        landmark_prior.cache_clear()
    stats = {}
    for emo, items in held.items():
        aus = np.array([fit_landmarks(x, b).aus for x in items if x is not None])
        stats[emo] = {a: round(float(aus[:, i].mean()), 3) for i, a in enumerate(RIG_AUS)}
    result = {"n_calibration_faces": int(frontal.sum()), "offset_max_cm": round(float(np.abs(off).max()), 3),
              "offset_mean_norm_cm": round(float(np.linalg.norm(off, axis=1).mean()), 3),
              "neutral_allowance": allowance, "held_out_mean_aus": stats, "seconds": round(time.time() - t0, 1),
              "asset_written": bool(args.write_asset)}
    print(json.dumps(result, indent=1))
    out = REPO / "bench" / "results" / "photo_fit_calibration.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
