"""Readers (GANimation, ausynth, OpenFace), mixing by ratio, target samplers, batch loading."""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from aukit.aus import GANIMATION_AUS, to_unit
from aukit.config import ConfigError
from aukit.dataset import DatasetError
from train.config import DataConfig, SourceConfig, load_config, with_sources
from train.data import (Mixture, batches, load_source, plan_batch, preload, preview_batch,
                        to_device)
from train.openface import read_openface_csv, read_openface_dataset

from conftest import SHARED, make_dataset

SAMPLE = SHARED / "ganimation_sample"
needs_sample = pytest.mark.skipif(not SAMPLE.is_dir(),
                                  reason=f"official GANimation sample not found at {SAMPLE}")


def mixture(*roots_weights, **data_kw) -> Mixture:
    sources = tuple(SourceConfig(name=f"s{i}", path=r, weight=w)
                    for i, (r, w) in enumerate(roots_weights))
    cfg = DataConfig(sources=sources, **data_kw)
    return Mixture([load_source(s, cfg.split) for s in sources], cfg)


@needs_sample
@pytest.mark.shared_data
def test_official_sample_loads_as_is():
    src = load_source(SourceConfig(name="real", path=SAMPLE), "train")
    assert src.format == "ganimation" and not src.rendered
    assert {s.id for s in src.samples} == {"N_0000000437_00540", "N_0000000356_00190"}
    assert src.aus.shape == (2, 17) and src.aus.max() <= 5 and src.aus.min() >= 0
    mix = Mixture([src], DataConfig(sources=(SourceConfig(name="real", path=SAMPLE),)))
    cache = preload(mix, 64, workers=0)  # 128 px jpgs, resized for a small config
    assert cache.shape == (2, 3, 64, 64) and cache.dtype == torch.uint8
    # AUs leave the reader on the 0-1 scale through aukit.aus.to_unit, nowhere else.
    np.testing.assert_allclose(mix.aus_unit, to_unit(src.aus), rtol=1e-6)


def test_ausynth_dataset_reads_with_splits(tiny_data: Path):
    train = load_source(SourceConfig(name="synth", path=tiny_data), "train")
    test = load_source(SourceConfig(name="synth", path=tiny_data), "test")
    assert len(train.samples) == 10 and len(test.samples) == 2 and train.rendered


def test_untrusted_pickle_is_refused(tmp_path: Path):
    root = make_dataset(tmp_path / "d", n=3)
    (root / "aus.csv").unlink()  # force the pickle path

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    (root / "aus_openface.pkl").write_bytes(pickle.dumps({"s0_0000": Evil()}))
    with pytest.raises(DatasetError, match="refusing"):
        load_source(SourceConfig(name="x", path=root), "train")
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("bad_id", ["../escape.jpg", "/etc/passwd", "a/../../b.jpg"])
def test_ids_escaping_imgs_are_refused(tmp_path: Path, bad_id: str):
    root = make_dataset(tmp_path / "d", n=3)
    (root / "train_ids.csv").write_text(f"{bad_id}\n")
    with pytest.raises(DatasetError, match="unsafe"):
        load_source(SourceConfig(name="x", path=root), "train")


def test_missing_and_empty_sources_fail_clearly(tmp_path: Path):
    with pytest.raises(DatasetError, match="folder not found"):
        load_source(SourceConfig(name="x", path=tmp_path / "nope"), "train")
    root = make_dataset(tmp_path / "d", n=2, n_test=2)  # nothing in train
    with pytest.raises(DatasetError, match="no usable 'train' samples"):
        load_source(SourceConfig(name="x", path=root), "train")


OPENFACE_HEADER = "face, confidence, " + ", ".join(f"{a}_r" for a in GANIMATION_AUS) + \
    ", " + ", ".join(f"{a}_c" for a in GANIMATION_AUS)


def _openface_row(face: int, conf: float, values: np.ndarray) -> str:
    return ", ".join([str(face), str(conf)] + [f"{v:.2f}" for v in values] + ["1"] * 17)


def test_openface_csv_picks_most_confident_face(tmp_path: Path):
    a, b = np.full(17, 1.0), np.arange(17) / 4
    p = tmp_path / "x.csv"
    p.write_text("\n".join([OPENFACE_HEADER, _openface_row(0, 0.3, a), _openface_row(1, 0.9, b)]))
    np.testing.assert_allclose(read_openface_csv(p), np.round(b, 2))
    p.write_text("face, confidence, AU01_r\n0, 0.9, 1.0\n")
    with pytest.raises(DatasetError, match="lacks intensity columns"):
        read_openface_csv(p)


def test_openface_folder_reads_and_autodetects(tmp_path: Path):
    root = make_dataset(tmp_path / "d", n=4, n_test=0)
    (root / "aus.csv").unlink()
    (root / "aus_openface.pkl").unlink()
    (root / "train_ids.csv").unlink()
    (root / "test_ids.csv").unlink()
    (root / "openface").mkdir()
    rng = np.random.default_rng(0)
    truth = {}
    for img in sorted((root / "imgs").iterdir())[:3]:  # the 4th image has no CSV
        truth[img.stem] = np.round(rng.uniform(0, 5, 17), 2)
        (root / "openface" / f"{img.stem}.csv").write_text(
            OPENFACE_HEADER + "\n" + _openface_row(0, 0.98, truth[img.stem]) + "\n")
    samples = read_openface_dataset(root, "train")
    assert {s.id for s in samples} == set(truth)
    src = load_source(SourceConfig(name="of", path=root), "train")
    assert src.format == "openface"
    for s in src.samples:
        np.testing.assert_allclose(s.aus, truth[s.id])


def test_plans_are_deterministic_per_step(tiny_data: Path):
    mix = mixture((tiny_data, None))
    a, b = plan_batch(mix, 3, 7, 8), plan_batch(mix, 3, 7, 8)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(plan_batch(mix, 3, 8, 8).target, a.target)
    assert not np.array_equal(plan_batch(mix, 4, 7, 8).target, a.target)


def test_mixing_follows_weights(tmp_path: Path):
    a = make_dataset(tmp_path / "a", n=30, seed=1, n_test=0)
    b = make_dataset(tmp_path / "b", n=6, seed=2, n_test=0)
    mix = mixture((a, 0.25), (b, 0.75))
    src = np.concatenate([mix.source_of[plan_batch(mix, 0, s, 64).index] for s in range(50)])
    assert abs((src == 1).mean() - 0.75) < 0.03  # 3200 draws: 4 sigma ~ 0.03
    # Without weights every image is equally likely: source shares follow the sizes.
    mix = mixture((a, None), (b, None))
    src = np.concatenate([mix.source_of[plan_batch(mix, 0, s, 64).index] for s in range(50)])
    assert abs((src == 1).mean() - 6 / 36) < 0.03
    assert [s["n_images"] for s in mix.stats()] == [30, 6]


def test_target_samplers(tmp_path: Path):
    a = make_dataset(tmp_path / "a", n=8, seed=1, n_test=0)
    b = make_dataset(tmp_path / "b", n=8, seed=2, n_test=0)
    # "source": targets come from source s1's AU rows (e.g. the rendered distribution).
    mix = mixture((a, 0.5), (b, 0.5), target_sampler="source", target_source="s1")
    plan = plan_batch(mix, 0, 0, 256)
    pool = mix.aus_unit[mix.source_of == 1]
    dist = np.abs(plan.target[:, None, :] - pool[None]).max(-1).min(-1)
    assert dist.max() <= 0.1 + 1e-6           # within the U(-0.1, 0.1) noise of a pool row
    other = mix.aus_unit[mix.source_of == 0]
    assert np.abs(plan.target[:, None, :] - other[None]).max(-1).min(-1).max() > 0.1
    # "shuffle" without noise: each target is exactly some sample's AUs.
    mix = mixture((a, None), target_noise=0.0)
    plan = plan_batch(mix, 0, 0, 32)
    assert np.abs(plan.target[:, None, :] - mix.aus_unit[None]).max(-1).min(-1).max() == 0


def test_memory_and_stream_loaders_give_identical_batches(tiny_data: Path):
    mix = mixture((tiny_data, None))
    cache = preload(mix, 32, workers=0)
    mem = list(batches(mix, seed=1, batch=4, size=32, start=3, stop=6, cache=cache))
    streamed = list(batches(mix, seed=1, batch=4, size=32, start=3, stop=6, workers=1))
    assert [b.step for b in mem] == [b.step for b in streamed] == [3, 4, 5]
    for m, s in zip(mem, streamed):
        for x, y in zip(m[1:], s[1:]):
            torch.testing.assert_close(x, y)
    # Flips are applied: a flipped row equals the mirrored cached image.
    plan = plan_batch(mix, 1, 3, 4)
    row = int(np.argmax(plan.flip)) if plan.flip.any() else None
    if row is not None:
        torch.testing.assert_close(mem[0].images[row], cache[plan.index[row]].flip(-1))


def test_ranks_split_the_global_batch(tiny_data: Path):
    mix = mixture((tiny_data, None))
    whole = next(batches(mix, seed=0, batch=4, size=32, start=2, stop=3))
    parts = [next(batches(mix, seed=0, batch=4, size=32, start=2, stop=3, rank=r, world=2))
             for r in range(2)]
    torch.testing.assert_close(torch.cat([p.images for p in parts]), whole.images)
    torch.testing.assert_close(torch.cat([p.target for p in parts]), whole.target)


def test_to_device_scales_to_minus_one_one():
    x = to_device(torch.tensor([0, 255, 128], dtype=torch.uint8).view(1, 3, 1, 1),
                  torch.device("cpu"), channels_last=False)
    torch.testing.assert_close(x.flatten(), torch.tensor([-1.0, 1.0, 128 / 127.5 - 1]))


def test_preview_batch(tiny_data: Path):
    mix = mixture((tiny_data, None))
    images, real, target = preview_batch(mix, 0, 3, 32)
    assert images.shape == (3, 3, 32, 32) and real.shape == target.shape == (3, 17)


def test_cli_style_sources_and_mix(tmp_path: Path):
    cfg = with_sources(load_config(), ["synth:/a", "real:/b@openface"], "synth=0.25,real=0.75")
    assert [(s.name, str(s.path), s.format, s.weight) for s in cfg.data.sources] == [
        ("synth", "/a", "auto", 0.25), ("real", "/b", "openface", 0.75)]
    with pytest.raises(ConfigError, match="unknown data source"):
        with_sources(load_config(), ["synth:/a"], "real=1")
    with pytest.raises(ConfigError, match="NAME:DIR"):
        with_sources(load_config(), ["justapath"], None)
