"""The ``geometric`` annotator: 17 AUs from the 478 MediaPipe landmarks by fitting the rig.

No learning from real data and no weights: the rig's own AU basis is fitted to the
landmarks (:func:`aukit.fitting.fit_landmarks`: weak-perspective pose, identity shape and
bounded AU intensities, with the real-photo landmark prior), like OpenFace's geometric
features but with our rig's exact FACS fields. Choices over the plain fit (measured on
the real-face *dev* split and on renders, see docs/annotators.md):

* **Only the GANimation AUs are fitted** (AU11/AU24/AU27/AU28 left out; AU45 shares
  AU43's eyelid field, so the fitted closure goes to the AU45 column): the extra fields
  look like the 17 and otherwise soak up their motion (AU11 takes much of a smile).
* **MediaPipe's depth is ignored** (``z_weight`` 0): its z is a learned guess that follows
  identity more than expression; x/y alone separate expressions better.
* **Per-AU calibration** (optional, off by default): a monotone piecewise-linear map per
  AU from fitted to true intensity, learned by ``python -m annotate.geometric_calibrate``
  from renders whose AUs are exact, with landmarks from the same MediaPipe mesh. Measured:
  it does not help on real faces (MediaPipe tracks the rig's renders differently from
  photos: on renders 7 of the 17 fitted AUs correlate < 0.1 with the truth, so their maps
  come out flat), hence off; see docs/annotators.md.

``confidence``: ``exp(-(residual / 0.04)^2)`` (residual: RMS 2D landmark misfit / eye
distance, ~0.01-0.03 on real photos) times a pose factor that falls from 1 at 30 deg of yaw
to 0 at 70 deg (landmarks of a profile are mostly guessed).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from annotate.base import AnnotationError, AUEstimate, FaceSample
from aukit.aus import FACS_MAX, GANIMATION_AUS, rig_to_ganimation
from aukit.config import check

#: Rig AUs not fitted: AU45 = AU43's field; AU11/24/27/28 are not among the 17 and mimic them.
FIXED_AUS: tuple[str, ...] = ("AU45", "AU11", "AU24", "AU27", "AU28")


@dataclass(frozen=True)
class GeometricConfig:
    """Fit settings (see :class:`aukit.fitting.FitOptions`) and the confidence scale."""

    z_weight: float = 0.0
    shape_reg: float = 0.02
    au_reg: float = 0.002
    iterations: int = 30
    fixed_aus: tuple[str, ...] = FIXED_AUS
    residual_scale: float = 0.04
    regions: bool = False   # upper-face AUs fitted to the upper face only, the rest to the lower (no gain on dev)

    def __post_init__(self) -> None:
        check(self.z_weight >= 0 and self.shape_reg >= 0 and self.au_reg >= 0,
              "geometric: z_weight, shape_reg and au_reg must be >= 0")
        check(self.iterations >= 1 and self.residual_scale > 0, "geometric: iterations >= 1, residual_scale > 0")

    def fit_options(self) -> Any:
        from aukit.fitting import FitOptions

        return FitOptions(iterations=self.iterations, z_weight=self.z_weight, shape_reg=self.shape_reg,
                          au_reg=self.au_reg, fixed_aus=self.fixed_aus)


@dataclass(frozen=True)
class Calibration:
    """Per GANimation AU: monotone knots ``x`` (fitted) -> ``y`` (true), FACS 0-5."""

    knots_x: dict[str, list[float]]
    knots_y: dict[str, list[float]]
    source: dict[str, Any]

    def apply(self, au17: np.ndarray) -> np.ndarray:
        """(..., 17) fitted intensities -> calibrated (..., 17), clipped to [0, 5]."""
        out = np.array(au17, dtype=np.float64, copy=True)
        for k, name in enumerate(GANIMATION_AUS):
            if name in self.knots_x:
                out[..., k] = np.interp(out[..., k], self.knots_x[name], self.knots_y[name])
        return np.clip(out, 0.0, FACS_MAX)

    def to_json(self) -> dict[str, Any]:
        return {"knots_x": self.knots_x, "knots_y": self.knots_y, "source": self.source}

    @staticmethod
    def from_json(data: dict[str, Any]) -> "Calibration":
        for name, xs in data["knots_x"].items():
            ys = data["knots_y"][name]
            if len(xs) != len(ys) or len(xs) < 2 or np.any(np.diff(xs) <= 0) or np.any(np.diff(ys) < 0):
                raise ValueError(f"calibration of {name}: knots must be increasing and monotone")
        return Calibration(data["knots_x"], data["knots_y"], data.get("source", {}))


def load_calibration(path: str | Path) -> Calibration:
    """A calibration file written by ``python -m annotate.geometric_calibrate``."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"geometric calibration file not found: {p}")
    return Calibration.from_json(json.loads(p.read_text()))


#: Rig AUs of the upper face (brows, lids, cheeks, nose), as in the CNN's region model.
UPPER_AUS = frozenset({"AU01", "AU02", "AU04", "AU05", "AU06", "AU07", "AU09", "AU43", "AU45"})
#: cm in the rig's neutral frame: the upper fit uses the landmarks above ``UPPER_FROM`` (the
#: eyes and up), the lower fit those below ``LOWER_TO`` (cheeks, nose, mouth, jaw).
UPPER_FROM, LOWER_TO = 1.0, 2.0


def fit_au17(landmarks: np.ndarray, cfg: GeometricConfig) -> tuple[np.ndarray, Any]:
    """Uncalibrated (17,) AUs (FACS 0-5) and the :class:`aukit.fitting.FitResult` of (478, 3)
    MediaPipe landmarks (pixels: x right, y down, z MediaPipe's depth). With ``cfg.regions``
    the upper-face AUs come from a fit of the upper landmarks only and the others from a fit
    of the lower ones; the returned fit (pose, residual) is the whole-face one."""
    from aukit.aus import RIG_AUS
    from aukit.basis import load_basis
    from aukit.fitting import fit_landmarks

    fit = fit_landmarks(landmarks, options=cfg.fit_options())
    if not cfg.regions:
        return rig_to_ganimation(fit.aus), fit
    y = load_basis().neutral[:468, 1]
    upper = fit_landmarks(landmarks, options=cfg.fit_options(), point_weight=(y >= UPPER_FROM).astype(float))
    lower = fit_landmarks(landmarks, options=cfg.fit_options(), point_weight=(y <= LOWER_TO).astype(float))
    is_upper = np.array([a in UPPER_AUS for a in RIG_AUS])
    return rig_to_ganimation(np.where(is_upper, upper.aus, lower.aus)), fit


def confidence(residual: float, yaw: float, residual_scale: float) -> float:
    """Fit quality in [0, 1] from the normalised residual and the fitted yaw (deg)."""
    pose = float(np.clip((70.0 - abs(yaw)) / 40.0, 0.0, 1.0))
    return float(np.exp(-(residual / residual_scale) ** 2)) * pose


class GeometricAnnotator:
    """Landmarks -> rig fit -> (calibrated) 17 AUs. Cheap: ~40-150 ms per face, no torch."""

    name = "geometric"

    def __init__(self, config: GeometricConfig | None = None, calibration: str | Path | None = None):
        self.cfg = config or GeometricConfig()
        self.calibration = load_calibration(calibration) if calibration else None

    def describe(self) -> dict[str, Any]:
        from aukit.config import to_dict

        return {"name": self.name, "config": to_dict(self.cfg),
                "calibration": None if self.calibration is None else self.calibration.source}

    def annotate(self, face: FaceSample) -> AUEstimate:
        lm = np.asarray(face.landmarks, dtype=np.float64)
        if lm.ndim != 2 or lm.shape[0] < 468 or lm.shape[1] != 3 or not np.isfinite(lm[:468]).all():
            raise AnnotationError("geometric-landmarks", f"need (478, 3) finite landmarks, got {lm.shape}")
        try:
            au17, fit = fit_au17(lm, self.cfg)
        except (ValueError, np.linalg.LinAlgError) as exc:
            raise AnnotationError("geometric-fit", str(exc)) from exc
        if self.calibration is not None:
            au17 = self.calibration.apply(au17)
        conf = confidence(fit.residual, fit.pose.get("yaw", 0.0), self.cfg.residual_scale)
        return AUEstimate(np.clip(au17, 0.0, FACS_MAX).astype(np.float32), conf)


def create(calibration: str | None = None, **fit: Any) -> GeometricAnnotator:
    """Registry factory. ``calibration``: optional calibration JSON; ``fit``:
    :class:`GeometricConfig` fields (e.g. ``z_weight=0.3``)."""
    from aukit.config import from_dict

    cfg = from_dict(GeometricConfig, fit, "geometric")
    return GeometricAnnotator(cfg, calibration)
