"""AU labels from py-feat's ``Detectorv1`` (RetinaFace + MobileFaceNet + XGBoost AU model).

py-feat downloads its weights from the Hugging Face hub on first use. This annotator never
downloads: it builds the detector with the hub in offline mode, so it works only where the
weights are already in the Hugging Face cache (run ``python -c "from feat import
Detectorv1; Detectorv1(emotion_model=None, identity_model=None, gaze_model=None)"`` once
on a machine with network access, then copy ``~/.cache/huggingface``). Without them it
raises :class:`~annotate.base.AnnotatorUnavailable` saying so.

Scale: py-feat's XGBoost AU outputs are presence probabilities in [0, 1], not FACS
intensities. We report ``5 x probability`` on the 0-5 scale; treat it as an uncalibrated
intensity. py-feat has no AU45 (blink); its AU43 (eyes closed) fills that column.
``confidence`` is py-feat's face score. Importing py-feat loads torch and xgboost (~8 s)
and sets ``OMP_NUM_THREADS=1`` for the process (py-feat's own workaround).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from annotate.base import AnnotationError, AnnotatorUnavailable, AUEstimate, FaceSample
from aukit.aus import FACS_MAX, GANIMATION_AUS

#: GANIMATION_AUS column -> py-feat output column.
PYFEAT_COLUMNS: dict[str, str] = {a: a for a in GANIMATION_AUS} | {"AU45": "AU43"}
_HOW = ("py-feat's weights must already be in the Hugging Face cache (see annotate/pyfeat.py "
        "or docs/faces.md); use --annotator openface or another annotator otherwise")


def _build_detector(device: str) -> Any:
    """py-feat's detector with the hub forced offline (cache only)."""
    try:
        import huggingface_hub.constants as hf_constants
        from feat import Detectorv1
    except ImportError as exc:
        raise AnnotatorUnavailable(f"py-feat is not importable ({exc}); pip install py-feat==2.1.5") from exc
    import torch

    saved = hf_constants.HF_HUB_OFFLINE
    hf_constants.HF_HUB_OFFLINE = True  # read at call time by hf_hub_download: no network
    # py-feat's RetinaFace/FaceBoxes constructors call torch.set_grad_enabled(False) for the
    # whole process; restore the caller's mode so training later in the process still works
    grad = torch.is_grad_enabled()
    try:
        return Detectorv1(face_model="retinaface", landmark_model="mobilefacenet", au_model="xgb",
                          emotion_model=None, identity_model=None, gaze_model=None, device=device)
    except Exception as exc:  # hub errors come in many types; all mean "weights not cached"
        raise AnnotatorUnavailable(f"cannot build py-feat's detector offline: "
                                   f"{type(exc).__name__}: {exc}. {_HOW}") from exc
    finally:
        hf_constants.HF_HUB_OFFLINE = saved
        torch.set_grad_enabled(grad)


class PyFeatAnnotator:
    """Runs py-feat on the face crop; uses the largest face it finds there."""

    name = "pyfeat"

    def __init__(self, device: str = "cpu"):
        self.device = device
        self._detector = _build_detector(device)

    def describe(self) -> dict[str, Any]:
        from importlib import metadata
        return {"name": self.name, "device": self.device, "py-feat": metadata.version("py-feat"),
                "models": "retinaface + mobilefacenet + xgb AU", "scale": "5 x AU presence probability"}

    def annotate(self, face: FaceSample) -> AUEstimate:
        import torch

        tensor = torch.from_numpy(np.ascontiguousarray(face.crop)).permute(2, 0, 1)[None]
        fex = self._detector.detect(tensor, data_type="tensor", progress_bar=False)
        rows = fex.dropna(subset=["FaceScore"]) if "FaceScore" in fex else fex.iloc[0:0]
        if len(rows) == 0:
            raise AnnotationError("pyfeat-no-face", "py-feat found no face in the crop")
        area = rows["FaceRectWidth"] * rows["FaceRectHeight"]
        row = rows.loc[area.idxmax()]
        missing = [c for c in PYFEAT_COLUMNS.values() if c not in row]
        if missing:
            raise AnnotationError("pyfeat-columns", f"py-feat output lacks {missing}")
        probs = np.array([float(row[PYFEAT_COLUMNS[a]]) for a in GANIMATION_AUS])
        au = np.clip(np.nan_to_num(probs) * FACS_MAX, 0.0, FACS_MAX).astype(np.float32)
        return AUEstimate(au, float(np.clip(row["FaceScore"], 0.0, 1.0)))


def create(device: str = "cpu") -> PyFeatAnnotator:
    """Registry factory."""
    return PyFeatAnnotator(device=device)
