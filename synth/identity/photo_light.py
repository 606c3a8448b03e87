"""What a photo says about light and eyes, for photo identities (:mod:`synth.identity.photo`).

:func:`fit_light`: a first-order spherical-harmonics light fitted to the skin's linear
luminance against the fitted mesh normals; :func:`eye_colours`: iris and sclera colours
sampled inside the photo's eye openings.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from aukit import landmarks as lmk
from aukit.basis import load_basis

_DEFAULT_IRIS = np.array([0.06, 0.035, 0.02])     # linear RGB (dark brown)
_DEFAULT_SCLERA = np.array([0.55, 0.50, 0.46])


def _srgb_to_linear(c: np.ndarray) -> np.ndarray:
    c = np.asarray(c, dtype=np.float64) / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


@functools.lru_cache(maxsize=1)
def skin_vertices() -> np.ndarray:
    """Face vertices away from brows, eyes, lips and nostrils (for the light fit)."""
    b = load_basis()
    v = b.neutral[:lmk.N_FACE]
    avoid = [*lmk.R_BROW_UPPER, *lmk.R_BROW_LOWER, *lmk.L_BROW_UPPER, *lmk.L_BROW_LOWER,
             *lmk.R_UPPER_LID, *lmk.R_LOWER_LID, *lmk.L_UPPER_LID, *lmk.L_LOWER_LID,
             *lmk.OUTER_UPPER_LIP, *lmk.OUTER_LOWER_LIP, 48, 278, 64, 294, 98, 327]
    d = np.linalg.norm(v[:, None] - b.neutral[np.array(avoid)][None], axis=2).min(1)
    oval = np.array(lmk.FACE_OVAL)
    d_oval = np.linalg.norm(v[:, None] - b.neutral[oval][None], axis=2).min(1)
    return np.flatnonzero((d > 0.9) & (d_oval > 0.8))


def fit_light(crop: np.ndarray, xy: np.ndarray, normals: np.ndarray, vis: np.ndarray) -> tuple[np.ndarray, float]:
    """First-order SH light ``S(n) = l0 + l . n`` (normalised to S(+z) = 1) and the median
    linear skin luminance."""
    size = crop.shape[0]
    lin = _srgb_to_linear(crop) @ np.array([0.2126, 0.7152, 0.0722])
    lin = cv2.GaussianBlur(lin.astype(np.float32), (0, 0), max(1.0, size / 150))
    sel = skin_vertices()
    sel = sel[vis[sel] > 0.8]
    default = np.array([1.0, 0.0, 0.0, 0.0])
    if len(sel) < 30:
        return default, 0.25
    p = xy[sel]
    lum = lin[np.clip(p[:, 1].astype(int), 0, size - 1), np.clip(p[:, 0].astype(int), 0, size - 1)].astype(np.float64)
    a = np.concatenate([np.ones((len(sel), 1)), normals[sel]], 1)
    keep = np.ones(len(sel), bool)
    coef = default
    for _ in range(3):
        coef, *_ = np.linalg.lstsq(a[keep], lum[keep], rcond=None)
        r = lum - a @ coef
        mad = np.median(np.abs(r[keep])) + 1e-6
        keep = np.abs(r) < 3 * 1.4826 * mad
    ref = coef[0] + coef[3]
    if not np.isfinite(coef).all() or ref <= 1e-4 or coef[0] <= 0:
        return default, float(np.median(lum))
    coef = coef / ref
    d = coef[1:]
    if np.linalg.norm(d) > 0.9 * coef[0] + 0.9:    # keep the light plausible (bounded contrast)
        d = d * (0.9 * coef[0] + 0.9) / np.linalg.norm(d)
    return np.concatenate([[coef[0]], d]), float(np.median(lum))


def eye_colours(crop: np.ndarray, lm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Linear RGB iris and sclera colours sampled inside the photo's eye openings."""
    size = crop.shape[0]
    lin = _srgb_to_linear(crop)
    irises, scleras = [], []
    for upper, lower, c in ((lmk.R_UPPER_LID, lmk.R_LOWER_LID, 468), (lmk.L_UPPER_LID, lmk.L_LOWER_LID, 473)):
        poly = np.concatenate([lm[list(upper), :2], lm[list(lower[::-1][1:-1]), :2]])
        mask = np.zeros((size, size), np.uint8)
        cv2.fillPoly(mask, [np.round(poly * 4).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=2)
        centre = lm[c, :2]
        radius = float(np.mean(np.linalg.norm(lm[c + 1:c + 5, :2] - centre, axis=1)))
        yy, xx = np.mgrid[0:size, 0:size] + 0.5
        d = np.hypot(xx - centre[0], yy - centre[1])
        open_ = mask.astype(bool)
        ir = open_ & (d > 0.35 * radius) & (d < 0.85 * radius)
        sc = open_ & (d > 1.2 * radius)
        if ir.sum() >= 3:
            irises.append(np.median(lin[ir], axis=0))
        if sc.sum() >= 3:
            vals = lin[sc]
            lum = vals.mean(1)
            scleras.append(vals[lum >= np.percentile(lum, 50)].mean(0))
    iris = np.mean(irises, 0) if irises else _DEFAULT_IRIS
    sclera = np.mean(scleras, 0) if scleras else _DEFAULT_SCLERA
    # a sclera darker than its iris means the sample hit lashes/shadow: fall back
    if sclera.mean() < iris.mean() * 1.3:
        sclera = np.maximum(sclera, _DEFAULT_SCLERA * max(iris.mean() / _DEFAULT_IRIS.mean(), 0.5))
    return np.clip(iris, 0, 1), np.clip(sclera, 0, 1)
