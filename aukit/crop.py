"""The face-crop rule shared by the renderer (synthetic) and ``prepare``/``edit`` (real photos).

Rule (GANimation/EmotioNet-style tight crop, axis-aligned, head roll kept in the image):
take the bounding box of the 68-point landmarks (jaw, brows, nose, eyes, mouth),
``side = CROP_SCALE * max(width, height)``, and centre the square box on the landmark box
centre moved up by ``CROP_LIFT * side``. With the defaults the brows sit ~12% below the
top edge and the chin touches the bottom edge, as in the official GANimation samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from aukit.landmarks import LM68

CROP_SCALE = 1.15
CROP_LIFT = 0.06


@dataclass(frozen=True)
class CropBox:
    """Square crop in pixel coordinates (x right, y down): centre and side length, pixels."""

    cx: float
    cy: float
    side: float

    @property
    def x0(self) -> float:
        return self.cx - self.side / 2

    @property
    def y0(self) -> float:
        return self.cy - self.side / 2

    def to_crop(self, xy: np.ndarray, size: int) -> np.ndarray:
        """Map ``(N, 2)`` image pixel coords into ``size``-pixel crop coords."""
        s = size / self.side
        return (np.asarray(xy, dtype=np.float64) - [self.x0, self.y0]) * s

    def landmarks_to_crop(self, landmarks: np.ndarray, size: int) -> np.ndarray:
        """``(N, 3)`` image-pixel landmarks (MediaPipe: z in x's pixel units) -> float32
        ``(N, 3)`` in ``size``-pixel crop coords, z scaled alike: what annotators are given."""
        lm = np.asarray(landmarks)
        return np.concatenate([self.to_crop(lm[:, :2], size), lm[:, 2:3] * (size / self.side)],
                              axis=1).astype(np.float32)

    def as_list(self) -> list[float]:
        return [float(self.cx), float(self.cy), float(self.side)]


def crop_box(landmarks: np.ndarray, scale: float = CROP_SCALE, lift: float = CROP_LIFT) -> CropBox:
    """The crop box of a face from its ``(478, 2)`` or ``(68, 2)`` pixel landmarks."""
    pts = np.asarray(landmarks, dtype=np.float64)[..., :2]
    if pts.shape[0] != 68:
        if pts.shape[0] < 468:
            raise ValueError(f"expected 68 or 468/478 landmarks, got {pts.shape[0]}")
        pts = pts[list(LM68)]
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    side = scale * float(max(hi - lo))
    if not np.isfinite(side) or side <= 0:
        raise ValueError("degenerate landmarks: zero-size face")
    cx, cy = (lo + hi) / 2
    return CropBox(float(cx), float(cy - lift * side), side)


def crop_image(image: np.ndarray, box: CropBox, size: int) -> np.ndarray:
    """Cut ``box`` out of ``uint8 (H, W, 3)`` ``image`` and resize it to ``size``x``size``.

    Parts of the box outside the image are filled by edge replication, so faces near the
    border still give a full crop.
    """
    h, w = image.shape[:2]
    pad = int(np.ceil(max(0.0, -box.x0, -box.y0, box.x0 + box.side - w, box.y0 + box.side - h))) + 2
    src = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="edge") if pad > 2 else image
    off = pad if pad > 2 else 0
    x0, y0 = box.x0 + off, box.y0 + off
    pil = Image.fromarray(src)
    out = pil.transform((size, size), Image.Transform.EXTENT,
                        (x0, y0, x0 + box.side, y0 + box.side), resample=Image.Resampling.BICUBIC)
    if box.side > 2 * size:  # large downscale: pre-filter to avoid aliasing
        big = pil.transform((size * 2, size * 2), Image.Transform.EXTENT,
                            (x0, y0, x0 + box.side, y0 + box.side), resample=Image.Resampling.BILINEAR)
        out = big.resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(out)
