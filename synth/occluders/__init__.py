"""Procedural occluders: sampling of their parameters (in the scene spec) and geometry.

``sample_occluders(cfg, rng)`` draws a tuple of JSON-ready occluder specs
``{"kind", "class_id", "params"}``; ``build_occluders(specs, head)`` turns them into meshes.
All randomness happens in sampling (from the sample's generator); building is pure.
"""

from __future__ import annotations

import numpy as np

from synth.occluders.builders import BUILDERS, HeadState, Piece

#: occluder class ids used in the ``occluder_class`` label map (0 = none)
OCCLUDER_CLASSES = {"hand": 1, "glasses": 2, "sunglasses": 3, "mask": 4, "hair": 5, "hat": 6,
                    "microphone": 7, "cup": 8, "phone": 9, "shape": 10}

_SKIN = np.array([[0.85, 0.62, 0.50], [0.62, 0.42, 0.30], [0.40, 0.25, 0.16], [0.20, 0.12, 0.08]])
_LENSES = {  # name -> (alpha, colour, metallic); alpha >= 0.5 counts as occluding
    "clear": (0.12, [0.9, 0.95, 1.0], 0.0), "tinted": (0.45, [0.35, 0.25, 0.15], 0.0),
    "sunglasses": (0.92, [0.03, 0.03, 0.04], 0.2), "mirrored": (0.95, [0.55, 0.6, 0.7], 0.9)}


def _color(rng: np.random.Generator, lo: float = 0.05, hi: float = 0.9) -> list[float]:
    return [round(float(c), 4) for c in rng.uniform(lo, hi, 3) ** 2.2]


def _hand(rng):
    base = _SKIN[rng.integers(len(_SKIN))] ** 2.2
    return {"match_skin": bool(rng.random() < 0.7),"pose": str(rng.choice(["over_mouth", "chin", "cheek", "over_eye"])),
            "side": float(rng.choice([-1.0, 1.0])), "scale": float(rng.uniform(0.85, 1.1)),
            "spread": float(rng.uniform(2, 12)), "curl": float(rng.uniform(0, 1.2)),
            "twist": float(rng.uniform(-20, 20)), "tilt": float(rng.uniform(-15, 15)),
            "offset": [float(v) for v in rng.uniform(-1.0, 1.0, 2)],
            "color": [round(float(c), 4) for c in np.asarray(base) * rng.uniform(0.9, 1.1)]}


def _glasses(rng, lens_weights):
    names = sorted(lens_weights)
    p = np.array([lens_weights[n] for n in names], float)
    lens = names[int(rng.choice(len(names), p=p / p.sum()))]
    alpha, color, metal = _LENSES[lens]
    return {"lens": lens, "lens_alpha": alpha, "lens_color": [c ** 2.2 for c in color], "lens_metallic": metal,
            "width": float(rng.uniform(4.2, 5.6)), "height": float(rng.uniform(2.8, 4.0)),
            "frame": float(rng.uniform(0.1, 0.22)), "wrap": float(rng.uniform(0, 14)),
            "frame_color": _color(rng, 0.02, 0.6), "frame_metallic": float(rng.choice([0.0, 0.8]))}


def sample_params(kind: str, rng: np.random.Generator, lens_weights: dict[str, float] | None = None) -> dict:
    """Random parameters for one occluder of ``kind`` (JSON-ready). Hands and hair may take
    the identity's skin/hair colour (``match_skin``/``match_hair``), filled in at build time."""
    if kind == "hand":
        return _hand(rng)
    if kind == "glasses":
        return _glasses(rng, lens_weights or {n: 1.0 for n in _LENSES})
    if kind == "mask":
        style = str(rng.choice(["surgical", "cloth"]))
        color = [0.45, 0.65, 0.8] if style == "surgical" and rng.random() < 0.7 else _color(rng)
        return {"style": style, "color": color, "top": float(rng.uniform(0.2, 0.9))}
    if kind == "hair":
        return {"match_hair": bool(rng.random() < 0.8), "color": _color(rng, 0.02, 0.5), "length": float(rng.uniform(-0.5, 2.5)), "slope": float(rng.uniform(-0.25, 0.25)),
                "jag": float(rng.uniform(2.0, 6.0)), "phase": float(rng.uniform(0, 6.28)),
                }
    if kind == "hat":
        return {"style": str(rng.choice(["cap", "hat"])), "depth": float(rng.uniform(0.5, 2.0)),
                "thickness": float(rng.uniform(0.5, 1.2)), "brim_tilt": float(rng.uniform(-5, 15)),
                "color": _color(rng)}
    if kind == "microphone":
        return {"tilt": float(rng.uniform(-35, -10)), "roll": float(rng.uniform(-20, 20)),
                "offset": [float(v) for v in rng.uniform(-2, 2, 2)], "color": _color(rng, 0.01, 0.3),
                "grille": [0.3, 0.3, 0.32]}
    if kind == "cup":
        return {"radius": float(rng.uniform(3.2, 4.5)), "height": float(rng.uniform(8, 11)),
                "tilt": float(rng.uniform(-35, -5)), "turn": float(rng.uniform(-40, 40)),
                "offset": [float(v) for v in rng.uniform(-2, 2, 2)], "color": _color(rng, 0.2, 0.95)}
    if kind == "phone":
        return {"side": float(rng.choice([-1.0, 1.0])), "angle": float(rng.uniform(55, 80)),
                "roll": float(rng.uniform(-20, 20)), "color": _color(rng, 0.01, 0.4)}
    if kind == "shape":
        return {"shape": str(rng.choice(["box", "ellipsoid", "cylinder"])),
                "size": [float(v) for v in rng.uniform(3, 9, 3)], "x": float(rng.uniform(-5, 5)),
                "y": float(rng.uniform(-7, 5)), "gap": float(rng.uniform(0, 4)),
                "angle": float(rng.uniform(0, 180)), "color": _color(rng),
                "texture_seed": int(rng.integers(2**31))}
    raise ValueError(f"unknown occluder kind {kind!r}; known: {sorted(BUILDERS)}")


def class_of(kind: str, params: dict) -> int:
    if kind == "glasses" and params.get("lens") in ("sunglasses", "mirrored"):
        return OCCLUDER_CLASSES["sunglasses"]
    return OCCLUDER_CLASSES[kind]


def build_occluders(specs, head: HeadState, skin_rgb=None, hair_rgb=None) -> list[tuple[int, int, list[Piece]]]:
    """``[(instance, class_id, pieces)]`` for the occluder specs (instance = 1-based index)."""
    out = []
    for k, s in enumerate(specs):
        params = dict(s["params"])
        if params.get("match_skin") and skin_rgb is not None:
            params["color"] = [float(c) for c in skin_rgb]
        if params.get("match_hair") and hair_rgb is not None:
            params["color"] = [float(c) for c in hair_rgb]
        out.append((k + 1, int(s["class_id"]), BUILDERS[s["kind"]](params, head)))
    return out


__all__ = ["OCCLUDER_CLASSES", "HeadState", "Piece", "build_occluders", "class_of", "sample_params"]
