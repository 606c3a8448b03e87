"""Calibrate the ``geometric`` annotator on renders, whose AUs are exact.

    python -m annotate.geometric_calibrate runs/cnn_data/s11 [more rendered folders] \\
        [--n 4000] [--out runs/geometric_calibration.json]

Use the result with ``--set annotator_options.calibration=runs/geometric_calibration.json``
(``ausynth prepare``) or ``create("geometric", calibration=...)``. Off by default: on the
real-face dev split it did not help (docs/annotators.md).

1. MediaPipe landmarks of each rendered image (``aukit.faces``; the same detector and mesh
   the annotator sees on photos), cached next to the run in ``--landmarks-cache``.
2. The uncalibrated geometric fit (:func:`annotate.geometric.fit_au17`) of each face.
3. Per GANimation AU: isotonic regression of the true intensity on the fitted one, over
   the renderer's *train* split (faces less than 5% occluded, |yaw| <= 30 deg), reduced to
   at most ``--knots`` monotone knots. The renderer's identity-disjoint *test* split gives
   the before/after MAE and correlation printed (and stored in the file's ``source``).

A flat map means the fitted AU carries no information about the true one (on renders):
it then adds a near-constant to every face, which keeps it from adding noise to a sum.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from annotate.geometric import Calibration, GeometricConfig, fit_au17
from aukit.aus import FACS_MAX, GANIMATION_AUS, RIG_AUS, rig_to_ganimation
from aukit.stats import column_pearson


def collect_landmarks(roots: list[Path], n: int, cache: Path | None) -> dict[str, np.ndarray]:
    """MediaPipe landmarks + exact labels of up to ``n`` rendered samples (cached)."""
    if cache is not None and cache.is_file():
        with np.load(cache, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    from PIL import Image

    from aukit.faces import FaceAnalyzer

    rows: dict[str, list] = {k: [] for k in ("landmarks", "aus", "yaw", "occluded", "test")}
    per_root = int(np.ceil(n / len(roots)))
    with FaceAnalyzer() as fa:
        for root in roots:
            for path in sorted((root / "meta").glob("*.json"))[:per_root]:
                meta = json.loads(path.read_text())
                image = np.asarray(Image.open(root / meta["image"]).convert("RGB"))
                face = fa.largest_face(image, allow_tiny=True)
                if face is None:
                    continue
                spec = meta["spec"]
                for key, val in (("landmarks", face.landmarks), ("aus", [spec["aus"][a] for a in RIG_AUS]),
                                 ("yaw", spec["pose"]["yaw"]), ("occluded", meta.get("occluded_face_fraction", 0.0)),
                                 ("test", meta["split"] == "test")):
                    rows[key].append(val)
    data = {k: np.asarray(v) for k, v in rows.items()}
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, **data)
    return data


def fit_all(landmarks: np.ndarray, cfg: GeometricConfig) -> np.ndarray:
    """(N, 17) uncalibrated geometric AUs of (N, 478, 3) landmarks."""
    return np.stack([fit_au17(lm, cfg)[0] for lm in landmarks])


def monotone_knots(fitted: np.ndarray, true: np.ndarray, knots: int) -> tuple[list[float], list[float]]:
    """Isotonic map ``fitted -> true`` as at most ``knots`` (x, y) pairs over [0, 5]."""
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(y_min=0.0, y_max=FACS_MAX, increasing=True, out_of_bounds="clip")
    iso.fit(fitted, true)
    qs = np.unique(np.concatenate([[0.0], np.quantile(fitted, np.linspace(0, 1, knots - 1)), [FACS_MAX]]))
    ys = np.maximum.accumulate(iso.predict(qs))
    return [round(float(x), 4) for x in qs], [round(float(y), 4) for y in ys]


def calibrate(fitted: np.ndarray, true: np.ndarray, knots: int) -> Calibration:
    """Per-AU monotone calibration from (N, 17) fitted and true intensities."""
    kx, ky = {}, {}
    for k, name in enumerate(GANIMATION_AUS):
        kx[name], ky[name] = monotone_knots(fitted[:, k], true[:, k], knots)
    return Calibration(kx, ky, {})


def report(fitted: np.ndarray, true: np.ndarray) -> dict[str, dict[str, float]]:
    """Per AU: MAE and Pearson correlation (NaN when either side is constant)."""
    r = column_pearson(fitted, true)
    mae = np.abs(fitted - true).mean(0)
    return {name: {"mae": round(float(mae[k]), 3), "r": round(float(r[k]), 3)} for k, name in enumerate(GANIMATION_AUS)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("datasets", nargs="+", type=Path, help="rendered dataset folders")
    p.add_argument("--n", type=int, default=4000, help="rendered samples to use (split over the folders)")
    p.add_argument("--knots", type=int, default=10)
    p.add_argument("--landmarks-cache", type=Path, default=Path("runs/geometric_calibration_landmarks.npz"))
    p.add_argument("--out", type=Path, default=Path("runs/geometric_calibration.json"))
    args = p.parse_args(argv)
    t0 = time.time()
    data = collect_landmarks(args.datasets, args.n, args.landmarks_cache)
    cfg = GeometricConfig()
    fitted = fit_all(data["landmarks"], cfg)
    true = rig_to_ganimation(data["aus"].astype(np.float64))
    usable = (data["occluded"] < 0.05) & (np.abs(data["yaw"]) <= 30.0)
    train, test = usable & ~data["test"], usable & data["test"]
    cal = calibrate(fitted[train], true[train], args.knots)
    before, after = report(fitted[test], true[test]), report(cal.apply(fitted[test]), true[test])
    for name in GANIMATION_AUS:
        print(f"{name}: MAE {before[name]['mae']:.2f} -> {after[name]['mae']:.2f}   r {before[name]['r']:.2f}")
    source: dict[str, Any] = {
        "datasets": [str(d) for d in args.datasets], "faces_detected": int(len(true)),
        "calibration_faces": int(train.sum()), "check_faces": int(test.sum()),
        "rule": "isotonic regression true ~ fitted per AU; train split, occluded < 5%, |yaw| <= 30",
        "check_before": before, "check_after": after, "fit": {"z_weight": cfg.z_weight, "fixed_aus": list(cfg.fixed_aus)}}
    out = Calibration(cal.knots_x, cal.knots_y, source)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out.to_json(), indent=1) + "\n")
    print(f"wrote {args.out} ({time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
