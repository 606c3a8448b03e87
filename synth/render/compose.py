"""Backend-agnostic image post-processing: backgrounds, compositing, downsampling."""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image

from synth.identity.paint import to_srgb8

_C = np.arange(256) / 255.0
SRGB8_TO_LINEAR = np.where(_C <= 0.04045, _C / 12.92, ((_C + 0.055) / 1.055) ** 2.4).astype(np.float32)


def kelvin_rgb(kelvin: float) -> np.ndarray:
    """Linear RGB (max component 1) of a black body at ``kelvin`` (Tanner Helland fit)."""
    t = kelvin / 100.0
    r = 255.0 if t <= 66 else 329.698727446 * (t - 60) ** -0.1332047592
    g = 99.4708025861 * np.log(t) - 161.1195681661 if t <= 66 else 288.1221695283 * (t - 60) ** -0.0755148492
    b = 255.0 if t >= 66 else (0.0 if t <= 19 else 138.5177312231 * np.log(t - 10) - 305.0447927307)
    srgb = np.clip(np.array([r, g, b]) / 255.0, 0, 1)
    lin = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    return lin / lin.max()


def light_direction(azimuth: float, elevation: float) -> np.ndarray:
    """Unit vector from the subject towards a light (camera frame: +z to the camera)."""
    az, el = np.radians([azimuth, elevation])
    return np.array([np.sin(az) * np.cos(el), np.sin(el), np.cos(az) * np.cos(el)])


def procedural_background(spec: dict, size: int) -> np.ndarray:
    """Smooth random backdrop, float32 linear RGB (size, size, 3): gradient + soft blobs."""
    rng = np.random.default_rng(int(spec["seed"]))
    c0, c1 = (np.asarray(c, dtype=np.float64) for c in spec["colors"])
    a = np.radians(spec.get("angle", 0.0))
    y, x = np.mgrid[0:size, 0:size] / max(size - 1, 1) - 0.5
    t = np.clip(0.5 + x * np.cos(a) + y * np.sin(a), 0, 1)[..., None]
    img = c0 * (1 - t) + c1 * t
    low = ((rng.uniform(-1, 1, (5, 5, 3)) * 0.35 + 1) * 100).astype(np.uint8)
    blobs = np.asarray(Image.fromarray(low).resize((size, size), Image.Resampling.BICUBIC)) / 100.0
    return np.clip(img * blobs, 0, 1).astype(np.float32)


@functools.lru_cache(maxsize=64)
def _load_background(path: str) -> np.ndarray:
    with Image.open(path) as im:
        im.draft("RGB", (1024, 1024))
        return np.asarray(im.convert("RGB"))


def image_background(spec: dict, size: int) -> np.ndarray:
    """Random square crop of a user image, float32 linear RGB (size, size, 3)."""
    img = _load_background(spec["path"])
    h, w = img.shape[:2]
    u, v, s = spec["crop"]
    side = int(min(h, w) * (0.35 + 0.65 * s))
    x0, y0 = int(u * (w - side)), int(v * (h - side))
    crop = Image.fromarray(img[y0:y0 + side, x0:x0 + side]).resize((size, size), Image.Resampling.BILINEAR)
    arr = SRGB8_TO_LINEAR[np.asarray(crop)]
    return arr[:, ::-1] if spec.get("flip") else arr


def background(spec: dict, size: int) -> np.ndarray:
    if spec["kind"] == "image":
        return image_background(spec, size)
    return procedural_background(spec, size)


def box_downsample(img: np.ndarray, k: int) -> np.ndarray:
    """Average ``k x k`` blocks of an (H*k, W*k, C) float array."""
    if k == 1:
        return img
    h, w = img.shape[0] // k, img.shape[1] // k
    return img.reshape(h, k, w, k, -1).mean(axis=(1, 3))


def composite(rgba_srgb8: np.ndarray, bg_linear: np.ndarray, k: int) -> np.ndarray:
    """Composite a supersampled RGBA render (background alpha 0) over a linear background.

    Compositing happens in linear light after a box filter, so antialiased edges blend
    correctly. Returns uint8 sRGB (H, W, 3).
    """
    lin = SRGB8_TO_LINEAR[rgba_srgb8[..., :3]]
    alpha = rgba_srgb8[..., 3:4].astype(np.float32) / 255.0
    pre = box_downsample(lin * alpha, k)
    a = box_downsample(alpha, k)
    return to_srgb8(pre + (1 - a) * bg_linear)
