"""Expression wrinkles as texture darkening, one map per AU, in the rig's UV space.

pyrender has no normal mapping, so creases are painted: each map holds, per texel, how
much the skin darkens at FACS intensity 5 (0..1). UV space is canonical, so the maps are
the same for every identity and are built once per process. Per frame the face texture
is multiplied by ``1 - sum_k (a_k / 5) * map_k`` over the active AUs (times the rig's
``wrinkles`` scale), plus the same sum over the spec's resting creases (``SceneSpec.creases``,
painted without motion, times :data:`RESTING_STRENGTH`), capped at :data:`MAX_DARKENING`.
"""

from __future__ import annotations

import functools

import numpy as np

from aukit import landmarks as lmk
from aukit.aus import RIG_AUS, to_unit
from synth.config import WRINKLE_AUS
from synth.identity.paint import grid, polyline_distance

MAP_SIZE = 256
MAX_DARKENING = 0.85   # a crease never takes more than 85% of the skin's brightness
#: Resting creases (``SceneSpec.creases``) are painted this much deeper than an AU's own: a
#: deep resting fold in an older face is darker and wider than the maps' expression lines.
RESTING_STRENGTH = 1.5


def _line(x, y, pts, width: float, depth: float) -> np.ndarray:
    d, _ = polyline_distance(x, y, np.asarray(pts, float), margin=width * 3)
    return depth * np.exp(-(d / width) ** 2)


def _mirrored(x, y, pts, width, depth) -> np.ndarray:
    pts = np.asarray(pts, float)
    return _line(x, y, pts, width, depth) + _line(x, y, pts * [-1, 1], width, depth)


@functools.lru_cache(maxsize=2)
def wrinkle_maps(neutral_key: bytes, size: int = MAP_SIZE) -> dict[str, np.ndarray]:
    """``{AU: float32 (size, size) darkening at intensity 5}`` (cached per neutral mesh)."""
    v = np.frombuffer(neutral_key).reshape(-1, 3)[:, :2]
    x, y = grid(size)
    p = lambda i: v[i]  # noqa: E731
    corner, ala = p(61), p(48)
    nasolabial = [ala + [-0.25, 0.05], (ala + corner) / 2 + [-0.55, 0.0], corner + [-0.45, -0.25]]
    maps = {
        "AU01": sum(_line(x, y, [[-2.2, yy], [2.2, yy]], 0.11, 0.22) for yy in (5.6, 6.3, 7.0)),
        "AU02": sum(_mirrored(x, y, [[-5.2, yy - 0.3], [-2.5, yy]], 0.11, 0.2) for yy in (5.8, 6.5)),
        "AU04": _mirrored(x, y, [[-0.45, 3.6], [-0.6, 4.6]], 0.08, 0.45)
        + _line(x, y, [[-0.8, 3.2], [0.8, 3.2]], 0.08, 0.25),
        "AU06": _mirrored(x, y, nasolabial, 0.26, 0.18)
        + sum(_mirrored(x, y, [p(33) + [-0.25, dy], p(33) + [-1.1, dy * 1.8]], 0.07, 0.18) for dy in (-0.3, 0.0, 0.3)),
        "AU07": _mirrored(x, y, [p(145) + [-0.7, -0.25], p(145) + [0.5, -0.25]], 0.08, 0.2),
        "AU09": sum(_mirrored(x, y, [[-0.25, yy], [-0.9, yy - 0.25]], 0.08, 0.3) for yy in (2.0, 2.5, 3.0))
        + _mirrored(x, y, nasolabial[:2], 0.24, 0.2),
        "AU10": _mirrored(x, y, nasolabial, 0.26, 0.25),
        "AU11": _mirrored(x, y, nasolabial, 0.24, 0.2),
        "AU12": _mirrored(x, y, nasolabial, 0.28, 0.28) + _mirrored(x, y, [corner + [-0.3, 0.1], corner + [-0.55, -0.3]], 0.08, 0.2),
        "AU14": _mirrored(x, y, [corner + [-0.25, 0.25], corner + [-0.3, -0.35]], 0.09, 0.45),
        "AU15": _mirrored(x, y, [corner + [-0.1, -0.2], corner + [-0.35, -1.6]], 0.11, 0.35),
        "AU17": _line(x, y, [[-1.3, -5.3], [0, -5.45], [1.3, -5.3]], 0.12, 0.35),
        "AU20": _mirrored(x, y, [corner + [-0.3, 0.2], corner + [-0.5, -0.6]], 0.1, 0.25),
        "AU23": _line(x, y, [v[i] for i in lmk.OUTER_UPPER_LIP], 0.06, 0.25),
        "AU24": _line(x, y, [[-1.2, -5.35], [1.2, -5.35]], 0.1, 0.3),
        "AU28": _line(x, y, [v[i] for i in lmk.OUTER_LOWER_LIP], 0.08, 0.3),
    }
    assert tuple(maps) == WRINKLE_AUS, "synth.config.WRINKLE_AUS must list the maps' AUs"
    return {k: np.clip(m, 0, 0.8).astype(np.float32) for k, m in maps.items()}


def wrinkle_darkness(aus: np.ndarray, neutral: np.ndarray, size: int) -> np.ndarray | None:
    """Summed darkening (float32 (size, size), >= 0) of the active AUs' wrinkle maps, each
    scaled by its intensity as a fraction of FACS 5; None when no active AU has wrinkles.
    ``aus``: (len(RIG_AUS),) FACS 0-5; ``neutral``: the rig's neutral vertices."""
    active = [(RIG_AUS[k], float(a)) for k, a in enumerate(aus) if a > 0]
    if not active:
        return None
    maps = wrinkle_maps(np.ascontiguousarray(neutral, np.float64).tobytes(), size)
    terms = [maps[name] * float(to_unit(a)) for name, a in active if name in maps]
    return np.sum(terms, axis=0) if terms else None


def crease_terms(aus: np.ndarray, resting: np.ndarray | None, neutral: np.ndarray, size: int,
                 strength: float, only: tuple[str, ...] | None = None) -> list[tuple[np.ndarray, float]]:
    """``(darkening map, strength)`` pairs to shade with: the active AUs' wrinkles at
    ``strength`` (only those of the AUs in ``only``, when given) and the spec's resting creases
    (``resting``, same layout as ``aus``; see ``SceneSpec.creases``; never filtered) at
    :data:`RESTING_STRENGTH`. Empty when nothing is painted."""
    if only is not None:
        aus = np.where([name in only for name in RIG_AUS], aus, 0.0)
    out = []
    for vec, s in ((aus, strength), (resting, RESTING_STRENGTH)):
        dark = None if vec is None or s == 0 else wrinkle_darkness(vec, neutral, size)
        if dark is not None:
            out.append((dark, s))
    return out


def apply_wrinkles(texture: np.ndarray, aus: np.ndarray, neutral: np.ndarray, strength: float = 1.0,
                   resting: np.ndarray | None = None, only: tuple[str, ...] | None = None) -> np.ndarray:
    """Face texture (uint8 sRGB) darkened by the wrinkles of the active AUs (of those in
    ``only``, when given), scaled by ``strength`` (0 = none), and by the ``resting`` creases
    (the darkening is capped at 85%)."""
    terms = crease_terms(aus, resting, neutral, texture.shape[0], strength, only)
    if not terms:
        return texture
    return (texture * crease_shade(terms)[..., None]).astype(np.uint8)


def crease_shade(terms: list[tuple[np.ndarray, float]]) -> np.ndarray:
    """Texture multiplier (in [1 - MAX_DARKENING, 1]) for darkening maps, each scaled by its
    strength and summed: shared by procedural and photo identities."""
    total = terms[0][1] * terms[0][0]
    for dark, strength in terms[1:]:
        total = total + strength * dark
    return 1.0 - np.clip(total, 0, MAX_DARKENING)
