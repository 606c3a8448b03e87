"""The photo-identity file: :class:`PhotoIdentity` and its one-``.npz`` format.

Written by :func:`save` (atomically), read by :func:`load`; no pickles: metadata is JSON
bytes, images are PNG bytes, everything else plain arrays. :mod:`synth.identity.photo`
re-exports these names.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from aukit import atomic

FORMAT = "ausynth-photo-identity"
FORMAT_VERSION = 4


@dataclass(frozen=True)
class PhotoIdentity:
    """A reconstructed photo identity (what one ``.npz`` file holds).

    Texture-image frame: x right, y down in texture pixels; the fit maps rig-frame points
    ``v`` to ``(x, -y, z) = scale * rotation @ v + translation``.
    """

    meta: dict[str, Any]
    vertices: np.ndarray       # (478, 3) float32: neutral identity mesh, rig frame (cm)
    shape: np.ndarray          # (S,) float32: fitted shape coefficients
    source_aus: np.ndarray     # (len(RIG_AUS),) float32: the photo's fitted AUs (FACS 0-5)
    removed_aus: np.ndarray    # (len(RIG_AUS),) float32: the part of them removed (the expression)
    scale: float               # texture px per cm
    rotation: np.ndarray       # (3, 3) rig frame -> texture image frame (source head pose)
    translation: np.ndarray    # (3,)
    source_vertices: np.ndarray  # (478, 3) float32: the fitted mesh at the source expression (rig frame)
    photo_xy: np.ndarray       # (478, 2) float32: source-posed mesh in backdrop pixels
    visibility: np.ndarray     # (478,) float32 how well the photo sees each vertex, in [0, 1]
    confidence: np.ndarray     # (478,) float32 texture confidence in [0, 1] (own or mirrored)
    texture: np.ndarray        # (T, T, 3) uint8 sRGB face texture, rig UV layout, far side filled
    photo: np.ndarray          # (C, C, 3) uint8 sRGB: the photo crop as it is (outside the photo filled)
    backdrop: np.ndarray       # (C, C, 3) uint8 sRGB: photo crop, inner face inpainted
    backdrop_state: np.ndarray  # (C, C) uint8: 0 photo, 1 inpainted face, 2 outside the photo

    @property
    def key(self) -> str:
        """Unique key: source sha1 + face index."""
        return f"{self.meta['source_sha1']}-{self.meta['face_index']}"

    @property
    def grayscale(self) -> bool:
        return bool(self.meta["grayscale"])

    @property
    def source_pose(self) -> dict[str, float]:
        return dict(self.meta["fit"]["pose"])

    @property
    def light(self) -> np.ndarray:
        return np.asarray(self.meta["light"], dtype=np.float64)

    @property
    def size(self) -> int:
        """Backdrop side in pixels."""
        return int(self.backdrop.shape[0])

    def source_model(self) -> np.ndarray:
        """(478, 3) rig-frame mesh at the source expression (projects onto the photo)."""
        return self.source_vertices.astype(np.float64)

    def to_photo(self, vertices: np.ndarray) -> np.ndarray:
        """Rig-frame points (N, 3) at the source pose -> backdrop pixels (N, 2)."""
        q = self.scale * np.asarray(vertices, np.float64) @ self.rotation.T + self.translation
        return np.stack([q[:, 0], -q[:, 1]], 1)


def _png(img: np.ndarray) -> np.ndarray:
    ok, buf = cv2.imencode(".png", img[..., ::-1] if img.ndim == 3 else img, [cv2.IMWRITE_PNG_COMPRESSION, 6])
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return np.frombuffer(buf.tobytes(), np.uint8)


def _unpng(data: np.ndarray, channels: int) -> np.ndarray:
    img = cv2.imdecode(np.asarray(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ValueError("corrupt PNG in identity file")
    if channels == 3:
        img = np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img[..., ::-1]
    return np.ascontiguousarray(img)


def save(path: str | Path, ident: PhotoIdentity) -> None:
    """Write ``ident`` to ``path`` (.npz) atomically: a crash never leaves a partial file."""
    gray = ident.grayscale
    arrays = {
        "meta": np.frombuffer(json.dumps(ident.meta).encode(), np.uint8),
        "vertices": ident.vertices, "shape": ident.shape, "source_aus": ident.source_aus,
        "removed_aus": ident.removed_aus,
        "scale": np.float64(ident.scale), "rotation": ident.rotation, "translation": ident.translation,
        "source_vertices": ident.source_vertices, "photo_xy": ident.photo_xy,
        "visibility": ident.visibility, "confidence": ident.confidence,
        "texture_png": _png(ident.texture[..., 0] if gray else ident.texture),
        "photo_png": _png(ident.photo[..., 0] if gray else ident.photo),
        "backdrop_png": _png(ident.backdrop[..., 0] if gray else ident.backdrop),
        "state_png": _png(ident.backdrop_state),
    }

    def write(fh):
        np.savez(fh, **arrays)

    atomic.write_atomic(path, write)


def load(path: str | Path) -> PhotoIdentity:
    """Read an identity file written by :func:`save` (no pickles)."""
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(bytes(z["meta"]).decode())
        if meta.get("format") != FORMAT:
            raise ValueError(f"{path}: not an ausynth photo identity")
        if int(meta.get("version", 0)) != FORMAT_VERSION:
            raise ValueError(f"{path}: identity format version {meta.get('version')} != {FORMAT_VERSION}; rebuild it")
        return PhotoIdentity(
            meta=meta, vertices=z["vertices"], shape=z["shape"], source_aus=z["source_aus"],
            removed_aus=z["removed_aus"],
            scale=float(z["scale"]), rotation=z["rotation"], translation=z["translation"],
            source_vertices=z["source_vertices"], photo_xy=z["photo_xy"], visibility=z["visibility"],
            confidence=z["confidence"], texture=_unpng(z["texture_png"], 3), photo=_unpng(z["photo_png"], 3),
            backdrop=_unpng(z["backdrop_png"], 3), backdrop_state=_unpng(z["state_png"], 1))


@functools.lru_cache(maxsize=4096)
def read_meta(path: str) -> dict[str, Any]:
    """Only the metadata of an identity file (cached; for sampling)."""
    with np.load(path, allow_pickle=False) as z:
        return json.loads(bytes(z["meta"]).decode())


