"""Procedural CG identities: reproducible from one integer seed, no data needed.

An identity is shape coefficients (the basis' smooth shape modes), a painted face texture
(skin tone, blush, freckles, brows, lips, lash line, beard, hairline), eye colour and a
hair style on the skull. Everything is drawn from ``numpy.random.default_rng(seed)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synth.identity.paint import SkinLook, paint_face, srgb_to_linear

# sRGB skin tones from light to dark (interpolated continuously).
_SKIN_TONES = np.array([[0.96, 0.82, 0.72], [0.90, 0.72, 0.60], [0.80, 0.60, 0.46],
                        [0.66, 0.47, 0.34], [0.50, 0.34, 0.24], [0.34, 0.22, 0.15]])
_HAIR = np.array([[0.05, 0.04, 0.035], [0.18, 0.11, 0.07], [0.35, 0.22, 0.12],
                  [0.62, 0.45, 0.25], [0.55, 0.25, 0.12], [0.55, 0.53, 0.50], [0.85, 0.80, 0.70]])
_HAIR_P = np.array([0.32, 0.28, 0.15, 0.08, 0.06, 0.07, 0.04])
_EYES = np.array([[0.28, 0.16, 0.08], [0.18, 0.10, 0.05], [0.30, 0.42, 0.55],
                  [0.35, 0.42, 0.25], [0.40, 0.32, 0.18]])


@dataclass(frozen=True)
class HairStyle:
    """Hair on the skull: ``front``/``back`` = lowest direction height (unit-sphere y) covered
    at the front/back of the head; ``thickness`` in cm; ``bald`` skips hair entirely."""

    front: float
    back: float
    thickness: float
    bald: bool


@dataclass(frozen=True)
class Identity:
    """A renderable identity. ``spec`` is its JSON label (enough to rebuild it)."""

    spec: dict
    shape: np.ndarray            # (S,) shape-mode coefficients
    texture: np.ndarray          # (H, W, 3) uint8 sRGB face texture (rig UV space)
    skin: np.ndarray             # (3,) linear RGB (head, neck)
    hair: np.ndarray             # (3,) linear RGB
    eye: np.ndarray              # (3,) linear RGB (iris)
    style: HairStyle
    uv: np.ndarray | None = None  # (478, 2) custom UVs (photo identities); None = canonical


def procedural_identity(seed: int, neutral: np.ndarray, n_shapes: int, texture_size: int = 256) -> Identity:
    """Build the procedural identity for ``seed`` over the rig's ``neutral`` (478, 3) mesh."""
    rng = np.random.default_rng(int(seed))
    shape = np.clip(rng.normal(0.0, 1.0, n_shapes), -2.5, 2.5)
    t = rng.uniform(0, len(_SKIN_TONES) - 1)
    i = int(t)
    tone = _SKIN_TONES[i] * (1 - (t - i)) + _SKIN_TONES[min(i + 1, len(_SKIN_TONES) - 1)] * (t - i)
    skin = srgb_to_linear(np.clip(tone * rng.uniform(0.95, 1.05, 3), 0, 1))
    hair = srgb_to_linear(_HAIR[rng.choice(len(_HAIR), p=_HAIR_P)] * rng.uniform(0.85, 1.15))
    masculine = rng.random() < 0.5
    bald = masculine and rng.random() < 0.12
    style = HairStyle(front=float(rng.uniform(0.05, 0.3)), back=float(rng.uniform(-0.75, -0.35)),
                      thickness=float(rng.uniform(0.4, 1.6) if not bald else 0.0), bald=bool(bald))
    lips = skin * np.array([1.0, 0.62, 0.62]) * rng.uniform(0.75, 0.95)
    look = SkinLook(
        skin=skin, lips=lips, brows=hair * rng.uniform(0.6, 1.0),
        hair=hair, brow_thickness=float(rng.uniform(0.45, 0.8) if masculine else rng.uniform(0.3, 0.55)),
        hairline_y=float(9.5 if bald else rng.uniform(6.6, 8.4)),
        beard=float(rng.choice([0.0, rng.uniform(0.2, 0.5), rng.uniform(0.6, 1.0)], p=[0.55, 0.3, 0.15])
                    if masculine else 0.0),
        blush=float(rng.uniform(0.0, 0.6)), freckles=float(rng.uniform(0, 1) if rng.random() < 0.15 else 0.0))
    eye = srgb_to_linear(_EYES[rng.integers(len(_EYES))] * rng.uniform(0.8, 1.2))
    texture = paint_face(neutral, look, rng, texture_size)
    spec = {"kind": "procedural", "seed": int(seed)}
    return Identity(spec, shape.astype(np.float32), texture, skin, hair, eye, style)


def hair_coverage(style: HairStyle, loft_dir: np.ndarray, loft_t: np.ndarray, loft_w: np.ndarray) -> np.ndarray:
    """(V,) hair coverage in [0, 1] of the rig's skull vertices for a hair style."""
    if style.bald:
        return np.zeros(len(loft_dir))
    back = np.clip(-loft_dir[:, 2], 0, 1)               # 0 at the sides/front, 1 at the back
    thr = style.front * (1 - back) + style.back * back
    side = np.abs(loft_dir[:, 0]) > 0.75                # leave the ears' zone bare
    thr = np.where(side & (loft_dir[:, 2] > -0.35), np.maximum(thr, 0.3), thr)
    h = np.clip((loft_dir[:, 1] - thr) / 0.08 + 0.5, 0, 1)
    return h * np.clip(loft_t / 0.08, 0, 1) * loft_w
