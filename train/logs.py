"""Run-directory outputs: metrics as JSON lines and TensorBoard, image grids, progress bar.

Only rank 0 writes. Loss terms are accumulated on the device between log lines and read
back with one transfer per line, so logging adds one synchronisation per ``log_every``
steps instead of one per loss per step.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from aukit import atomic


class Meter:
    """Running sums of loss terms (device tensors) and their counts (host ints)."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}

    def add(self, terms: dict[str, torch.Tensor]) -> None:
        for k, v in terms.items():
            v = v.detach().float()
            self.sums[k] = self.sums[k] + v if k in self.sums else v.clone()
            self.counts[k] = self.counts.get(k, 0) + 1

    def stacked(self) -> tuple[list[str], torch.Tensor | None]:
        keys = sorted(self.sums)
        if not keys:
            return keys, None
        return keys, torch.stack([self.sums[k] / self.counts[k] for k in keys])

    def reset(self) -> None:
        self.sums.clear()
        self.counts.clear()


def non_finite(values: dict[str, float]) -> list[str]:
    """Names of the NaN/Inf entries of ``values``."""
    return [k for k, v in values.items() if not math.isfinite(v)]


class RunLogger:
    """Writes ``metrics.jsonl`` and TensorBoard events under the run directory."""

    def __init__(self, run_dir: Path, enabled: bool):
        self.run_dir = run_dir
        self.enabled = enabled
        self.tb = None
        if enabled:
            from torch.utils.tensorboard import SummaryWriter  # lazy: heavy import
            self.tb = SummaryWriter(str(run_dir / "tb"))
            self.fh = (run_dir / "metrics.jsonl").open("a")

    def event(self, name: str, **data: Any) -> None:
        if self.enabled:
            self._write({"event": name, "time": time.time(), **data})

    def scalars(self, step: int, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        self._write({"step": step, "time": time.time(), **values})
        for k, v in values.items():
            self.tb.add_scalar(k, v, step)

    def text(self, tag: str, text: str, step: int = 0) -> None:
        if self.enabled:
            self.tb.add_text(tag, text, step)

    def image(self, step: int, grid: np.ndarray) -> None:
        """Save ``uint8 (H, W, 3)`` as ``images/step_<step>.png`` and to TensorBoard."""
        if not self.enabled:
            return
        path = self.run_dir / "images" / f"step_{step:07d}.png"
        atomic.write_atomic(path, lambda fh: Image.fromarray(grid).save(fh, format="PNG"))
        self.tb.add_image("preview", grid, step, dataformats="HWC")

    def _write(self, record: dict[str, Any]) -> None:
        self.fh.write(json.dumps(record) + "\n")
        self.fh.flush()

    def close(self) -> None:
        if self.enabled:
            self.tb.close()
            self.fh.close()


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """``(B, C, H, W)`` in [-1, 1] (C = 1 or 3) -> ``uint8 (B, H, W, 3)``."""
    x = ((x.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    return x.permute(0, 2, 3, 1).numpy()


def preview_grid(real: torch.Tensor, attention: torch.Tensor, color: torch.Tensor,
                 output: torch.Tensor, cycle: torch.Tensor) -> np.ndarray:
    """One row per sample: input | attention (white = keep input) | colour | output | cycle."""
    cols = [to_uint8(real), to_uint8(attention * 2 - 1), to_uint8(color), to_uint8(output),
            to_uint8(cycle)]
    rows = [np.concatenate([c[i] for c in cols], axis=1) for i in range(real.shape[0])]
    return np.concatenate(rows, axis=0)
