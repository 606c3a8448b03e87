"""AU judge: the best AU annotator available here, run on face images the way ``prepare`` does.

Which annotator (:func:`choose_annotator`): the first of :data:`PREFERENCE` that is
registered in :mod:`annotate.registry` and can be built on this machine (an annotator
that raises :class:`~annotate.base.AnnotatorUnavailable`, e.g. py-feat without cached
weights, is passed over), unless one is named. ``openface`` is never chosen automatically:
it imports precomputed CSVs and cannot label new (generated) images.

Per image (uint8 RGB face crop of any size, e.g. a generator output): upscale to ``size``
px if smaller (Lanczos), find the largest face with MediaPipe (:mod:`aukit.faces`), cut
it with the shared crop rule (:mod:`aukit.crop`) at ``size`` px, and annotate that
:class:`~annotate.base.FaceSample` -- the same input ``ausynth prepare`` gives the
annotator, so the judge reads generated faces as the pseudo-labeller read real ones.
Faces are detected on each image, never taken from the input, so a judged AU reflects
the output's geometry. No face, or an annotator refusal: a NaN row and ``detected=False``.

Independence: when the same annotator also pseudo-labelled a model's real training data,
that model is judged by its own teacher on real test sets; reports flag it
(``annotator`` in the judge description). Exact labels (synthetic test sets) are read from
the dataset by the protocols, not produced here.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from PIL import Image

from aukit.aus import GANIMATION_AUS
from eval.judges._common import JudgeModelError, as_image_list
from eval.judges.cache import FeatureCache

#: Annotators in order of preference (most accurate first, per the annotators' own AUC
#: figures in docs/faces.md); only registered ones are tried.
PREFERENCE: tuple[str, ...] = ("synthetic-cnn", "geometric", "pyfeat")
N_AUS = len(GANIMATION_AUS)


@dataclass(frozen=True)
class AUJudgeOutput:
    """``aus``: float32 (N, 17) FACS 0-5, GANIMATION_AUS order, NaN rows where no face was
    found or the annotator refused; ``detected``: bool (N,)."""

    aus: np.ndarray
    detected: np.ndarray


def registered(preference: Sequence[str] = PREFERENCE) -> list[str]:
    """Names of ``preference`` that the annotator registry knows (nothing is built)."""
    from annotate import registry
    return [name for name in preference if name in registry.ANNOTATORS]


def choose_annotator(name: str = "auto", preference: Sequence[str] = PREFERENCE,
                     exclude: Sequence[str] = (), options: dict[str, Any] | None = None) -> Any:
    """Build the named annotator, or with ``"auto"`` the first buildable one of
    ``preference`` not in ``exclude``. Raises :class:`JudgeModelError` saying what was tried."""
    from annotate import registry
    from annotate.base import AnnotatorUnavailable

    candidates = [name] if name != "auto" else [n for n in registered(preference) if n not in exclude]
    tried = []
    for cand in candidates:
        try:
            return registry.create(cand, **(options or {}))
        except (AnnotatorUnavailable, ValueError) as exc:
            tried.append(f"{cand}: {exc}")
    known = ", ".join(sorted(registry.ANNOTATORS))
    raise JudgeModelError("no AU annotator can be built here"
                          + (f" ({'; '.join(tried)})" if tried else f" (none of {list(preference)} "
                             f"is registered; registered: {known})"))


class AUJudge:
    """17 AU intensities of face images from an annotator. Not thread-safe."""

    name = "au-judge"
    version = 1  # bump when detection/cropping changes: part of the cache key

    def __init__(self, annotator: str = "auto", preference: Sequence[str] = PREFERENCE,
                 size: int = 128, cache: FeatureCache | None = None,
                 options: dict[str, Any] | None = None, exclude: Sequence[str] = ()):
        self.annotator = choose_annotator(annotator, preference, exclude, options)
        self.size = int(size)
        self.cache = cache
        self._analyzer = None
        desc = json.dumps(self.describe_annotator(), sort_keys=True, default=str)
        digest = hashlib.sha1(desc.encode()).hexdigest()[:12]
        self.judge_id = f"{self.name}-v{self.version}-{self.annotator.name}-s{self.size}-{digest}"

    def describe_annotator(self) -> dict[str, Any]:
        try:
            return dict(self.annotator.describe())
        except Exception:  # describe() is informational; never let it stop an evaluation
            return {"name": getattr(self.annotator, "name", "?")}

    def describe(self) -> dict[str, Any]:
        return {"judge": self.judge_id, "annotator": self.describe_annotator(), "crop_px": self.size,
                "detector": "aukit.faces (MediaPipe) on the judged image, crop rule aukit.crop"}

    def predict(self, images: np.ndarray | Sequence[np.ndarray]) -> AUJudgeOutput:
        """Judge uint8 (H, W, 3) RGB images; see :class:`AUJudgeOutput`."""
        ims = as_image_list(images)
        if not ims:
            return AUJudgeOutput(np.zeros((0, N_AUS), np.float32), np.zeros(0, bool))
        if self.cache is None:
            rows = self._compute(ims, list(range(len(ims))))
        else:
            rows = self.cache.map(self.judge_id, ims, self._compute)
        rows = rows.reshape(len(ims), N_AUS + 1)
        detected = rows[:, -1] > 0.5
        aus = rows[:, :N_AUS].copy()
        aus[~detected] = np.nan
        return AUJudgeOutput(aus, detected)

    def _compute(self, images: list[np.ndarray], idx: list[int]) -> np.ndarray:
        rows = np.full((len(images), N_AUS + 1), np.nan, np.float32)
        rows[:, -1] = 0.0
        for r, im in enumerate(images):
            au = self._one(im)
            if au is not None:
                rows[r, :N_AUS], rows[r, -1] = au, 1.0
        return rows

    def _one(self, image: np.ndarray) -> np.ndarray | None:
        from annotate.base import AnnotationError, FaceSample, check_estimate
        from aukit.crop import crop_box, crop_image

        if max(image.shape[:2]) < self.size:  # small crops: detect and cut at the annotator's size
            scale = self.size / max(image.shape[:2])
            pil = Image.fromarray(image).resize((round(image.shape[1] * scale), round(image.shape[0] * scale)),
                                                Image.Resampling.LANCZOS)
            image = np.asarray(pil)
        face = self._detector().largest_face(image, allow_tiny=True)
        if face is None:
            return None
        box = crop_box(face.landmarks[:, :2])
        crop = crop_image(image, box, self.size)
        lm = box.landmarks_to_crop(face.landmarks, self.size)
        sample = FaceSample(crop, lm, np.asarray(face.landmarks, np.float32), "<judged image>", 0)
        try:
            return check_estimate(self.annotator.annotate(sample), self.annotator.name).au17
        except AnnotationError:
            return None

    def _detector(self) -> Any:
        if self._analyzer is None:
            from aukit.faces import FaceAnalyzer, FaceConfig  # lazy: imports MediaPipe
            self._analyzer = FaceAnalyzer(FaceConfig(min_face_px=16))
        return self._analyzer
