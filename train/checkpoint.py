"""Checkpoints: atomic, self-describing, and loadable with ``torch.load(weights_only=True)``.

A checkpoint is a dict of tensors and plain Python data only (no pickled classes), so
loading a file from elsewhere cannot run code. Keys::

    format      "ausynth-ganimation/1"
    step        critic steps completed (training resumes at this step)
    config      the resolved TrainConfig as plain data
    generator   state_dict          critic      state_dict
    opt_g       state_dict          opt_d       state_dict
    rng         {"torch": uint8 tensor, "cuda": [uint8 tensors], "numpy": {...}, "python": [...]}
"""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aukit import atomic, config as cfgmod
from train.config import TrainConfig
from train.networks import Generator, ModelConfig

FORMAT = "ausynth-ganimation/1"
LATEST = "latest.pt"


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable, or not one of ours."""


def capture_rng() -> dict[str, Any]:
    """Every global RNG state, as tensors and plain data."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, state, gauss = random.getstate()
    out: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": [version, list(state), gauss],
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    return out


def restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["cached"]))
    version, st, gauss = state["python"]
    random.setstate((version, tuple(st), gauss))
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"][: torch.cuda.device_count()])


def save(path: Path, *, step: int, config: TrainConfig, generator: torch.nn.Module,
         critic: torch.nn.Module, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer
         ) -> None:
    """Write a checkpoint atomically: a crash mid-write leaves the previous file intact."""
    payload = {
        "format": FORMAT,
        "step": int(step),
        "config": cfgmod.to_dict(config),
        "generator": generator.state_dict(),
        "critic": critic.state_dict(),
        "opt_g": opt_g.state_dict(),
        "opt_d": opt_d.state_dict(),
        "rng": capture_rng(),
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    atomic.write_bytes(path, buf.getvalue())


def load(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint safely (``weights_only=True``) and check its format."""
    path = Path(path)
    if path.is_dir():  # a run directory: take its latest checkpoint
        path = path / "checkpoints" / LATEST
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # corrupt file, or pickled objects weights_only refuses
        raise CheckpointError(f"cannot load checkpoint {path}: {exc}") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an ausynth GANimation checkpoint "
                              f"(format {ckpt.get('format') if isinstance(ckpt, dict) else None!r})")
    return ckpt


def config_of(ckpt: dict[str, Any]) -> TrainConfig:
    return cfgmod.from_dict(TrainConfig, ckpt["config"])


def load_generator(path: str | Path, device: str | torch.device = "cpu"
                   ) -> tuple[Generator, ModelConfig, int]:
    """The generator of a checkpoint in eval mode, its model config and its step."""
    ckpt = load(path, map_location=device)
    model_cfg = cfgmod.from_dict(ModelConfig, ckpt["config"]["model"], "model")
    gen = Generator(model_cfg)
    gen.load_state_dict(ckpt["generator"])
    return gen.to(device).eval(), model_cfg, int(ckpt["step"])
