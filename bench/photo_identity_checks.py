"""Checks of photo-reconstructed identities on the real faces in ``../shared/data/real_faces``.

Builds identities from ``--n`` real photos (one photo per person; ``--source-emotion``
chooses which labelled photos, default neutral), renders them, and measures:

(a) **Landmarks**: MediaPipe face mesh (``aukit.faces``) run again on renders at neutral
    and at random AUs (the render config's expression sampler), pose drawn inside each
    identity's default photo pose range (``synth.identity.photo_pool.allowed_pose``);
    NME = mean 2D distance over the 478 landmarks / outer-eye-corner distance (33-263) of
    the ground truth. Must be < 0.05 on median.
(b) **Identity**: dlib ResNet embedding distance (``eval.judges.identity``) between the
    source photo and its neutral re-render (at the source pose; also reported frontal).
    Must be < 0.6 for >= 95% of identities.
(c) **Expressions**: FER2013 (``eval.judges.expression``) on rendered EMFACS happiness and
    surprise prototypes (``aukit.aus.EMOTION_PROTOTYPES``, scale 1) at the source pose:
    rate classified happy / surprise, against the same classifier's recall on real happy
    and surprised photos of real_faces, measured in the same run. Must be >= those.

Also reported: FER on the neutral renders and on their source photos (the classifier
leans to sad/angry on these real neutral faces; the renders inherit it), rates at
prototype scale 1.25, render refusals (hole guard), timing. Prints and writes
``bench/results/photo_identity_checks.json`` and a contact sheet next to it.

    nice python bench/photo_identity_checks.py [--n 200] [--workers 2] [--size 128]
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

DATA = REPO.parent / "shared" / "data" / "real_faces"
RESULTS = REPO / "bench" / "results"


def pick_photos(rows, n, emotion, rng):
    """One photo per person, persons in random order, photos labelled ``emotion``."""
    by_person: dict[str, list[dict]] = {}
    for r in rows:
        if emotion == "any" or r["emotion"] == emotion:
            by_person.setdefault(r["identity"], []).append(r)
    persons = sorted(by_person)
    order = rng.permutation(len(persons))
    return [by_person[persons[i]][int(rng.integers(len(by_person[persons[i]])))] for i in order[:n]]


def nme(pred: np.ndarray, gt: np.ndarray) -> float:
    iod = float(np.linalg.norm(gt[33, :2] - gt[263, :2]))
    return float(np.mean(np.linalg.norm(pred[:, :2] - gt[:, :2], axis=1)) / iod)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200, help="identities (persons) to reconstruct")
    ap.add_argument("--real", type=int, default=600, help="real happy photos for the FER reference (all surprised)")
    ap.add_argument("--source-emotion", default="neutral", help="label of the source photos (or 'any')")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--size", type=int, default=128, help="render size (px)")
    ap.add_argument("--random-aus", type=int, default=2, help="renders with random AUs per identity")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", default=None, help="identity folder (default: user cache/bench_real_faces)")
    ap.add_argument("--tag", default="", help="suffix of the result files")
    args = ap.parse_args()
    if not DATA.is_dir():
        print(f"needs {DATA} (development data)", file=sys.stderr)
        return 2

    from aukit.aus import EMOTION_PROTOTYPES
    from aukit.faces import FaceAnalyzer
    from aukit.imageio import load_image
    from eval.judges.expression import FER_CLASSES, ExpressionJudge
    from eval.judges.identity import IdentityJudge, distance
    from synth.config import SynthConfig
    from synth.identity.build import build_identities, cache_dir
    from synth.identity.photo import read_meta
    from synth.identity.photo_pool import allowed_pose, list_identity_files
    from synth.identity.photo_scene import PhotoHoleError
    from synth.identity.sheet import identity_sheet, photo_spec
    from synth.render import make_renderer
    from synth.rig import HeadRig
    from synth.sampling import sample_aus, sample_pose
    from synth.scene import IdentityCache, build_scene

    t_start = time.time()
    rng = np.random.default_rng(args.seed)
    rows = list(csv.DictReader(open(DATA / "labels.csv")))
    picks = pick_photos(rows, args.n, args.source_emotion, rng)
    out = Path(args.cache) if args.cache else cache_dir() / "bench_real_faces"
    inputs = [DATA / "images" / r["image"] for r in picks]
    persons = {str(p.resolve()): r["identity"] for p, r in zip(inputs, picks)}
    t0 = time.time()
    report = build_identities([p.resolve() for p in inputs], out, workers=args.workers, progress=True,
                              persons=persons)
    build_s = time.time() - t0
    by_source = {read_meta(f)["source"]: f for f in list_identity_files(str(out))}
    ids = [(r, by_source[str(p.resolve())]) for p, r in zip(inputs, picks) if str(p.resolve()) in by_source]
    print(f"{len(ids)} identities of {len(picks)} photos ({report['skip_reasons']})", flush=True)

    cfg = SynthConfig()
    rig = HeadRig()
    cache = IdentityCache(rig)
    renderer = make_renderer("pyrender", args.size, antialias="ssaa2")
    fer = ExpressionJudge()
    dlib = IdentityJudge()
    faces = FaceAnalyzer()
    rec = {"nme_neutral": [], "nme_random": [], "dlib_source_pose": [], "dlib_frontal": [],
           "happy": [], "surprise": [], "neutral_fer": [], "source_fer": [], "happy_125": [], "surprise_125": [],
           "refused": 0, "undetected": 0, "rendered": 0}
    t0 = time.time()
    for k, (row, path) in enumerate(ids):
        meta = read_meta(path)
        src = meta["fit"]["pose"]
        allowed = allowed_pose(cfg, meta)
        srng = np.random.default_rng([args.seed, k])

        def render(aus, pose, _path=path):
            try:
                out_ = renderer.render(build_scene(photo_spec(_path, aus, pose, args.size), rig, cache))
                rec["rendered"] += 1
                return out_
            except PhotoHoleError:
                rec["refused"] += 1
                return None

        def measure(out_, key):
            if out_ is None:
                return
            face = faces.largest_face(out_["rgb"], allow_tiny=True)
            if face is None:
                rec["undetected"] += 1
                return
            rec[key].append(nme(face.landmarks, out_["landmarks_2d"]))

        from synth.config import PoseConfig

        pose_cfg = PoseConfig(yaw=allowed["yaw"], pitch=allowed["pitch"], roll=allowed["roll"])
        neutral_src = render({}, dict(src))
        measure(neutral_src, "nme_neutral")
        measure(render({}, sample_pose(pose_cfg, srng)), "nme_neutral")
        for _ in range(args.random_aus):
            aus, _info = sample_aus(cfg.expression, srng)
            measure(render(aus, sample_pose(pose_cfg, srng)), "nme_random")
        # identity: source photo vs neutral re-render (source pose, and frontal within range)
        photo = load_image(DATA / "images" / row["image"])
        pf = faces.largest_face(photo, allow_tiny=True)
        frontal = {n: float(np.clip(0.0, *allowed[n])) for n in ("yaw", "pitch", "roll")}
        neutral_front = render({}, frontal)
        # a refused render counts as a failure (NaN distance, no label)
        for o, key in ((neutral_src, "dlib_source_pose"), (neutral_front, "dlib_frontal")):
            if o is not None and pf is not None:
                e = dlib.embed([photo, o["rgb"]], [pf.landmarks, o["landmarks_2d"]])
                rec[key].append(float(distance(e[0], e[1])))
            else:
                rec[key].append(float("nan"))
        if neutral_src is not None:
            rec["neutral_fer"].append(fer.run([neutral_src["rgb"]], [neutral_src["landmarks_2d"]]).labels[0])
        if pf is not None:
            rec["source_fer"].append(fer.run([photo], [pf.landmarks]).labels[0])
        for emo, key in (("happiness", "happy"), ("surprise", "surprise")):
            for scale, suffix in ((1.0, ""), (1.25, "_125")):       # the check uses scale 1
                aus = {a: min(5.0, v * scale) for a, v in EMOTION_PROTOTYPES[emo].items()}
                o = render(aus, dict(src))
                rec[key + suffix].append(fer.run([o["rgb"]], [o["landmarks_2d"]]).labels[0]
                                         if o is not None else "refused")
        if (k + 1) % 25 == 0:
            print(f"  {k + 1}/{len(ids)} identities rendered and judged ({time.time() - t0:.0f} s)", flush=True)
    render_s = time.time() - t0

    # the same classifier on real happy / surprised photos (identities not used above)
    used = {r["identity"] for r, _ in ids}
    real = {}
    for emo, fer_name in (("happiness", "happy"), ("surprise", "surprise")):
        pool = [r for r in rows if r["emotion"] == emo and r["identity"] not in used]
        sel = [pool[i] for i in rng.permutation(len(pool))[:args.real]] if emo == "happiness" else pool
        ims, lms = [], []
        for r in sel:
            im = load_image(DATA / "images" / r["image"])
            f = faces.largest_face(im, allow_tiny=True)
            if f is not None:
                ims.append(im)
                lms.append(f.landmarks)
        labels = fer.run(ims, lms).labels if ims else []
        real[emo] = {"n": len(labels), "rate": float(np.mean([lab == fer_name for lab in labels])) if labels else None}

    def stats(x):
        x = np.asarray(x, float)
        x = x[np.isfinite(x)]
        return {"n": int(len(x)), "median": float(np.median(x)) if len(x) else None,
                "mean": float(x.mean()) if len(x) else None,
                "p90": float(np.percentile(x, 90)) if len(x) else None}

    d_src = np.asarray(rec["dlib_source_pose"])
    d_fr = np.asarray(rec["dlib_frontal"])
    happy_rate = float(np.mean([x == "happy" for x in rec["happy"]])) if rec["happy"] else None
    surprise_rate = float(np.mean([x == "surprise" for x in rec["surprise"]])) if rec["surprise"] else None
    neutral_counts = {c: int(sum(x == c for x in rec["neutral_fer"])) for c in FER_CLASSES}
    source_counts = {c: int(sum(x == c for x in rec["source_fer"])) for c in FER_CLASSES}

    def rate(key, cls):
        return float(np.mean([x == cls for x in rec[key]])) if rec[key] else None
    nme_all = rec["nme_neutral"] + rec["nme_random"]
    result = {
        "data": str(DATA), "source_emotion": args.source_emotion, "n_photos": len(picks),
        "n_identities": len(ids), "build_skips": report["skip_reasons"], "render_size": args.size,
        "checks": {
            "landmark_nme_median": float(np.median(nme_all)) if nme_all else None,
            "landmark_nme_pass": bool(nme_all and np.median(nme_all) < 0.05),
            "identity_fraction_below_0.6": float((d_src < 0.6).mean()) if len(d_src) else None,
            "identity_pass": bool(len(d_src) and (d_src < 0.6).mean() >= 0.95),
            "fer_happy_rate_rendered": happy_rate, "fer_happy_rate_real": real["happiness"]["rate"],
            "fer_surprise_rate_rendered": surprise_rate, "fer_surprise_rate_real": real["surprise"]["rate"],
            "expression_pass": bool(happy_rate is not None and surprise_rate is not None
                                    and happy_rate >= real["happiness"]["rate"]
                                    and surprise_rate >= real["surprise"]["rate"]),
        },
        "nme_neutral": stats(rec["nme_neutral"]), "nme_random_aus": stats(rec["nme_random"]),
        "dlib_distance_source_pose": stats(d_src), "dlib_distance_frontal": stats(d_fr),
        "dlib_frontal_fraction_below_0.6": float((d_fr < 0.6).mean()) if len(d_fr) else None,
        "fer_real": real, "fer_on_neutral_renders": neutral_counts, "fer_on_source_photos": source_counts,
        "fer_rates_at_prototype_scale_1.25": {"happy": rate("happy_125", "happy"),
                                              "surprise": rate("surprise_125", "surprise")},
        "fer_labels_happy_renders": {c: int(sum(x == c for x in rec["happy"])) for c in FER_CLASSES},
        "fer_labels_surprise_renders": {c: int(sum(x == c for x in rec["surprise"])) for c in FER_CLASSES},
        "dlib_failures": int(np.isnan(d_src).sum()),
        "renders": rec["rendered"], "refused_by_hole_guard": rec["refused"],
        "renders_without_detected_face": rec["undetected"],
        "seconds": {"build": round(build_s, 1), "render_and_judge": round(render_s, 1),
                    "total": round(time.time() - t_start, 1)},
    }
    renderer.close()
    print(json.dumps(result, indent=1))
    RESULTS.mkdir(parents=True, exist_ok=True)
    tag = f"_{args.tag}" if args.tag else ""
    (RESULTS / f"photo_identity_checks{tag}.json").write_text(json.dumps(result, indent=1) + "\n")
    identity_sheet([p for _, p in ids[:10]], RESULTS / f"photo_identity_sheet{tag}.png", args.size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
