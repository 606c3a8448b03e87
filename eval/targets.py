"""Target AU sets of the edit-fidelity protocols.

* ``au``: one AU at one intensity, every other AU 0 (FACS 0-5). The default is every
  GANimation AU at intensities 1..5 (85 targets).
* ``emotion``: an EMFACS prototype (:data:`aukit.aus.EMOTION_PROTOTYPES`) mapped to the
  17 GANimation AUs (AUs outside them, e.g. AU24 in anger, are dropped, as ``ausynth edit``
  does). Contempt is left out by default: the expression judge has no contempt class.

Targets are absolute (the generator is asked for exactly these AUs, whatever the input).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from aukit.aus import EMOTION_PROTOTYPES, GANIMATION_AUS, RIG_AUS, au_vector, rig_to_ganimation

DEFAULT_EMOTIONS: tuple[str, ...] = ("happiness", "sadness", "surprise", "fear", "anger", "disgust")


@dataclass(frozen=True)
class Target:
    """``kind``: ``"au"`` or ``"emotion"``; ``name``: AU or emotion name; ``intensity``: the
    AU's FACS value (``au``) or 0 (``emotion``); ``aus``: float64 (17,) FACS 0-5."""

    kind: str
    name: str
    intensity: float
    aus: np.ndarray

    @property
    def label(self) -> str:
        """Short description, e.g. ``AU12=3`` or ``happiness (AU06=4 AU12=5 AU25=3)``."""
        if self.kind == "au":
            return f"{self.name}={self.intensity:g}"
        parts = " ".join(f"{a}={v:g}" for a, v in zip(GANIMATION_AUS, self.aus) if v > 0)
        return f"{self.name} ({parts})"


def emotion_aus(emotion: str) -> np.ndarray:
    """The 17 GANimation AUs (FACS) of an emotion prototype."""
    if emotion not in EMOTION_PROTOTYPES:
        raise ValueError(f"unknown emotion {emotion!r}; choose from {list(EMOTION_PROTOTYPES)}")
    return rig_to_ganimation(au_vector(EMOTION_PROTOTYPES[emotion], RIG_AUS)).astype(np.float64)


def build_targets(aus: Sequence[str] = GANIMATION_AUS, intensities: Sequence[float] = (1, 2, 3, 4, 5),
                  emotions: Sequence[str] = DEFAULT_EMOTIONS) -> list[Target]:
    """Single-AU targets (AU-major order), then emotion prototypes."""
    out = []
    for a in aus:
        if a not in GANIMATION_AUS:
            raise ValueError(f"{a} is not a GANimation AU {list(GANIMATION_AUS)}")
        for v in intensities:
            if not 0 < float(v) <= 5:
                raise ValueError(f"intensity {v} outside (0, 5]")
            vec = np.zeros(len(GANIMATION_AUS))
            vec[GANIMATION_AUS.index(a)] = float(v)
            out.append(Target("au", a, float(v), vec))
    out += [Target("emotion", e, 0.0, emotion_aus(e)) for e in emotions]
    return out
