"""Crash-safe dataset writer shared by ``ausynth render`` and ``ausynth prepare``.

Per sample the writer stores the image, then the arrays, then ``meta/<id>.json`` (the
commit marker), each through an atomic rename. A sample counts as done only when its
meta file exists, so a run killed at any moment resumes by skipping done ids and
redoing the rest; a half-written sample is simply overwritten. ``finalize`` rebuilds
the tables (AU CSV and pickle, id lists, labels.jsonl, manifest) from the meta files,
so it is idempotent and the tables can never disagree with the images.
"""

from __future__ import annotations

import io
import json
import platform
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable

import numpy as np
from PIL import Image

from aukit import atomic
from aukit.aus import GANIMATION_AUS, RIG_AUS
from aukit.dataset import (AU_CSV, AU_PKL, IMGS, LABELS, MANIFEST, MASKS, META, SCHEMA_VERSION,
                           SPLIT_FILES, DatasetError, au_table_bytes, check_id, ids_text)
from aukit.storage import LocalStorage, Storage, open_storage

_VERSIONED = ("numpy", "scipy", "trimesh", "pyrender", "PyOpenGL", "Pillow", "py-feat",
              "mediapipe", "torch", "bpy")


def package_versions(names: Iterable[str] = _VERSIONED) -> dict[str, str]:
    """Installed versions of the packages that shape the output (absent ones omitted)."""
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    try:
        out["ausynth"] = metadata.version("ausynth")
    except metadata.PackageNotFoundError:
        pass
    return out


def encode_image(image: np.ndarray, fmt: str = "jpg", quality: int = 95) -> bytes:
    """Encode ``uint8 (H, W, 3)`` RGB as JPEG (``quality`` 1-100) or PNG (fast level 1)."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected uint8 (H, W, 3) RGB, got {image.dtype} {image.shape}")
    buf = io.BytesIO()
    pil = Image.fromarray(image)
    if fmt == "jpg":
        pil.save(buf, format="JPEG", quality=quality)
    else:
        pil.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


class DatasetWriter:
    """Writes samples into a dataset folder; safe to use from several processes at once.

    Processes must write disjoint ids. Only one process may call :meth:`finalize`.
    """

    def __init__(self, root: str | Path | Storage, image_format: str = "jpg", jpeg_quality: int = 95):
        if image_format not in ("jpg", "png"):
            raise ValueError(f"image_format must be 'jpg' or 'png', got {image_format!r}")
        self.store = root if isinstance(root, Storage) else open_storage(root)
        self.image_format = image_format
        self.jpeg_quality = jpeg_quality
        if isinstance(self.store, LocalStorage):
            for sub in (IMGS, META, MASKS):
                (self.store.root / sub).mkdir(parents=True, exist_ok=True)

    @property
    def root(self) -> Path | None:
        return self.store.local_path()

    def is_done(self, sample_id: str) -> bool:
        return self.store.exists(f"{META}/{sample_id}.json")

    def done_ids(self) -> set[str]:
        return {n[: -len(".json")] for n in self.store.list(META, ".json")}

    def write_sample(self, sample_id: str, image: np.ndarray, label: dict[str, Any],
                     arrays: dict[str, np.ndarray] | None = None) -> None:
        """Store one sample. ``label`` needs ``au17`` (17 floats, 0-5) and ``split``.

        ``arrays`` (masks, landmarks, depth, ...) go to ``masks/<id>.npz`` (compressed).
        """
        check_id(sample_id)
        au17 = np.asarray(label.get("au17", ()), dtype=np.float64)
        if au17.shape != (len(GANIMATION_AUS),) or not np.all(np.isfinite(au17)):
            raise DatasetError(f"{sample_id}: label needs 'au17' with {len(GANIMATION_AUS)} finite values")
        if label.get("split") not in SPLIT_FILES:
            raise DatasetError(f"{sample_id}: label 'split' must be one of {list(SPLIT_FILES)}")
        img_name = f"{sample_id}.{self.image_format}"
        self.store.write_bytes(f"{IMGS}/{img_name}", encode_image(image, self.image_format, self.jpeg_quality))
        meta = {"id": sample_id, "image": f"{IMGS}/{img_name}", **label}
        if arrays:
            self.store.write_bytes(f"{MASKS}/{sample_id}.npz", encode_arrays(arrays))
            meta["arrays"] = f"{MASKS}/{sample_id}.npz"
        self.store.write_bytes(f"{META}/{sample_id}.json", json.dumps(meta).encode())

    def write_encoded(self, sample_id: str, image: bytes, image_ext: str, meta: dict[str, Any],
                      arrays: bytes | None = None) -> None:
        """Store an already-encoded sample as is (format conversion keeps bytes identical)."""
        check_id(sample_id)
        self.store.write_bytes(f"{IMGS}/{sample_id}.{image_ext}", image)
        meta = {**meta, "id": sample_id, "image": f"{IMGS}/{sample_id}.{image_ext}"}
        if arrays is not None:
            self.store.write_bytes(f"{MASKS}/{sample_id}.npz", arrays)
            meta["arrays"] = f"{MASKS}/{sample_id}.npz"
        self.store.write_bytes(f"{META}/{sample_id}.json", json.dumps(meta).encode())

    def finalize(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Rebuild tables and ``manifest.json`` from every finished sample; returns the manifest."""
        if self.root is not None:
            atomic.remove_stale_temps(self.root)
        metas = [json.loads(self.store.read_bytes(f"{META}/{n}")) for n in self.store.list(META, ".json")]
        csv_bytes, pkl_bytes = au_table_bytes({m["id"]: np.asarray(m["au17"]) for m in metas})
        self.store.write_bytes(AU_CSV, csv_bytes)
        self.store.write_bytes(AU_PKL, pkl_bytes)
        for split, fname in SPLIT_FILES.items():
            ids = [m["id"] for m in metas if m["split"] == split]
            self.store.write_bytes(fname, ids_text(ids, ext=f".{self.image_format}").encode())
        self.store.write_bytes(LABELS, "".join(json.dumps(m) + "\n" for m in metas).encode())
        full = manifest_header(metas) | manifest
        self.store.write_bytes(MANIFEST, (json.dumps(full, indent=2) + "\n").encode())
        return full


def encode_arrays(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def manifest_header(metas: list[dict[str, Any]]) -> dict[str, Any]:
    """The manifest fields every dataset shares (counts, orders, scale, versions)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "n_samples": len(metas),
        "n_train": sum(m["split"] == "train" for m in metas),
        "n_test": sum(m["split"] == "test" for m in metas),
        "au_order": list(GANIMATION_AUS),
        "rig_au_order": list(RIG_AUS),
        "au_scale": "FACS intensity 0-5 (not divided by 5)",
        "versions": package_versions(),
    }
