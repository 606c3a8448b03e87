"""Checkpoints of the AU CNN: plain tensors and builtins, loadable with ``weights_only=True``.

Format (a dict): ``format`` = :data:`FORMAT`, ``version``, ``model_config`` (the
:class:`~annotate.cnn.model.ModelConfig` as a dict), ``rig_aus`` (output order),
``state_dict`` (the EMA weights), ``train`` (JSON-ready summary: config, steps, minutes,
metrics). Written to a temporary name and renamed, so a killed run never leaves a torn file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

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
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path


def load(path: str | Path) -> tuple[AUNet, dict[str, Any]]:
    """The model (eval mode, CPU) and the training summary stored in ``path``."""
    path = Path(path)
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
    model = AUNet(from_dict(ModelConfig, ckpt["model_config"]))
    model.load_state_dict(ckpt["state_dict"])
    return model.eval(), ckpt.get("train", {})
