"""Streaming tar-sharded datasets into training: coverage, per-rank disjointness, shuffling,
exact resumption at a sample boundary, and a training run on a sharded source."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from aukit.dataset import read_dataset
from aukit.shards import ShardSample, ShardWriter
from train.config import DataConfig, SourceConfig, load_config, with_sources
from train.data import Mixture, batches, load_source
from train.loop import training_loop
from train.shards import ShardSet, ShardStream

from conftest import make_dataset, tiny_overrides


def shard_copy(folder: Path, dst: Path, shard_size: int = 3) -> Path:
    """The folder dataset rewritten as shards (image bytes unchanged)."""
    writer, batch, k = ShardWriter(dst, shard_size), [], 0
    for s in sorted(read_dataset(folder), key=lambda s: s.id):
        batch.append(ShardSample(s.id, "png", s.image.read_bytes(), {"id": s.id, "au17": s.aus.tolist(),
                                                                      "split": s.split}))
        if len(batch) == shard_size:
            writer.write_shard(k, batch)
            batch, k = [], k + 1
    if batch:
        writer.write_shard(k, batch)
    writer.finalize({})
    return dst


@pytest.fixture
def sharded(tmp_path: Path) -> tuple[Path, Path]:
    folder = make_dataset(tmp_path / "folder", n=26, n_test=2)
    return folder, shard_copy(folder, tmp_path / "shards")


def test_ranks_read_disjoint_shards_covering_the_split(sharded):
    _, root = sharded
    ss = ShardSet.open(root, "train")
    assert len(ss.samples) == 24
    for world in (1, 2, 3):
        streams = [ShardStream(ss, seed=5, rank=r, world=world) for r in range(world)]
        per_rank = [{s.flat_index(k) for k in range(len(s._epoch(0)))} for s in streams]
        assert set().union(*per_rank) == set(range(24))          # every sample, once per epoch
        assert sum(len(p) for p in per_rank) == 24                  # disjoint across ranks
        shard_of = {i: n for n, ids in enumerate(ss.ids) for i in ids}
        names = [{shard_of[ss.samples[i].id] for i in p} for p in per_rank]
        assert all(not (a & b) for k, a in enumerate(names) for b in names[k + 1:])


def test_stream_is_shuffled_and_reproducible(sharded):
    _, root = sharded
    ss = ShardSet.open(root, "train")
    s = ShardStream(ss, seed=1)
    e0 = [s.flat_index(k) for k in range(24)]
    e1 = [s.flat_index(24 + k) for k in range(24)]
    assert e0 != list(range(24)) and e0 != e1 and sorted(e0) == sorted(e1)
    assert e0 == [ShardStream(ss, seed=1).flat_index(k) for k in range(24)]
    assert e0 != [ShardStream(ss, seed=2).flat_index(k) for k in range(24)]


def _mixture(sharded, weights=(0.5, 0.5)):
    folder, root = sharded
    cfg = DataConfig(sources=(SourceConfig("real", folder, weight=weights[0]),
                              SourceConfig("synth", root, weight=weights[1])))
    return Mixture([load_source(src, "train") for src in cfg.sources], cfg)


def test_resume_continues_at_the_same_sample(sharded):
    mix = _mixture(sharded)
    kw = dict(seed=3, batch=4, size=32)
    full = list(batches(mix, start=0, stop=8, **kw))
    resumed = list(batches(mix, start=5, stop=8, **kw))
    for a, b in zip(full[5:], resumed):
        assert a.step == b.step and np.array_equal(a.images.numpy(), b.images.numpy())
        assert np.array_equal(a.real.numpy(), b.real.numpy())
    streamed = [i for bt in full for i, src in zip(range(4), bt.source.tolist()) if src == 1]
    assert streamed, "the sharded source should be drawn"


def test_ranks_split_the_global_batch(sharded):
    mix = _mixture(sharded, (0.0, 1.0))  # only the sharded source
    kw = dict(seed=4, batch=4, size=32, start=0, stop=6)
    r0 = [b.images.numpy() for b in batches(mix, rank=0, world=2, **kw)]
    r1 = [b.images.numpy() for b in batches(mix, rank=1, world=2, **kw)]
    assert all(a.shape[0] == 2 for a in r0 + r1)
    assert any(not np.array_equal(a, b) for a, b in zip(r0, r1))


def test_training_on_a_sharded_source(sharded, tmp_path):
    _, root = sharded
    run = tmp_path / "run"
    cfg = with_sources(load_config(None, tiny_overrides(run) + ["data.cache=stream"]), [f"synth:{root}"], None)
    result = training_loop(cfg)
    assert result.step == result.total_steps
    stats = json.loads((run / "data.json").read_text())
    assert stats[0]["format"] == "shards" and stats[0]["n_images"] == 24
