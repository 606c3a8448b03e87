"""Rendered datasets -> in-memory training arrays for the AU CNN (torch-free).

Reads ``ausynth render`` folders from disk (never imports ``synth``): each finished sample
has ``meta/<id>.json`` (written last by the renderer) and ``imgs/<id>.<ext>``. Per sample we
keep:

* ``images``: uint8 (N, L, L) grayscale at ``load_size`` L (decoded once; BT.601 luma);
* ``aus``: float32 (N, 22) exact FACS 0-5 intensities of every rig AU (``RIG_AUS`` order,
  from ``spec.aus``);
* ``weights``: float32 (N, 22) loss weight per AU: ``max(1 - au_occlusion, floor)`` for
  active AUs whose region an occluder hides, 1 elsewhere;
* ``visible``: float32 (N,) unoccluded face fraction, ``pose``: float32 (N, 3) yaw, pitch,
  roll in degrees; ``prototype``: bool (N,) drawn from an emotion prototype;
  ``test``: bool (N,) in the renderer's identity-disjoint test split.

Decoding 40k JPEGs takes minutes here, so the arrays are cached as one ``.npz`` per
dataset folder and ``load_size``, keyed by the folder's finished sample count.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from aukit.aus import RIG_AUS
from aukit.dataset import IMGS, META

FIELDS = ("images", "aus", "occlusion", "visible", "pose", "prototype", "test")


@dataclass(frozen=True)
class SynthArrays:
    """Training arrays (see the module docstring for shapes and units)."""

    images: np.ndarray
    aus: np.ndarray
    occlusion: np.ndarray       # (N, 22) fraction of each active AU's region hidden (0 if none)
    visible: np.ndarray
    pose: np.ndarray
    prototype: np.ndarray
    test: np.ndarray

    def __len__(self) -> int:
        return len(self.aus)

    def weights(self, floor: float) -> np.ndarray:
        """(N, 22) per-AU loss weights: ``max(1 - occlusion, floor)``."""
        return np.maximum(1.0 - self.occlusion, floor).astype(np.float32)

    def take(self, idx: np.ndarray) -> "SynthArrays":
        return SynthArrays(*(getattr(self, f)[idx] for f in FIELDS))

    @staticmethod
    def concat(parts: list["SynthArrays"]) -> "SynthArrays":
        if not parts:
            raise ValueError("no rendered samples found in the configured datasets")
        return SynthArrays(*(np.concatenate([getattr(p, f) for p in parts]) for f in FIELDS))


def finished_ids(root: Path) -> list[str]:
    """Ids of the finished samples of a dataset folder (those with a meta file), sorted."""
    return sorted(p.stem for p in (root / META).glob("*.json"))


def decode_gray(path: Path, size: int) -> np.ndarray:
    """Image file -> uint8 (size, size) grayscale (bilinear with antialiasing)."""
    with Image.open(path) as im:
        g = im.convert("L")
        if g.size != (size, size):
            g = g.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=None)
        return np.asarray(g, dtype=np.uint8)


def read_sample(root: Path, sample_id: str, size: int) -> dict[str, np.ndarray]:
    """One sample's fields (see :class:`SynthArrays`) from its meta file and image."""
    meta = json.loads((root / META / f"{sample_id}.json").read_text())
    spec = meta["spec"]
    occ = meta.get("au_occlusion", {})
    image = root / meta.get("image", f"{IMGS}/{sample_id}.jpg")
    return {
        "images": decode_gray(image, size),
        "aus": np.array([spec["aus"].get(a, 0.0) for a in RIG_AUS], np.float32),
        "occlusion": np.array([occ.get(a, 0.0) for a in RIG_AUS], np.float32),
        "visible": np.float32(1.0 - meta.get("occluded_face_fraction", 0.0)),
        "pose": np.array([spec["pose"][k] for k in ("yaw", "pitch", "roll")], np.float32),
        "prototype": np.bool_(spec.get("expression", {}).get("strategy") == "prototype"),
        "test": np.bool_(meta.get("split", spec.get("split")) == "test"),
    }


def read_dataset_arrays(root: str | Path, size: int, cache_dir: str | Path | None = None,
                        log: bool = True) -> SynthArrays:
    """All finished samples of one rendered folder, via the cache when it is current."""
    root = Path(root)
    if not (root / META).is_dir():
        raise FileNotFoundError(f"{root} is not a rendered dataset (no {META}/ folder)")
    ids = finished_ids(root)
    cache = _cache_path(root, size, ids, cache_dir)
    if cache is not None and cache.is_file():
        with np.load(cache, allow_pickle=False) as z:
            return SynthArrays(*(z[f] for f in FIELDS))
    rows = []
    for k, sid in enumerate(ids):
        rows.append(read_sample(root, sid, size))
        if log and (k + 1) % 5000 == 0:
            print(f"  decoded {k + 1}/{len(ids)} samples of {root}", flush=True)
    arrays = SynthArrays(*(np.stack([r[f] for r in rows]) if rows else np.zeros((0,)) for f in FIELDS))
    if cache is not None and rows:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(cache.name + ".tmp.npz")
        np.savez(tmp, **{f: getattr(arrays, f) for f in FIELDS})
        tmp.replace(cache)
    return arrays


def _cache_path(root: Path, size: int, ids: list[str], cache_dir: str | Path | None) -> Path | None:
    """Cache file for this folder's current samples. The key covers each label file's size
    and modification time, so re-rendering a folder in place (same path, same count, e.g.
    after a rig change) never trains on the old decoded arrays."""
    if cache_dir is None:
        return None
    return Path(cache_dir) / f"{folder_key(root, ids)}-{size}px-{len(ids)}.npz"


def folder_key(root: Path, ids: list[str]) -> str:
    """``<folder name>-<12 hex>``: changes whenever a finished sample's label file does."""
    h = hashlib.sha1(str(root.resolve()).encode())
    for sid in ids:
        st = (root / META / f"{sid}.json").stat()
        h.update(f"{sid}:{st.st_size}:{st.st_mtime_ns};".encode())
    return f"{root.name}-{h.hexdigest()[:12]}"


def load_training_arrays(datasets: tuple[str, ...], size: int, cache_dir: str | None,
                         max_samples: int = 0, log: bool = True) -> SynthArrays:
    """Concatenate the arrays of ``datasets`` (optionally the first ``max_samples``)."""
    data = SynthArrays.concat([read_dataset_arrays(d, size, cache_dir, log) for d in datasets])
    return data.take(np.arange(min(len(data), max_samples))) if max_samples else data
