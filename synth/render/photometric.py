"""Camera effects applied after rendering, identically for every backend.

Order: exposure (in linear light), Gaussian blur, Gaussian noise, JPEG round trip. The
parameters live in ``spec.photometric`` (drawn by the sampler), so the effect is part of
the label and exactly reproducible (the noise has its own seed).
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFilter

from synth.identity.paint import to_srgb8
from synth.render.compose import SRGB8_TO_LINEAR


def apply(rgb: np.ndarray, params: dict) -> np.ndarray:
    """uint8 (H, W, 3) sRGB -> uint8 (H, W, 3) with the effects of ``params`` applied."""
    if not params:
        return rgb
    out = rgb
    ev = params.get("exposure_ev", 0.0)
    if ev:
        out = to_srgb8(SRGB8_TO_LINEAR[out] * 2.0 ** ev)
    sigma = params.get("blur_sigma", 0.0)
    if sigma > 0:
        out = np.asarray(Image.fromarray(out).filter(ImageFilter.GaussianBlur(sigma)))
    std = params.get("noise_std", 0.0)
    if std > 0:
        noise = np.random.default_rng(params["noise_seed"]).normal(0.0, std, out.shape)
        out = np.clip(out + noise, 0, 255).round().astype(np.uint8)
    quality = params.get("jpeg_quality", 0)
    if quality:
        buf = io.BytesIO()
        Image.fromarray(out).save(buf, format="JPEG", quality=int(quality))
        out = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    return out
