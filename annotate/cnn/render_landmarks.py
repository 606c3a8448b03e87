"""MediaPipe landmarks of rendered faces, the training input of the landmark branch.

The branch must learn from the landmarks MediaPipe *finds* on a render (with its biases),
not the rig's exact ones, because at annotation time it only ever sees MediaPipe's. Each
finished sample's image goes through the same detector and crop rule as a real photo in
``prepare`` (:mod:`aukit.faces`, :mod:`aukit.crop`); a render where no face is found is
left out. Results are cached per folder (``<cache_dir>/<folder key>-landmarks3-<N>.npz``),
keyed like the decoded images (:func:`annotate.cnn.data.folder_key`).

Arrays: ``landmarks`` float32 (N, 478, 3) in pixels of a 128 px crop; ``au17`` float32
(N, 17) exact FACS 0-5 (the sample's ``au17`` label); ``occluded`` float32 (N,) fraction of
the face hidden by occluders; ``test`` bool (N,) identity-disjoint test split;
``strategy`` str (N,) how the sample's expression was drawn (``spec.expression.strategy``:
``neutral``, ``sparse``, ``prototype``, ``dataset``; ``""`` if the label does not say);
``row`` int64 (N,) the sample's position among the folder's finished samples (the order
:func:`annotate.cnn.data.load_training_arrays` concatenates, so ``data.max_samples`` cuts
both fits at the same renders).
"""

from __future__ import annotations

import json
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from annotate.cnn.data import finished_ids, folder_key
from aukit.dataset import IMGS, META

FIELDS = ("landmarks", "au17", "occluded", "test", "strategy", "row")
CACHE_TAG = "landmarks3"   # bumped when FIELDS change, so an older cache is recomputed
CROP = 128
_ANALYZER = None


def _init_worker() -> None:
    global _ANALYZER
    from aukit.faces import FaceAnalyzer

    _ANALYZER = FaceAnalyzer()


def _one(args: tuple[str, str, int]) -> dict[str, np.ndarray] | None:
    """Landmarks and labels of one sample, or None (no face found, unreadable image)."""
    from aukit.crop import crop_box
    from aukit.imageio import ImageError, load_image

    root, sid, row = Path(args[0]), args[1], args[2]
    meta = json.loads((root / META / f"{sid}.json").read_text())
    try:
        image = load_image(root / meta.get("image", f"{IMGS}/{sid}.jpg"))
    except ImageError:
        return None
    face = _ANALYZER.largest_face(image, allow_tiny=True)
    if face is None:
        return None
    box = crop_box(face.landmarks[:, :2])
    return {"landmarks": box.landmarks_to_crop(face.landmarks, CROP), "au17": np.asarray(meta["au17"], np.float32),
            "occluded": np.float32(meta.get("occluded_face_fraction", 0.0)),
            "test": np.bool_(meta.get("split") == "test"),
            "strategy": np.str_(meta.get("spec", {}).get("expression", {}).get("strategy") or ""),
            "row": np.int64(row)}


def folder_landmarks(root: str | Path, cache_dir: str | Path | None, workers: int = 2,
                     log: bool = True) -> dict[str, np.ndarray]:
    """Landmarks and labels of every finished sample of one rendered folder (cached)."""
    root = Path(root)
    if not (root / META).is_dir():
        raise FileNotFoundError(f"{root} is not a rendered dataset (no {META}/ folder)")
    ids = finished_ids(root)
    cache = None if cache_dir is None else Path(cache_dir) / f"{folder_key(root, ids)}-{CACHE_TAG}-{len(ids)}.npz"
    if cache is not None and cache.is_file():
        with np.load(cache, allow_pickle=False) as z:
            return {f: z[f] for f in FIELDS}
    jobs = [(str(root), sid, k) for k, sid in enumerate(ids)]
    rows: list[dict[str, np.ndarray]] = []
    with get_context("spawn").Pool(max(1, workers), initializer=_init_worker) as pool:
        for k, row in enumerate(pool.imap(_one, jobs, chunksize=32)):
            if row is not None:
                rows.append(row)
            if log and (k + 1) % 2000 == 0:
                print(f"  landmarks: {k + 1}/{len(ids)} renders of {root}, {len(rows)} faces found", flush=True)
    out = {f: np.stack([r[f] for r in rows]) if rows else np.zeros((0,)) for f in FIELDS}
    if cache is not None and rows:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(cache.name + ".tmp.npz")
        np.savez(tmp, **out)
        tmp.replace(cache)
    return out


def training_landmarks(datasets: tuple[str, ...], cache_dir: str | Path | None, max_occluded: float,
                       workers: int = 2, exclude: tuple[str, ...] = (),
                       max_samples: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(landmarks (N, 478, 3), au17 (N, 17)) of the *train* split of ``datasets``, faces
    hidden by more than ``max_occluded`` left out (an occluder moves MediaPipe's mesh), and
    samples whose expression strategy is in ``exclude`` left out. ``max_samples`` > 0: only
    the first that many renders of the concatenated folders, like the CNN's
    ``data.max_samples``."""
    parts, first_row = [], 0          # first_row: this folder's first render in the concatenation
    for d in datasets:
        part = folder_landmarks(d, cache_dir, workers)
        if max_samples:
            part = {f: part[f][part["row"] < max_samples - first_row] for f in FIELDS}
            first_row += len(finished_ids(Path(d)))
        parts.append(part)
    parts = [p for p in parts if len(p["au17"])]
    if not parts:
        raise ValueError("no face was found on any render of the configured datasets")
    lm = np.concatenate([p["landmarks"] for p in parts])
    au = np.concatenate([p["au17"] for p in parts])
    keep = ~np.concatenate([p["test"] for p in parts]) & (np.concatenate([p["occluded"] for p in parts]) <= max_occluded)
    keep &= ~np.isin(np.concatenate([p["strategy"] for p in parts]), list(exclude))
    if not keep.any():
        raise ValueError(f"no training render is left for the landmark branch after leaving out "
                         f"occluded faces and the strategies {list(exclude)}")
    return lm[keep], au[keep]
