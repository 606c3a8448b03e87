"""Action Unit (AU) names, orders and scales: the one place that defines them.

Scales
------
* **FACS scale** (everything in this project, labels included): continuous intensity in
  ``[0, 5]``; 0 = absent, 1 = trace (A), 5 = maximum (E).
* **GANimation scale**: the official GANimation code divides the OpenFace 0-5 intensities
  by 5 inside its data loader. Here that conversion happens *only* in :func:`to_unit` /
  :func:`from_unit`, called explicitly by the trainer; nothing else rescales AUs.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

FACS_MAX = 5.0

#: The 17 AUs of GANimation / OpenFace, in the column order of ``aus_openface.pkl``.
GANIMATION_AUS: tuple[str, ...] = (
    "AU01", "AU02", "AU04", "AU05", "AU06", "AU07", "AU09", "AU10", "AU12",
    "AU14", "AU15", "AU17", "AU20", "AU23", "AU25", "AU26", "AU45",
)

#: Every AU the face rig can express, in ascending FACS number (the rig/label order).
#: The 17 GANimation AUs plus py-feat's extra AU11/AU24/AU28/AU43 and AU27 (mouth stretch).
RIG_AUS: tuple[str, ...] = (
    "AU01", "AU02", "AU04", "AU05", "AU06", "AU07", "AU09", "AU10", "AU11", "AU12",
    "AU14", "AU15", "AU17", "AU20", "AU23", "AU24", "AU25", "AU26", "AU27", "AU28",
    "AU43", "AU45",
)

FACS_NAMES: dict[str, str] = {
    "AU01": "inner brow raiser", "AU02": "outer brow raiser", "AU04": "brow lowerer",
    "AU05": "upper lid raiser", "AU06": "cheek raiser", "AU07": "lid tightener",
    "AU09": "nose wrinkler", "AU10": "upper lip raiser", "AU11": "nasolabial deepener",
    "AU12": "lip corner puller", "AU14": "dimpler", "AU15": "lip corner depressor",
    "AU17": "chin raiser", "AU20": "lip stretcher", "AU23": "lip tightener",
    "AU24": "lip pressor", "AU25": "lips part", "AU26": "jaw drop", "AU27": "mouth stretch",
    "AU28": "lip suck", "AU43": "eyes closed", "AU45": "blink",
}

#: EMFACS-style prototypes (FACS 0-5 intensities of a clear, moderately strong display).
#: Sources: Ekman & Friesen's EMFACS tables and Friesen & Ekman (1983); intensities chosen
#: so that each prototype is unambiguous. The emotion names follow FER2013's classes.
#: Happiness is the posed, parted-lip grin (6+12+25 at E/E/C-D): a closed-lip 6+12 smile
#: is a different display from the broad grins that photo sets label "happy".
EMOTION_PROTOTYPES: dict[str, dict[str, float]] = {
    "happiness": {"AU06": 4.0, "AU12": 5.0, "AU25": 3.0},
    "sadness": {"AU01": 3.5, "AU04": 2.5, "AU15": 3.5, "AU17": 1.5},
    "surprise": {"AU01": 4.0, "AU02": 4.0, "AU05": 3.5, "AU25": 3.0, "AU26": 3.5},
    "fear": {"AU01": 3.5, "AU02": 3.0, "AU04": 2.5, "AU05": 4.0, "AU07": 1.5, "AU20": 3.5,
             "AU25": 2.5, "AU26": 1.5},
    "anger": {"AU04": 4.0, "AU05": 2.5, "AU07": 3.5, "AU23": 3.5, "AU24": 1.5},
    "disgust": {"AU09": 4.0, "AU10": 2.5, "AU15": 2.0, "AU17": 1.5, "AU04": 1.5},
    "contempt": {"AU14": 3.5, "AU12": 1.0},
}
EMOTIONS: tuple[str, ...] = ("neutral",) + tuple(EMOTION_PROTOTYPES)

#: FACS-predicted AU sets that separate each emotion from neutral (used by AUC checks).
EMOTION_KEY_AUS: dict[str, tuple[str, ...]] = {
    "happiness": ("AU06", "AU12"),
    "surprise": ("AU01", "AU02", "AU05", "AU26"),
    "sadness": ("AU01", "AU04", "AU15"),
    "anger": ("AU04", "AU05", "AU07", "AU23"),
    "disgust": ("AU09", "AU15"),
}


def validate_au_names(names: Sequence[str], allowed: Sequence[str] = RIG_AUS) -> None:
    """Raise ``ValueError`` naming every AU in ``names`` that is not in ``allowed``."""
    bad = [n for n in names if n not in allowed]
    if bad:
        raise ValueError(f"unknown AU name(s) {bad}; known: {', '.join(allowed)}")


def au_vector(values: Mapping[str, float], order: Sequence[str] = RIG_AUS) -> np.ndarray:
    """Dense float64 vector in ``order`` from a sparse ``{AU: intensity}`` mapping (0-5)."""
    validate_au_names(list(values), RIG_AUS)
    return np.array([float(values.get(a, 0.0)) for a in order], dtype=np.float64)


def au_dict(vector: Sequence[float], order: Sequence[str] = RIG_AUS) -> dict[str, float]:
    """Inverse of :func:`au_vector`: ``{AU: float}`` for every entry of ``order``."""
    if len(vector) != len(order):
        raise ValueError(f"expected {len(order)} AU values, got {len(vector)}")
    return {a: float(v) for a, v in zip(order, vector)}


def rig_to_ganimation(rig_vector: np.ndarray) -> np.ndarray:
    """Map ``(..., len(RIG_AUS))`` rig intensities to ``(..., 17)`` GANimation order.

    AU45 (blink) and AU43 (eyes closed) share one eyelid shape, so the GANimation AU45
    column carries ``max(AU43, AU45)``: the eyelid closure the image actually shows.
    """
    idx = {a: i for i, a in enumerate(RIG_AUS)}
    out = np.stack([rig_vector[..., idx[a]] for a in GANIMATION_AUS], axis=-1)
    out[..., GANIMATION_AUS.index("AU45")] = np.maximum(
        rig_vector[..., idx["AU43"]], rig_vector[..., idx["AU45"]])
    return out


def to_unit(facs: np.ndarray) -> np.ndarray:
    """FACS 0-5 -> GANimation's 0-1 network scale (the documented ``/5``)."""
    return np.asarray(facs) / FACS_MAX


def from_unit(unit: np.ndarray) -> np.ndarray:
    """GANimation 0-1 network scale -> FACS 0-5."""
    return np.asarray(unit) * FACS_MAX


def parse_au_assignments(text: str, allowed: Sequence[str] = RIG_AUS) -> dict[str, float]:
    """Parse ``"AU12=3,AU06=2"`` into ``{"AU12": 3.0, "AU06": 2.0}`` (checked, 0-5)."""
    out: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"expected AUxx=value, got {part!r}")
        name = name.strip().upper()
        validate_au_names([name], allowed)
        val = float(value)
        if not 0.0 <= val <= FACS_MAX:
            raise ValueError(f"{name}={val}: intensity must be in [0, {FACS_MAX:g}]")
        out[name] = val
    return out
