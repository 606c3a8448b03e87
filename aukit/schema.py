"""The label schema: one frozen, JSON-serialisable scene spec per sample *is* its label.

Conventions (documented once, used by every backend and reader):

* AUs: ``aus`` maps every name in ``RIG_AUS`` to a FACS intensity in [0, 5].
* Head pose (degrees), relative to the camera: ``yaw`` > 0 turns the face towards the
  image right, ``pitch`` > 0 raises the chin (face looks up), ``roll`` > 0 tilts the head
  counter-clockwise as the camera sees it. Rotation order: roll * pitch * yaw (yaw first).
* Gaze (degrees, relative to the head): ``yaw`` > 0 looks towards the subject's left
  (image right for a frontal face), ``pitch`` > 0 looks up.
* Image coordinates: pixels, x right, y down, origin at the top-left corner of the image,
  so pixel (i, j) covers [j, j+1] x [i, i+1] and its centre is (j + 0.5, i + 0.5).
* Lengths in centimetres; colour temperatures in kelvin.
* ``creases``: resting creases painted into the skin *without* moving it, as ``{AU: 0-5}``
  (the crease that AU would paint at that intensity). They are a nuisance, not a label:
  the sample's AUs are ``aus`` alone. Empty unless ``identity.resting_creases`` > 0.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from aukit.aus import RIG_AUS

SPEC_VERSION = 1


@dataclass(frozen=True)
class SceneSpec:
    """Everything needed to render one sample, and its exact label."""

    seed: int
    index: int
    image_size: int
    split: str                                   # "train" | "test"
    identity: dict[str, Any]                     # {"kind": "procedural", "seed": int} | photo
    aus: dict[str, float]                        # every RIG_AUS name -> FACS 0-5
    expression: dict[str, Any]                   # how the AUs were drawn (strategy, emotion)
    pose: dict[str, float]                       # yaw, pitch, roll (deg)
    gaze: dict[str, float]                       # yaw, pitch (deg)
    camera: dict[str, Any]                       # distance_cm, crop jitter
    lights: tuple[dict[str, Any], ...]           # key/fill/... (kind, azimuth, elevation, kelvin, intensity)
    ambient: float                               # ambient light level
    background: dict[str, Any]                   # procedural {seed, colours} | image {path, crop, flip}
    occluders: tuple[dict[str, Any], ...] = ()
    photometric: dict[str, Any] = field(default_factory=dict)
    creases: dict[str, float] = field(default_factory=dict)  # resting creases: AU -> 0-5, paint only
    version: int = SPEC_VERSION

    def __post_init__(self) -> None:
        missing = [a for a in RIG_AUS if a not in self.aus]
        if missing:
            raise ValueError(f"scene spec lacks AUs {missing}")
        bad = {a: v for a, v in self.aus.items() if not 0.0 <= v <= 5.0}
        if bad:
            raise ValueError(f"AU intensities outside [0, 5]: {bad}")
        bad = {a: v for a, v in self.creases.items() if a not in RIG_AUS or not 0.0 <= v <= 5.0}
        if bad:
            raise ValueError(f"resting creases must map rig AUs to [0, 5]: {bad}")

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["lights"] = list(d["lights"])
        d["occluders"] = list(d["occluders"])
        return d

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "SceneSpec":
        d = dict(data)
        d["lights"] = tuple(d.get("lights", ()))
        d["occluders"] = tuple(d.get("occluders", ()))
        return cls(**d)
