"""Models under evaluation: GANimation checkpoints (via ``train.checkpoint``) and the
"no-edit" baseline (output = input, attention = 1 everywhere), with their provenance.

``real_share``: the expected share of real images in the model's training batches, from
the stored config: per-source sampling weights (``--mix``), or image counts when no weight
is given (the trainer's rule), and each source's kind from its dataset manifest
(``kind: ausynth-render`` = synthetic, anything else real).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aukit.aus import to_unit
from aukit.hashing import file_sha1
from eval.testsets import SYNTHETIC, dataset_summary

BASELINE = "no-edit"


@dataclass
class EvalModel:
    """``generator`` None = the no-edit baseline. ``info``: JSON-ready provenance."""

    name: str
    generator: Any
    image_size: int
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def is_baseline(self) -> bool:
        return self.generator is None

    @torch.no_grad()
    def edit(self, images: np.ndarray, target: np.ndarray, device: torch.device) -> tuple[np.ndarray, np.ndarray]:
        """Edit uint8 (B, S, S, 3) images to one target (17,) FACS. Returns uint8 outputs
        (B, S, S, 3) and float32 attention (B, S, S) in [0, 1] (1 = input pixel kept)."""
        if self.generator is None:
            return images.copy(), np.ones(images.shape[:3], np.float32)
        x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().to(device) / 127.5 - 1
        aus = torch.from_numpy(to_unit(np.asarray(target, np.float64))).float().to(device)
        out = self.generator(x, aus[None].expand(len(x), -1))
        img = ((out.image.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()
        return img, out.attention[:, 0].float().cpu().numpy()


def parse_checkpoint_arg(text: str) -> tuple[str, Path]:
    """``NAME=RUN_OR_CKPT`` or ``RUN_OR_CKPT`` (name: the run directory's or file's stem)."""
    name, sep, path = text.partition("=")
    if not sep:
        p = Path(text)
        name, path = (p.name if p.is_dir() else (p.parent.parent.name if p.parent.name == "checkpoints"
                                                 else p.stem)), text
    if not name.replace("_", "").replace("-", "").replace(".", "").isalnum():
        raise ValueError(f"--checkpoint name {name!r} must be alphanumeric (with _ - .)")
    if name == BASELINE:
        raise ValueError(f"--checkpoint name {BASELINE!r} is reserved for the baseline row")
    return name, Path(path)


def checkpoint_file(path: Path) -> Path:
    return path / "checkpoints" / "latest.pt" if path.is_dir() else path


def load_model(name: str, path: Path, device: torch.device) -> EvalModel:
    """Load a checkpoint's generator; ``train.checkpoint.CheckpointError`` if unusable."""
    from train.checkpoint import load, load_generator

    gen, mcfg, step = load_generator(path, device)
    ckpt_path = checkpoint_file(path)
    config = load(ckpt_path)["config"]
    sources = [dict(name=s["name"], weight=s.get("weight"), **dataset_summary(s["path"]))
               for s in config.get("data", {}).get("sources", [])]
    info = {"checkpoint": str(ckpt_path.resolve()), "sha1": file_sha1(ckpt_path), "step": step,
            "image_size": mcfg.image_size, "config": config, "sources": sources,
            "real_share": real_share(sources)}
    return EvalModel(name, gen, mcfg.image_size, info)


def baseline_model(image_size: int) -> EvalModel:
    return EvalModel(BASELINE, None, image_size,
                     {"checkpoint": None, "note": "output = input, attention = 1: the floor/ceiling "
                      "every metric has when nothing is edited", "real_share": None})


def real_share(sources: list[dict[str, Any]]) -> float | None:
    """Expected share of real images per batch (None if a source's kind is unknown)."""
    if not sources or any("kind" not in s for s in sources):
        return None
    if any(s.get("weight") is not None for s in sources):
        w = np.array([float(s.get("weight") or 0.0) for s in sources])
    else:
        w = np.array([float(s.get("manifest_n_train") or 0) for s in sources])
    if w.sum() <= 0:
        return None
    real = np.array([s["kind"] != SYNTHETIC for s in sources])
    return float(w[real].sum() / w.sum())
