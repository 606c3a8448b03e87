"""The AU annotator interface: a face crop in, 17 AU intensities and a confidence out.

An annotator is any object with a ``name`` and an ``annotate(face) -> AUEstimate``
method; :data:`annotate.registry.ANNOTATORS` maps names to factories
(``factory(**options) -> Annotator``). ``prepare`` builds one annotator per worker process.

Contract (checked by :func:`check_estimate`, so a buggy annotator cannot write bad labels):
``au17`` float32 (17,), GANIMATION_AUS order, FACS scale 0-5; ``confidence`` in [0, 1].
An annotator that cannot label a face raises :class:`AnnotationError`; ``prepare`` then
skips that face with the error's reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol, runtime_checkable

import numpy as np

from aukit.aus import FACS_MAX, GANIMATION_AUS


@dataclass(frozen=True)
class FaceSample:
    """What an annotator sees of one face.

    ``crop``: uint8 (S, S, 3) RGB, cut by ``aukit.crop`` (S = ``--size``).
    ``landmarks``: float32 (478, 3) MediaPipe landmarks in crop pixels (z scaled alike).
    ``image_landmarks``: float32 (478, 3) the same landmarks in pixels of the original,
    upright (EXIF-rotated) photo. ``source``: the photo's path relative to ``--images``,
    POSIX separators. ``face_index``: 0 for the largest face, 1 for the next, ...
    """

    crop: np.ndarray
    landmarks: np.ndarray
    image_landmarks: np.ndarray
    source: str
    face_index: int = 0


@dataclass(frozen=True)
class AUEstimate:
    """``au17``: float32 (17,), GANIMATION_AUS order, 0-5. ``confidence``: [0, 1]."""

    au17: np.ndarray
    confidence: float


class AnnotationError(ValueError):
    """An annotator cannot label this face. ``reason`` is a short machine-readable code."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class AnnotatorUnavailable(RuntimeError):
    """An annotator cannot be built here (missing weights, files or packages)."""


@runtime_checkable
class Annotator(Protocol):
    name: str

    def annotate(self, face: FaceSample) -> AUEstimate:
        """17 AU intensities (0-5) and a confidence for ``face``; AnnotationError if not."""
        ...

    def describe(self) -> dict[str, Any]:
        """JSON-ready description (name, version, options, model files) for the manifest."""
        ...


AnnotatorFactory = Callable[..., Annotator]


def check_estimate(est: AUEstimate, who: str) -> AUEstimate:
    """Validate an annotator's output; returns it with ``au17`` as float32 (17,)."""
    au = np.asarray(est.au17, dtype=np.float32)
    if au.shape != (len(GANIMATION_AUS),) or not np.all(np.isfinite(au)):
        raise ValueError(f"annotator {who!r} returned au17 of shape {au.shape} (need 17 finite values)")
    if au.min() < 0 or au.max() > FACS_MAX:
        raise ValueError(f"annotator {who!r} returned AU intensities outside [0, {FACS_MAX:g}]: "
                         f"[{au.min():.3f}, {au.max():.3f}]")
    conf = float(est.confidence)
    if not 0.0 <= conf <= 1.0:
        raise ValueError(f"annotator {who!r} returned confidence {conf} outside [0, 1]")
    return AUEstimate(au, conf)
