"""On-disk cache of per-image judge outputs, keyed by the image's bytes and the judge.

Key = sha1(judge id, image shape, image bytes), where the judge id names the judge, its
preprocessing version and a digest of its model file: changing any of them misses the
cache instead of returning stale rows. Layout: ``<root>/<judge id>/<k[:2]>/<k>.npy``,
one float32 row per image, written atomically (a killed run leaves no partial entries).
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Callable

import numpy as np

from aukit import atomic


def image_key(judge_id: str, image: np.ndarray, extra: str = "") -> str:
    """Hex sha1 identifying ``image`` (uint8 array) for ``judge_id`` (+ call options)."""
    h = hashlib.sha1()
    h.update(f"{judge_id}|{extra}|{image.dtype}|{image.shape}|".encode())
    h.update(np.ascontiguousarray(image).data)
    return h.hexdigest()


class FeatureCache:
    """A folder of cached rows. Safe for concurrent readers/writers (atomic renames)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def _path(self, judge_id: str, key: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in judge_id)
        return self.root / safe / key[:2] / f"{key}.npy"

    def get(self, judge_id: str, key: str) -> np.ndarray | None:
        path = self._path(judge_id, key)
        if not path.is_file():
            return None
        try:
            return np.load(path, allow_pickle=False)
        except (ValueError, OSError):  # a damaged entry is recomputed, not trusted
            return None

    def put(self, judge_id: str, key: str, row: np.ndarray) -> None:
        buf = io.BytesIO()
        np.save(buf, np.asarray(row, dtype=np.float32), allow_pickle=False)
        atomic.write_bytes(self._path(judge_id, key), buf.getvalue())

    def map(self, judge_id: str, images: list[np.ndarray],
            compute: Callable[[list[np.ndarray], list[int]], np.ndarray],
            extras: list[str] | None = None) -> np.ndarray:
        """Rows for ``images``: cached ones loaded, the rest from ``compute(images, idx)``.

        ``compute`` gets the missing images and their indices in ``images`` and returns an
        (n_missing, D) array. ``extras``: per-image strings that also shape the result
        (e.g. a digest of given landmarks). Returns (N, D) float32.
        """
        extras = extras or [""] * len(images)
        keys = [image_key(judge_id, im, ex) for im, ex in zip(images, extras)]
        rows: list[np.ndarray | None] = [self.get(judge_id, k) for k in keys]
        missing = [i for i, r in enumerate(rows) if r is None]
        if missing:
            new = np.asarray(compute([images[i] for i in missing], missing), dtype=np.float32)
            for i, row in zip(missing, new):
                self.put(judge_id, keys[i], row)
                rows[i] = row
        if not rows:
            return np.zeros((0, 0), np.float32)
        return np.stack([np.asarray(r, dtype=np.float32) for r in rows])
