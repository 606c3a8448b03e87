"""Scene sampling: the only source of randomness in ``synth``.

``sample_scene(cfg, seed, index, ...)`` draws everything for sample ``index`` from
``aukit.seeding.sample_rng(seed, index)``, so a sample never depends on worker count,
order or sharding. The result is a frozen :class:`aukit.schema.SceneSpec`.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Sequence

import numpy as np

from aukit import dataset as ds
from aukit.aus import EMOTION_PROTOTYPES, GANIMATION_AUS, RIG_AUS
from aukit.schema import SceneSpec
from aukit.seeding import identity_seed, sample_rng, split_is_test
from synth import occluders as occ
from synth.config import ExpressionConfig, PoseConfig, SynthConfig

# AUs drawn by the sparse strategy (AU43/45 are eyelid states, drawn separately).
_SPARSE_AUS = tuple(a for a in RIG_AUS if a not in ("AU43", "AU45"))


def sample_scene(cfg: SynthConfig, seed: int, index: int,
                 background_images: Sequence[str] = (), photo_identities: Sequence[str] = ()) -> SceneSpec:
    """The scene spec of sample ``index`` in a run with ``seed``.

    ``photo_identities``: identity files of the job's photo pool (``identity.photos``); a
    ``photo_fraction`` of the samples use one (:mod:`synth.identity.photo_pool`). Without
    a pool no extra draw happens, so procedural-only runs are unchanged.
    """
    rng = sample_rng(seed, index)
    photo = None
    if photo_identities and rng.random() < cfg.identity.photo_fraction:
        from synth.identity.photo_pool import sample_photo

        photo = sample_photo(cfg, seed, photo_identities, rng)
    ident_index = int(rng.integers(cfg.identity.pool_size))
    split = "test" if split_is_test(seed, ident_index, cfg.identity.test_fraction) else "train"
    aus, expression = sample_aus(cfg.expression, rng)
    spec = SceneSpec(
        seed=int(seed), index=int(index), image_size=cfg.output.size, split=split,
        identity={"kind": "procedural", "seed": identity_seed(seed, ident_index), "pool_index": ident_index},
        aus=aus, expression=expression, pose=sample_pose(cfg.pose, rng),
        gaze={"yaw": float(rng.uniform(-1, 1) * cfg.pose.gaze), "pitch": float(rng.uniform(-1, 1) * cfg.pose.gaze * 0.6)},
        camera={"distance_cm": float(rng.uniform(*cfg.camera.distance_cm)),
                "jitter": [float(v) for v in rng.uniform(-1, 1, 3) * cfg.camera.crop_jitter]},
        lights=_sample_lights(cfg, rng), ambient=float(rng.uniform(*cfg.lights.ambient)),
        background=_sample_background(cfg, rng, background_images),
        occluders=sample_occluder_specs(cfg, rng),
        photometric=sample_photometric(cfg, rng),
        # drawn last, and only when asked for: every other draw stays as it was without it
        creases=sample_creases(cfg.identity.resting_creases, rng) if cfg.identity.resting_creases else {},
    )
    return spec if photo is None else photo.apply(spec)


#: AUs whose crease maps may be painted at rest, and each one's chance once a sample has
#: resting creases: folds and lines a neutral adult face can carry (nasolabial folds,
#: frown, forehead and crow's-feet lines, marionette lines), not lip lines.
RESTING_CREASE_AUS = ("AU01", "AU02", "AU04", "AU06", "AU09", "AU10", "AU12", "AU15")
RESTING_CREASE_P = 0.35


def sample_creases(fraction: float, rng: np.random.Generator) -> dict[str, float]:
    """Resting creases ``{AU: 0-5}`` of one sample: with probability ``fraction``, each of
    :data:`RESTING_CREASE_AUS` independently (``RESTING_CREASE_P``) at a uniform 0-5 strength.
    A fixed number of draws, so the stream is the same whichever creases come up."""
    on, gate, level = rng.random(), rng.random(len(RESTING_CREASE_AUS)), rng.uniform(0, 5, len(RESTING_CREASE_AUS))
    if on >= fraction:
        return {}
    return {a: float(v) for a, g, v in zip(RESTING_CREASE_AUS, gate, level) if g < RESTING_CREASE_P}


def sample_aus(cfg: ExpressionConfig, rng: np.random.Generator) -> tuple[dict[str, float], dict]:
    """AU intensities (every RIG_AUS name, FACS 0-5) and how they were drawn."""
    names = sorted(cfg.weights)
    p = np.array([cfg.weights[n] for n in names], dtype=np.float64)
    strategy = names[int(rng.choice(len(names), p=p / p.sum()))]
    aus = dict.fromkeys(RIG_AUS, 0.0)
    info: dict = {"strategy": strategy}
    if strategy == "sparse":
        k = int(rng.integers(1, cfg.max_active + 1))
        for a in rng.choice(_SPARSE_AUS, size=k, replace=False):
            aus[str(a)] = float(rng.uniform(*cfg.intensity))
    elif strategy == "prototype":
        emotion = list(EMOTION_PROTOTYPES)[int(rng.integers(len(EMOTION_PROTOTYPES)))]
        scale = float(rng.uniform(*cfg.prototype_scale))
        for a, v in EMOTION_PROTOTYPES[emotion].items():
            aus[a] = float(np.clip(v * scale * (1 + cfg.prototype_jitter * rng.uniform(-1, 1)), 0, 5))
        info.update(emotion=emotion, scale=scale)
    elif strategy == "dataset":
        table = _dataset_table(cfg.dataset)
        row = table[int(rng.integers(len(table)))]
        row = np.clip(row + rng.normal(0, cfg.dataset_jitter, row.shape) * (row > 0), 0, 5)
        for a, v in zip(GANIMATION_AUS, row):
            aus[a] = float(v)
    if rng.random() < cfg.blink_probability:
        aus["AU45"] = float(rng.uniform(2.5, 5.0))
    return aus, info


@functools.lru_cache(maxsize=4)
def _dataset_table(path: str | None) -> np.ndarray:
    if path is None:
        raise ValueError("expression.dataset is not set")
    table = ds.read_au_table(Path(path))
    if not table:
        raise ValueError(f"AU table of {path} is empty")
    return np.stack(list(table.values()))


def sample_pose(cfg: PoseConfig, rng: np.random.Generator) -> dict[str, float]:
    """Head yaw/pitch/roll (deg). ``normal``: a truncated normal with std = half-range / 2."""
    out = {}
    for name in ("yaw", "pitch", "roll"):
        lo, hi = getattr(cfg, name)
        if cfg.distribution == "uniform" or hi == lo:
            v = rng.uniform(lo, hi)
        else:
            mid, sd = (lo + hi) / 2, (hi - lo) / 4
            v = np.clip(rng.normal(mid, sd), lo, hi)
        out[name] = float(v)
    return out


def _sample_lights(cfg: SynthConfig, rng: np.random.Generator) -> tuple[dict, ...]:
    lc = cfg.lights
    key_i = float(rng.uniform(*lc.key_intensity))
    key = {"kind": "directional", "role": "key", "azimuth": float(rng.uniform(*lc.key_azimuth)),
           "elevation": float(rng.uniform(*lc.key_elevation)), "kelvin": float(rng.uniform(*lc.kelvin)),
           "intensity": key_i}
    fill = {"kind": "directional", "role": "fill", "azimuth": float(-np.sign(key["azimuth"] or 1) * rng.uniform(20, 80)),
            "elevation": float(rng.uniform(-10, 40)), "kelvin": float(rng.uniform(*lc.kelvin)),
            "intensity": key_i * float(rng.uniform(*lc.fill_ratio))}
    extra = cfg.lights_extra
    points = []
    for _ in range(int(rng.integers(extra.point_lights[0], extra.point_lights[1] + 1))):
        points.append({"kind": "point", "role": "extra", "azimuth": float(rng.uniform(-120, 120)),
                       "elevation": float(rng.uniform(-30, 70)), "kelvin": float(rng.uniform(*lc.kelvin)),
                       "intensity": float(rng.uniform(*extra.point_intensity)),
                       "distance_cm": float(rng.uniform(*extra.point_distance_cm))})
    return (key, fill, *points)


def sample_occluder_specs(cfg: SynthConfig, rng: np.random.Generator) -> tuple[dict, ...]:
    """Occluder specs (kind, class id, parameters); identity colours are filled at build time."""
    oc = cfg.occluders
    if rng.random() >= oc.probability:
        return ()
    names = sorted(oc.kinds)
    p = np.array([oc.kinds[n] for n in names], dtype=np.float64)
    count = int(rng.integers(1, oc.max_count + 1))
    kinds = [names[int(k)] for k in rng.choice(len(names), size=count, p=p / p.sum())]
    out = []
    for kind in kinds:
        params = occ.sample_params(kind, rng, lens_weights=oc.lenses)
        out.append({"kind": kind, "class_id": occ.class_of(kind, params), "params": params})
    return tuple(out)


def sample_photometric(cfg: SynthConfig, rng: np.random.Generator) -> dict:
    """Camera effects (exposure, blur, noise, JPEG); ``noise_seed`` makes the noise exact."""
    pc = cfg.photometric
    draws = rng.random(4)
    return {
        "exposure_ev": float(rng.uniform(*pc.exposure_ev)) if draws[0] < pc.exposure_p else 0.0,
        "blur_sigma": float(rng.uniform(*pc.blur_sigma)) if draws[1] < pc.blur_p else 0.0,
        "noise_std": float(rng.uniform(*pc.noise_std)) if draws[2] < pc.noise_p else 0.0,
        "jpeg_quality": int(rng.integers(pc.jpeg_quality[0], pc.jpeg_quality[1] + 1)) if draws[3] < pc.jpeg_p else 0,
        "noise_seed": int(rng.integers(2**31)),
    }


def _sample_background(cfg: SynthConfig, rng: np.random.Generator, images: Sequence[str]) -> dict:
    if images and rng.random() < cfg.background.image_fraction:
        return {"kind": "image", "path": images[int(rng.integers(len(images)))],
                "crop": [float(v) for v in rng.uniform(0, 1, 3)], "flip": bool(rng.random() < 0.5)}
    colors = rng.uniform(0.05, 0.9, (2, 3)) * rng.uniform(0.3, 1.0)
    return {"kind": "procedural", "seed": int(rng.integers(2**31)), "colors": colors.round(4).tolist(),
            "angle": float(rng.uniform(0, 360))}
