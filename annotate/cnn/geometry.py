"""The landmark branch of ``synthetic-cnn``: MediaPipe landmarks -> 17 AUs, fitted on renders.

Why a second branch: on the real-face dev half, a linear map from MediaPipe's landmarks to
AUs, fitted on our renders only, separates surprise and anger from neutral better than the
pixel CNN (its mesh reacts to eyelids and shouting mouths, which the CNN's texture cues
miss on photos), while the CNN is better on sadness and the cheeks (docs/annotators.md).
The annotator fuses the two per AU.

Features: the 468 mesh points, aligned to a reference shape by a 3D similarity
(Procrustes: removes head pose, position and scale), their x, y flattened (936 values),
projected on the first ``n_components`` principal axes of the renders and standardised.
Model: ridge regression to the 17 GANimation AUs (FACS 0-5). Both are plain numpy arrays,
stored in the checkpoint (:mod:`annotate.cnn.checkpoint`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aukit.aus import EMOTION_KEY_AUS, FACS_MAX, GANIMATION_AUS
from aukit.landmarks import N_FACE
from aukit.meshops import similarity_fit

#: fusion weights tried per AU by :func:`search_weights` (weight of the CNN; 1 - w: landmarks)
WEIGHT_GRID = (0.0, 0.25, 0.5, 0.75, 1.0)


def normalise(lm: np.ndarray) -> np.ndarray:
    """(N, 478|468, 3) landmarks -> (N, 468, 3) centred, unit Frobenius norm."""
    x = np.asarray(lm, np.float64)[:, :N_FACE, :3]
    x = x - x.mean(axis=1, keepdims=True)
    return x / np.maximum(np.sqrt((x ** 2).sum(axis=(1, 2), keepdims=True)), 1e-12)


def rotate_to(x: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Rotate each normalised shape in ``x`` (N, 468, 3) onto ``ref`` (468, 3): the rotation
    of the least-squares similarity (:func:`aukit.meshops.similarity_fit`, no reflection);
    scale and position are already fixed by :func:`normalise`."""
    out = np.empty_like(x)
    for i, shape in enumerate(x):
        out[i] = shape @ similarity_fit(shape, ref)[1].T
    return out


def reference_shape(lm: np.ndarray, iterations: int = 3) -> np.ndarray:
    """Generalised Procrustes mean (468, 3) of (N, 478, 3) landmarks."""
    x = normalise(lm)
    ref = x.mean(axis=0)
    for _ in range(iterations):
        ref = rotate_to(x, ref / np.linalg.norm(ref)).mean(axis=0)
    return ref / np.linalg.norm(ref)


def features(lm: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """(N, 478, 3) landmarks (any pixel frame; z in the same units) -> (N, 936) aligned x, y."""
    aligned = rotate_to(normalise(lm), ref)
    return aligned[:, :, :2].reshape(len(aligned), -1)


@dataclass(frozen=True)
class LandmarkHead:
    """Fitted landmark branch. ``ref`` (468, 3); ``mean`` (936,); ``components`` (K, 936);
    ``scale`` (K,); ``coef`` (K, 17); ``intercept`` (17,)."""

    ref: np.ndarray
    mean: np.ndarray
    components: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray

    def predict(self, lm: np.ndarray) -> np.ndarray:
        """(N, 478, 3) MediaPipe landmarks -> float32 (N, 17) AUs, clipped to 0-5."""
        z = (features(lm, self.ref) - self.mean) @ self.components.T / self.scale
        return np.clip(z @ self.coef + self.intercept, 0.0, FACS_MAX).astype(np.float32)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {k: np.asarray(getattr(self, k), np.float64) for k in
                ("ref", "mean", "components", "scale", "coef", "intercept")}

    @staticmethod
    def from_arrays(arrays: dict[str, np.ndarray]) -> "LandmarkHead":
        head = LandmarkHead(**{k: np.asarray(v, np.float64) for k, v in arrays.items()})
        k = head.components.shape[0]
        if head.ref.shape != (N_FACE, 3) or head.coef.shape != (k, len(GANIMATION_AUS)):
            raise ValueError(f"landmark head arrays have unexpected shapes: ref {head.ref.shape}, coef {head.coef.shape}")
        return head


def fit_head(lm: np.ndarray, au17: np.ndarray, n_components: int = 30, alpha: float = 1.0) -> LandmarkHead:
    """Fit PCA + ridge on renders: ``lm`` (N, 478, 3) MediaPipe landmarks of rendered faces,
    ``au17`` (N, 17) their exact AUs (0-5). ``alpha``: ridge penalty on standardised components."""
    lm, au17 = np.asarray(lm), np.asarray(au17, np.float64)
    if len(lm) != len(au17) or len(lm) <= n_components:
        raise ValueError(f"need more than {n_components} landmark sets with matching AUs, got {len(lm)}/{len(au17)}")
    ref = reference_shape(lm)
    f = features(lm, ref)
    mean = f.mean(axis=0)
    _, _, vt = np.linalg.svd(f - mean, full_matrices=False)
    comps = vt[:n_components]
    z = (f - mean) @ comps.T
    scale = np.maximum(z.std(axis=0), 1e-12)
    z /= scale
    y_mean = au17.mean(axis=0)
    coef = np.linalg.solve(z.T @ z + alpha * np.eye(n_components), z.T @ (au17 - y_mean))
    return LandmarkHead(ref, mean, comps, scale, coef, y_mean)


def fuse(cnn17: np.ndarray, lm17: np.ndarray, cnn_weight: np.ndarray) -> np.ndarray:
    """Per-AU blend ``w * cnn + (1 - w) * landmarks``; all (N, 17), ``cnn_weight`` (17,)."""
    w = np.asarray(cnn_weight, np.float64)
    return (w * cnn17 + (1.0 - w) * lm17).astype(np.float32)


def search_weights(cnn17: np.ndarray, lm17: np.ndarray, emotion: np.ndarray,
                   emotions: tuple[str, ...], rounds: int = 2) -> np.ndarray:
    """CNN weight per AU (17,) that maximises the mean emotion-vs-neutral AUC over
    ``emotions`` (coordinate ascent over :data:`WEIGHT_GRID` on the key AUs; others 0.5).
    Used on the real-face *dev* half only, like the best-dev checkpoint choice."""
    from annotate.evalset import emotion_aucs

    def score(w: np.ndarray) -> float:
        aucs = emotion_aucs(fuse(cnn17, lm17, w), emotion, emotions)
        return float(np.nanmean([aucs[e]["auc"] for e in emotions]))

    keys = sorted({GANIMATION_AUS.index(a) for e in emotions for a in EMOTION_KEY_AUS[e]})
    w = np.full(len(GANIMATION_AUS), 0.5)
    for _ in range(rounds):
        for j in keys:
            trials = [(score(np.where(np.arange(len(w)) == j, v, w)), -abs(v - 0.5), v) for v in WEIGHT_GRID]
            w[j] = max(trials)[2]          # ties go to the even blend
    return w
