"""Shared fixtures of the trainer tests: tiny datasets written with aukit's DatasetWriter.

Images carry their AUs visibly (AU12 brightens a "mouth" band, AU01 a "brow" band), so a
few steps of training have something real to learn.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from aukit.aus import GANIMATION_AUS
from aukit.writer import DatasetWriter

# The test machine is shared: one thread per process avoids OpenMP stalls (see RunConfig).
torch.set_num_threads(1)

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
I12, I01 = GANIMATION_AUS.index("AU12"), GANIMATION_AUS.index("AU01")


def make_dataset(root: Path, n: int = 12, size: int = 32, seed: int = 0, n_test: int = 2,
                 fmt: str = "png") -> Path:
    """Write ``n`` labelled face-like images (``n_test`` of them in the test split)."""
    rng = np.random.default_rng(seed)
    writer = DatasetWriter(root, image_format=fmt)
    for i in range(n):
        aus = np.zeros(len(GANIMATION_AUS))
        aus[I12], aus[I01] = rng.uniform(0, 5, 2)
        img = np.full((size, size, 3), 90, np.uint8)
        img += rng.integers(0, 40, (size, size, 1), dtype=np.uint8)
        img[int(size * .7):int(size * .8), size // 4:3 * size // 4] = int(40 + 40 * aus[I12])
        img[int(size * .2):int(size * .27), size // 5:4 * size // 5] = int(40 + 40 * aus[I01])
        split = "test" if i < n_test else "train"
        writer.write_sample(f"s{seed}_{i:04d}", img, {"au17": aus.tolist(), "split": split})
    writer.finalize({"generator": "tests/train fixture", "seed": seed})
    return root


@pytest.fixture
def tiny_data(tmp_path: Path) -> Path:
    return make_dataset(tmp_path / "data")


def tiny_overrides(out: Path, steps_per_epoch_images: int = 8) -> list[str]:
    """Settings for a tiny, fast run: 32 px, narrow nets, batch 4, 1+1 epochs of 2 steps."""
    return [
        "model.image_size=32", "model.g_conv_dim=8", "model.g_res_blocks=1",
        "model.d_conv_dim=8", "model.d_layers=5",
        "optim.batch_size=4", "optim.n_critic=2", "optim.epochs_constant=1",
        "optim.epochs_decay=1", f"optim.epoch_images={steps_per_epoch_images}",
        "run.log_every=1", "run.image_every=2", "run.ckpt_every=100", "run.progress=false",
        "run.preview_images=2", "run.device=cpu", "run.cpu_threads=1", "data.workers=0",
        f"run.out_dir={out}",
    ]
