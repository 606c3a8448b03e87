"""The ``synthetic-cnn`` annotator: a face crop -> 17 AUs (0-5) and a confidence.

The network (:mod:`annotate.cnn.model`) is trained on rendered faces only
(:mod:`annotate.cnn.train`); its checkpoint is not part of the repository. Inference:
RGB crop (any size, cut by the shared crop rule) -> grayscale -> ``image_size`` ->
per-image standardisation -> network, averaged with its mirror image (the rig's AUs are
bilateral) -> 22 rig AUs -> 17 GANimation AUs (:func:`aukit.aus.rig_to_ganimation`: the
AU45 column carries the eyelid closure, ``max(AU43, AU45)``). A checkpoint with a landmark
branch (:mod:`annotate.cnn.geometry`, also fitted on renders only) blends its AUs from the
face's MediaPipe landmarks in, per AU, with the weights stored beside it.

``confidence`` = predicted unoccluded face fraction x a pose factor (1 up to 30 deg of
predicted yaw, falling linearly to 0 at 70 deg), in [0, 1].
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from annotate.base import AnnotatorUnavailable, AUEstimate, FaceSample
from aukit.aus import FACS_MAX, rig_to_ganimation

DEFAULT_CHECKPOINT = "runs/synthetic-cnn/model.pt"
ENV_CHECKPOINT = "AUSYNTH_CNN_CHECKPOINT"
HOW_TO_TRAIN = ("train it with `python -m annotate.cnn.train --config configs/annotate/cnn-cpu.yaml` "
                "(see docs/annotators.md), then pass its path as the annotator option `checkpoint` "
                f"or set {ENV_CHECKPOINT}")


def resolve_checkpoint(checkpoint: str | os.PathLike | None) -> Path:
    """``checkpoint``, else ``$AUSYNTH_CNN_CHECKPOINT``, else :data:`DEFAULT_CHECKPOINT`."""
    return Path(checkpoint or os.environ.get(ENV_CHECKPOINT) or DEFAULT_CHECKPOINT)


class SyntheticCNNAnnotator:
    """AU CNN inference on CPU (one process; ``threads`` torch threads)."""

    name = "synthetic-cnn"

    def __init__(self, checkpoint: str | os.PathLike | None = None, tta: bool = True, threads: int = 1):
        import torch

        from annotate.cnn.checkpoint import CheckpointError, load_annotator

        self.path = resolve_checkpoint(checkpoint)
        if not self.path.is_file():
            raise AnnotatorUnavailable(f"synthetic-cnn: no checkpoint at {self.path}; {HOW_TO_TRAIN}")
        try:
            self.model, self.train_info, self.branch = load_annotator(self.path)
        except CheckpointError as exc:
            raise AnnotatorUnavailable(f"synthetic-cnn: {exc}") from exc
        self.tta = tta
        torch.set_num_threads(max(1, threads))

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "checkpoint": str(self.path), "tta_mirror": self.tta,
                "landmark_branch": self.branch is not None,
                "image_size": self.model.cfg.image_size, "trained": {k: self.train_info.get(k) for k in
                                                                     ("steps", "minutes", "datasets", "samples")}}

    def annotate(self, face: FaceSample) -> AUEstimate:
        au17, conf = self.predict(face.crop[None], face.landmarks[None])
        return AUEstimate(au17[0], float(conf[0]))

    def predict(self, crops: np.ndarray, landmarks: np.ndarray | None = None,
                batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """uint8 (N, H, W, 3) RGB crops and, for a checkpoint with a landmark branch, their
        float (N, 478, 3) MediaPipe landmarks (crop pixels) -> (float32 (N, 17) AUs 0-5,
        float32 (N,) confidence). Without ``landmarks`` only the CNN answers."""
        if landmarks is not None and np.shape(landmarks)[:1] != np.shape(crops)[:1]:
            raise ValueError(f"{np.shape(crops)[0]} crops but {np.shape(landmarks)[0]} landmark sets")
        au17, conf = predict_crops(self.model, crops, self.tta, batch)
        if self.branch is not None and landmarks is not None and len(au17):
            from annotate.cnn.geometry import fuse

            head, weight = self.branch
            au17 = fuse(au17, head.predict(landmarks), weight)
        return au17, conf


def predict_crops(model: Any, crops: np.ndarray, tta: bool = True,
                  batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Run ``model`` (an :class:`~annotate.cnn.model.AUNet`) on uint8 (N, H, W, 3) RGB crops:
    (float32 (N, 17) AUs 0-5, float32 (N,) confidence). ``tta``: average with the mirror."""
    crops = np.asarray(crops)
    if crops.ndim != 4 or crops.shape[-1] != 3 or crops.dtype != np.uint8:
        raise ValueError(f"expected uint8 (N, H, W, 3) RGB crops, got {crops.dtype} {crops.shape}")
    was_training = model.training
    model.eval()
    try:
        outs = [_predict(model, crops[i:i + batch], tta) for i in range(0, len(crops), batch)]
    finally:
        model.train(was_training)
    if not outs:
        return np.zeros((0, 17), np.float32), np.zeros(0, np.float32)
    return np.concatenate([o[0] for o in outs]), np.concatenate([o[1] for o in outs])


def _predict(model: Any, crops: np.ndarray, tta: bool) -> tuple[np.ndarray, np.ndarray]:
    import torch
    import torch.nn.functional as F

    from annotate.cnn.model import to_gray

    size = model.cfg.image_size
    with torch.no_grad():
        rgb = torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float() / 255.0
        x = F.interpolate(to_gray(rgb), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        out = model(x)
        aus, vis, yaw = out["aus"], torch.sigmoid(out["visible"]), out["pose"][:, 0] * 45.0
        if tta:
            mirror = model(torch.flip(x, dims=[3]))
            aus = 0.5 * (aus + mirror["aus"])
            vis = 0.5 * (vis + torch.sigmoid(mirror["visible"]))
    au17 = np.clip(rig_to_ganimation(aus.numpy().astype(np.float64)), 0.0, FACS_MAX).astype(np.float32)
    pose_factor = np.clip((70.0 - np.abs(yaw.numpy())) / 40.0, 0.0, 1.0)
    return au17, np.clip(vis.numpy() * pose_factor, 0.0, 1.0).astype(np.float32)


def create(checkpoint: str | None = None, tta: bool = True, threads: int = 1) -> SyntheticCNNAnnotator:
    """Registry factory (``checkpoint``: path; default :func:`resolve_checkpoint`)."""
    return SyntheticCNNAnnotator(checkpoint=checkpoint, tta=tta, threads=threads)
