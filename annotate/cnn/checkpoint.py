"""Checkpoints of the AU CNN: plain tensors and builtins, loadable with ``weights_only=True``.

Format (a dict): ``format`` = :data:`FORMAT`, ``version``, ``model_config`` (the
:class:`~annotate.cnn.model.ModelConfig` as a dict), ``rig_aus`` (output order),
``state_dict`` (the EMA weights), ``train`` (JSON-ready summary: config, steps, minutes,
metrics); optionally ``landmark_head`` (the landmark branch's arrays as float64 tensors,
:class:`~annotate.cnn.geometry.LandmarkHead`) and ``cnn_weight`` (17,) its per-AU fusion
weights. Written to a temporary name and renamed, so a killed run never leaves a torn file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from annotate.cnn.geometry import LandmarkHead
from annotate.cnn.model import AUNet, ModelConfig
from aukit.aus import RIG_AUS
from aukit.config import from_dict, to_dict

FORMAT = "ausynth-au-cnn"
VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable or not an AU-CNN checkpoint."""


def save(path: str | Path, model: AUNet, train_info: dict[str, Any]) -> Path:
    """Write ``model`` (its current weights) and ``train_info`` to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "version": VERSION, "model_config": to_dict(model.cfg),
               "rig_aus": list(RIG_AUS), "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()},
               "train": train_info}
    return _write(path, payload)


def attach_landmark_head(path: str | Path, head: LandmarkHead, cnn_weight: np.ndarray,
                         info: dict[str, Any]) -> Path:
    """Add (or replace) the landmark branch and its fusion weights in the checkpoint at
    ``path``; ``info`` is merged into its training summary under ``"landmarks"``."""
    path = Path(path)
    ckpt = _read(path)
    ckpt["landmark_head"] = {k: torch.from_numpy(v) for k, v in head.to_arrays().items()}
    ckpt["cnn_weight"] = torch.as_tensor(np.asarray(cnn_weight, np.float64))
    ckpt["train"] = {**ckpt.get("train", {}), "landmarks": info}
    return _write(path, ckpt)


def load_landmark_head(path: str | Path) -> tuple[LandmarkHead, np.ndarray] | None:
    """The landmark branch and its per-AU CNN weights (17,) stored in ``path``, or None."""
    return _branch(_read(Path(path)), path)


def load(path: str | Path) -> tuple[AUNet, dict[str, Any]]:
    """The model (eval mode, CPU) and the training summary stored in ``path``."""
    ckpt = _read(Path(path))
    return _model(ckpt), ckpt.get("train", {})


def load_annotator(path: str | Path) -> tuple[AUNet, dict[str, Any], tuple[LandmarkHead, np.ndarray] | None]:
    """:func:`load` and :func:`load_landmark_head` from one read of ``path``."""
    ckpt = _read(Path(path))
    return _model(ckpt), ckpt.get("train", {}), _branch(ckpt, path)


def _model(ckpt: dict[str, Any]) -> AUNet:
    model = AUNet(from_dict(ModelConfig, ckpt["model_config"]))
    model.load_state_dict(ckpt["state_dict"])
    return model.eval()


def _branch(ckpt: dict[str, Any], path: str | Path) -> tuple[LandmarkHead, np.ndarray] | None:
    if "landmark_head" not in ckpt:
        return None
    try:
        head = LandmarkHead.from_arrays({k: v.numpy() for k, v in ckpt["landmark_head"].items()})
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: bad landmark head: {exc}") from exc
    return head, ckpt["cnn_weight"].numpy()


def _write(path: Path, payload: dict[str, Any]) -> Path:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path


def _read(path: Path) -> dict[str, Any]:
    """The checked payload of an AU-CNN checkpoint."""
    if not path.is_file():
        raise CheckpointError(f"AU-CNN checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt file, or pickled objects that weights_only refuses
        raise CheckpointError(f"cannot read AU-CNN checkpoint {path}: {type(exc).__name__}: {exc}") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an AU-CNN checkpoint (format {FORMAT!r} expected)")
    if ckpt.get("version") != VERSION or list(ckpt.get("rig_aus", ())) != list(RIG_AUS):
        raise CheckpointError(f"{path}: checkpoint version/AU order does not match this code")
    return ckpt
