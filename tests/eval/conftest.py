"""Fixtures of the evaluation tests: tiny datasets, a tiny checkpoint, a pixel AU judge.

The images are blocky "faces" whose AUs are visible as brightness (AU12 brightens a mouth
band, AU01 a brow band, as in the trainer's fixtures), so a judge that reads those bands
gives known answers without any face detector.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from aukit.aus import GANIMATION_AUS, RIG_AUS
from aukit.writer import DatasetWriter
from eval.judges.au import AUJudgeOutput

torch.set_num_threads(1)

SIZE = 32
I12, I01 = GANIMATION_AUS.index("AU12"), GANIMATION_AUS.index("AU01")
MOUTH = (slice(int(SIZE * .7), int(SIZE * .8)), slice(SIZE // 4, 3 * SIZE // 4))
BROW = (slice(int(SIZE * .2), int(SIZE * .27)), slice(SIZE // 5, 4 * SIZE // 5))


def face_image(rng: np.random.Generator, au12: float, au01: float, size: int = SIZE) -> np.ndarray:
    img = np.full((size, size, 3), 90, np.uint8)
    img += rng.integers(0, 40, (size, size, 1), dtype=np.uint8)
    img[MOUTH] = int(40 + 40 * au12)
    img[BROW] = int(40 + 40 * au01)
    return img


def region_map(size: int = SIZE) -> np.ndarray:
    """Rig-order AU region bitfield: AU12 on the mouth band, AU01 on the brow band."""
    m = np.zeros((size, size), np.uint32)
    m[MOUTH] |= np.uint32(1 << RIG_AUS.index("AU12"))
    m[BROW] |= np.uint32(1 << RIG_AUS.index("AU01"))
    return m


def write_set(root: Path, kind: str, n: int = 8, n_test: int = 6, seed: int = 0) -> Path:
    """A tiny dataset. ``kind="real"``: emotion source labels (half neutral), identities;
    ``kind="synthetic"``: a render-like manifest, exact zero AUs on test faces, regions."""
    rng = np.random.default_rng(seed)
    w = DatasetWriter(root, image_format="png")
    for i in range(n):
        split = "test" if i < n_test else "train"
        neutral = i % 2 == 0 or kind == "synthetic" and split == "test"
        aus = np.zeros(17)
        if not neutral:
            aus[I12], aus[I01] = rng.uniform(1, 5, 2)
        label = {"au17": aus.tolist(), "split": split}
        arrays = {}
        if kind == "real":
            label.update(identity=f"p{seed}_{i // 2}", source_labels={"emotion": "neutral" if neutral else "happiness"})
        else:
            label["spec"] = {"identity": {"seed": 1000 * seed + i}, "expression": {"strategy": "dataset"}}
            arrays["au_regions"] = region_map()
        w.write_sample(f"{kind[0]}{seed}_{i:03d}", face_image(rng, aus[I12], aus[I01]), label, arrays or None)
    extra = {"kind": "ausynth-render", "au_region_bits": list(RIG_AUS)} if kind == "synthetic" else {"command": "prepare"}
    w.finalize(extra)
    return root


class BandJudge:
    """AU judge reading the bands: AU12/AU01 = (brightness - 40) / 40, others 0."""

    judge_id = "band-judge-test"

    def describe(self) -> dict:
        return {"judge": self.judge_id, "annotator": {"name": "band"}}

    def predict(self, images) -> AUJudgeOutput:
        ims = np.asarray(images, np.float64)
        aus = np.zeros((len(ims), 17), np.float32)
        aus[:, I12] = np.clip((ims[:, MOUTH[0], MOUTH[1]].mean((1, 2, 3)) - 40) / 40, 0, 5)
        aus[:, I01] = np.clip((ims[:, BROW[0], BROW[1]].mean((1, 2, 3)) - 40) / 40, 0, 5)
        return AUJudgeOutput(aus, np.ones(len(ims), bool))


def tiny_checkpoint(root: Path, data: Path, steps: int = 2) -> Path:
    """Train a 32 px GANimation for ``steps`` critic steps; returns the run directory."""
    from aukit import config as cfgmod
    from train.config import TrainConfig, with_sources
    from train.loop import training_loop

    out = root / "run"
    overrides = ["model.image_size=32", "model.g_conv_dim=8", "model.g_res_blocks=1", "model.d_conv_dim=8",
                 "model.d_layers=5", "optim.batch_size=4", "optim.n_critic=2", "optim.epochs_constant=1",
                 "optim.epochs_decay=1", f"optim.epoch_images={4 * steps // 2}", "run.log_every=1",
                 "run.image_every=100", "run.ckpt_every=100", "run.progress=false", "run.preview_images=2",
                 "run.device=cpu", "run.cpu_threads=1", "data.workers=0", f"run.out_dir={out}"]
    data_cfg: dict = {}
    for item in overrides:
        cfgmod.apply_override(data_cfg, item)
    cfg = with_sources(cfgmod.from_dict(TrainConfig, data_cfg), [f"synth:{data}"], None)
    training_loop(cfg)
    return out


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory) -> dict[str, Path]:
    """Datasets and a tiny trained checkpoint shared by the end-to-end tests."""
    root = tmp_path_factory.mktemp("evalworld")
    synth_train = write_set(root / "synth_train", "synthetic", n=12, n_test=0, seed=1)
    real = write_set(root / "real", "real", n=12, n_test=8, seed=2)
    synth_test = write_set(root / "synth_test", "synthetic", n=4, n_test=4, seed=3)
    run = tiny_checkpoint(root, synth_train)
    return {"root": root, "synth_train": synth_train, "real": real, "synth_test": synth_test, "run": run}


SETTINGS = ["select.n_faces=3", "targets.aus=[AU12,AU01]", "targets.intensities=[1,5]",
            "targets.emotions=[happiness]", "stats.n_boot=100", "realism.max_boot=10",
            "realism.reference_max=20", "grid_faces=2"]


def band_judges(cfg, cache_dir):
    """Stand-in for ``eval.runner.build_judges``: the real expression and identity judges,
    the band AU judge."""
    from eval.protocols import Judges
    from eval.judges.cache import FeatureCache
    from eval.judges.expression import ExpressionJudge
    from eval.judges.identity import IdentityJudge
    cache = FeatureCache(cache_dir)
    judges = Judges(ExpressionJudge(cache=cache), IdentityJudge(cache=cache), BandJudge())
    return judges, judges.describe()


def run_eval(world, out: Path, extra: list[str] = ()) -> int:
    from eval.cli import build_parser, main
    argv = ["--checkpoint", f"tiny={world['run']}", "--test-set", f"real:{world['real']}",
            "--test-set", f"syn:{world['synth_test']}", "--out", str(out), "--no-progress",
            *[a for s in [*SETTINGS, *extra] for a in ("--set", s)]]
    return main(build_parser().parse_args(argv))


@pytest.fixture(scope="session")
def evaluated(tiny_world, tmp_path_factory):
    from eval import runner
    mp = pytest.MonkeyPatch()
    mp.setattr(runner, "build_judges", band_judges)
    out = tmp_path_factory.mktemp("eval") / "ev"
    assert run_eval(tiny_world, out) == 0
    yield out
    mp.undo()
