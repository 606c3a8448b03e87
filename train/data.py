"""Training data: dataset readers, mixing by ratio, target-AU samplers and batch loading.

Every random choice of a batch (which images, flips, target AUs, gradient-penalty mixing
weights) comes from ``plan_batch(step)``, a pure function of ``(seed, step)``. That makes
a resumed run draw exactly the batches an uninterrupted one would, lets loader workers
run ahead without any sampler state to checkpoint, and makes data-parallel ranks agree:
each rank takes its slice of the same global plan.

Scales: images leave the loader as ``uint8 (B, 3, S, S)`` and become ``[-1, 1]`` floats
on the device (:func:`to_device`); AUs are read on the FACS 0-5 scale and converted once,
here, with :func:`aukit.aus.to_unit` (the only /5 in the trainer).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, NamedTuple

import numpy as np
import torch
from PIL import Image

from aukit.aus import GANIMATION_AUS, to_unit
from aukit.dataset import (AU_CSV, AU_PKL, IMGS, LABELS, MANIFEST, DatasetError, Sample,
                           read_dataset)
from train.config import DataConfig, SourceConfig
from train.openface import is_openface_folder, read_openface_dataset
from train.shards import ShardReader, ShardSet, ShardStream, is_sharded

_PLAN_STREAM = 0x7A  # keeps batch draws independent of any other seeded stream
_PREVIEW_STREAM = 0x7B


@dataclass(frozen=True)
class SourceData:
    """The usable samples of one source: ``aus`` is ``(N, 17)`` FACS 0-5."""

    name: str
    root: Path
    format: str
    samples: list[Sample]
    aus: np.ndarray
    rendered: bool        # an ausynth render (labels.jsonl + manifest.json): exact labels
    shards: ShardSet | None = None   # set for tar-sharded sources, which are streamed


def load_source(src: SourceConfig, split: str) -> SourceData:
    """Read one source folder, with an error naming the folder when it is unusable."""
    root = Path(src.path)
    if not root.is_dir():
        raise DatasetError(f"data source {src.name!r}: folder not found: {root}")
    if is_sharded(root):
        shard_set = ShardSet.open(root, split)
        aus = np.stack([s.aus for s in shard_set.samples]).astype(np.float64)
        return SourceData(src.name, root, "shards", shard_set.samples, aus, True, shard_set)
    fmt = src.format
    if fmt == "auto":
        has_table = (root / AU_CSV).is_file() or (root / AU_PKL).is_file()
        fmt = "openface" if not has_table and is_openface_folder(root) else "ganimation"
    samples = (read_openface_dataset(root, split) if fmt == "openface"
               else read_dataset(root, split))
    if not samples:
        raise DatasetError(f"data source {src.name!r} ({root}, {fmt} format) has no usable "
                           f"'{split}' samples (ids listed with both an image and AUs)")
    aus = np.stack([s.aus for s in samples]).astype(np.float64)
    rendered = (root / LABELS).is_file() and (root / MANIFEST).is_file()
    return SourceData(src.name, root, fmt, samples, aus, rendered)


class Mixture:
    """All sources concatenated, with per-source sampling probabilities."""

    def __init__(self, sources: list[SourceData], cfg: DataConfig):
        if not sources:
            raise DatasetError("no data sources: pass --data NAME:DIR (or set data.sources)")
        self.names = [s.name for s in sources]
        self.sources = sources
        self.paths = [str(smp.image) for s in sources for smp in s.samples]
        self.sizes = np.array([len(s.samples) for s in sources])
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)[:-1]])
        self.source_of = np.repeat(np.arange(len(sources)), self.sizes)
        # The one place the trainer rescales AUs: FACS 0-5 -> network 0-1.
        self.aus_unit = to_unit(np.concatenate([s.aus for s in sources])).astype(np.float32)
        weights = [c.weight for c in cfg.sources] if cfg.sources else [None] * len(sources)
        if weights and weights[0] is not None:
            w = np.array(weights, dtype=np.float64)
        else:  # no mix given: every image equally likely, like one concatenated dataset
            w = self.sizes.astype(np.float64)
        self.probs = w / w.sum()
        self.cfg = cfg
        self.target_pool = (None if cfg.target_sampler == "shuffle"
                            else self.names.index(cfg.target_source))  # type: ignore[arg-type]
        self.streamed = [j for j, s in enumerate(sources) if s.shards is not None]
        self._readers: dict[int, ShardReader] = {}

    def decode(self, i: int, size: int) -> np.ndarray:
        """Image of flat sample ``i`` as ``uint8 (3, size, size)`` (file or shard member)."""
        j = int(self.source_of[i])
        if self.sources[j].shards is None:
            return decode_image(self.paths[i], size)
        if j not in self._readers:  # per process: loader workers build their own
            self._readers[j] = ShardReader(self.sources[j].shards.root)
        return self._readers[j].image(Path(self.paths[i]), size)

    def __len__(self) -> int:
        return len(self.paths)

    def draw(self, rng: np.random.Generator, n: int, source: int | None = None) -> np.ndarray:
        """``n`` flat sample indices: a source by probability, then uniform within it."""
        src = (np.full(n, source) if source is not None
               else rng.choice(len(self.sizes), size=n, p=self.probs))
        return self.offsets[src] + (rng.random(n) * self.sizes[src]).astype(np.int64)

    def stats(self) -> list[dict]:
        """Per-source counts, sampling probability and AU mean/std (FACS 0-5)."""
        out = []
        for s, p in zip(self.sources, self.probs):
            out.append({"source": s.name, "root": str(s.root), "format": s.format,
                        "rendered": s.rendered, "n_images": len(s.samples), "prob": float(p),
                        "au_mean": dict(zip(GANIMATION_AUS, np.round(s.aus.mean(0), 4).tolist())),
                        "au_std": dict(zip(GANIMATION_AUS, np.round(s.aus.std(0), 4).tolist()))})
        return out


class BatchPlan(NamedTuple):
    """The random choices of one global batch (length B arrays)."""

    index: np.ndarray    # int64 flat sample indices
    flip: np.ndarray     # bool, mirror left-right
    target: np.ndarray   # float32 (B, 17) target AUs, 0-1 scale plus noise
    alpha: np.ndarray    # float32 (B,) real/fake interpolation weights of the penalty


def plan_batch(mix: Mixture, seed: int, step: int, batch: int) -> BatchPlan:
    """Draw batch ``step`` of a run: a pure function of ``(seed, step)``."""
    rng = np.random.default_rng([seed, _PLAN_STREAM, step])
    index = mix.draw(rng, batch)
    flip = rng.random(batch) < 0.5 if mix.cfg.flip else np.zeros(batch, bool)
    # Official sampler: the AUs of another random training sample, plus U(-0.1, 0.1).
    other = mix.draw(rng, batch, source=mix.target_pool)
    noise = rng.uniform(-mix.cfg.target_noise, mix.cfg.target_noise, (batch, len(GANIMATION_AUS)))
    target = (mix.aus_unit[other] + noise).astype(np.float32)
    alpha = rng.random(batch).astype(np.float32)
    return BatchPlan(index, flip, target, alpha)


class Batch(NamedTuple):
    """One rank's share of a batch, on the host. Images uint8 ``(b, 3, S, S)``."""

    step: int
    images: torch.Tensor
    real: torch.Tensor     # float32 (b, 17), 0-1
    target: torch.Tensor   # float32 (b, 17), 0-1 plus noise
    alpha: torch.Tensor    # float32 (b,)
    source: torch.Tensor   # int64 (b,), index into Mixture.names


def decode_image(path: str, size: int) -> np.ndarray:
    """Read an image as ``uint8 (3, size, size)`` RGB (centre-cropped square, resized)."""
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            w, h = im.size
            if w != h:
                s = min(w, h)
                im = im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
            if im.size != (size, size):
                im = im.resize((size, size), Image.Resampling.LANCZOS)
            return np.asarray(im).transpose(2, 0, 1).copy()
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot read training image {path}: {exc}") from exc


def _assemble(mix: Mixture, plan: BatchPlan, rows: slice, idx: np.ndarray, images: torch.Tensor,
              step: int) -> Batch:
    flip = torch.from_numpy(plan.flip[rows])
    images = torch.where(flip.view(-1, 1, 1, 1), images.flip(-1), images)
    return Batch(step, images.contiguous(), torch.from_numpy(mix.aus_unit[idx]),
                 torch.from_numpy(plan.target[rows]), torch.from_numpy(plan.alpha[rows]),
                 torch.from_numpy(mix.source_of[idx]))


class _StepDataset(torch.utils.data.Dataset):
    """Item ``step`` = this rank's decoded batch of that step (used by worker processes)."""

    def __init__(self, mix: Mixture, seed: int, batch: int, rows: slice, size: int,
                 cache: torch.Tensor | None, rank: int = 0, world: int = 1):
        self.mix, self.seed, self.batch, self.rows, self.size = mix, seed, batch, rows, size
        self.cache = cache
        self.streams = {j: StreamCursor(mix, j, ShardStream(mix.sources[j].shards, seed, rank, world),
                                        seed, batch, rows) for j in mix.streamed}

    def __len__(self) -> int:
        return 2 ** 62

    def __getitem__(self, step: int) -> Batch:
        plan = plan_batch(self.mix, self.seed, step, self.batch)
        idx = plan.index[self.rows].copy()
        for cursor in self.streams.values():  # streamed sources: next samples of this rank's stream
            cursor.replace(step, idx)
        if self.cache is not None:
            images = self.cache[torch.from_numpy(idx)]
        else:
            images = torch.from_numpy(np.stack([self.mix.decode(i, self.size) for i in idx]))
        return _assemble(self.mix, plan, self.rows, idx, images, step)


class StreamCursor:
    """Position of a streamed source in one rank's stream at any step.

    Rows of step ``t`` drawn from source ``j`` take the next stream elements; the position
    at step ``s`` is the number of such rows in steps ``0..s-1`` (memoised every
    ``every`` steps), so any step can be produced, in any order, by any worker.
    """

    def __init__(self, mix: Mixture, j: int, stream: ShardStream, seed: int, batch: int, rows: slice,
                 every: int = 256):
        self.mix, self.j, self.stream, self.seed, self.batch, self.rows = mix, j, stream, seed, batch, rows
        self.every = every
        self._memo = {0: 0}

    def _count(self, step: int) -> int:
        idx = plan_batch(self.mix, self.seed, step, self.batch).index[self.rows]
        return int((self.mix.source_of[idx] == self.j).sum())

    def position(self, step: int) -> int:
        base = (step // self.every) * self.every
        if base not in self._memo:
            known = max(k for k in self._memo if k <= base)
            pos = self._memo[known]
            for t in range(known, base):
                pos += self._count(t)
                if (t + 1) % self.every == 0:
                    self._memo[t + 1] = pos
        pos = self._memo[base]
        return pos + sum(self._count(t) for t in range(base, step))

    def replace(self, step: int, idx: np.ndarray) -> None:
        mine = np.flatnonzero(self.mix.source_of[idx] == self.j)
        start = self.position(step)
        off = self.mix.offsets[self.j]
        for n, row in enumerate(mine):
            idx[row] = off + self.stream.flat_index(start + n)


class _Chunks(torch.utils.data.Dataset):
    def __init__(self, mix: Mixture, size: int, chunk: int):
        self.mix, self.size, self.chunk = mix, size, chunk

    def __len__(self) -> int:
        return (len(self.mix) + self.chunk - 1) // self.chunk

    def __getitem__(self, i: int) -> torch.Tensor:
        part = range(i * self.chunk, min(len(self.mix), (i + 1) * self.chunk))
        return torch.from_numpy(np.stack([self.mix.decode(k, self.size) for k in part]))


def preload(mix: Mixture, size: int, workers: int) -> torch.Tensor:
    """Decode every image once into ``uint8 (N, 3, S, S)``, in parallel worker processes."""
    loader = torch.utils.data.DataLoader(_Chunks(mix, size, 256), batch_size=None,
                                         num_workers=workers)
    return torch.cat(list(loader))


def cache_fits(mix: Mixture, cfg: DataConfig, size: int) -> bool:
    """Whether the ``memory`` cache is used (``auto``: when it fits in ``cache_max_gb``)."""
    if cfg.cache != "auto":
        return cfg.cache == "memory"
    return len(mix) * 3 * size * size <= cfg.cache_max_gb * 2 ** 30


def batches(mix: Mixture, *, seed: int, batch: int, size: int, start: int, stop: int,
            rank: int = 0, world: int = 1, cache: torch.Tensor | None = None,
            workers: int = 0, pin_memory: bool = False) -> Iterator[Batch]:
    """This rank's batches for steps ``start .. stop-1``.

    With a ``cache`` the batch is gathered from memory in this process (no decoding);
    otherwise ``workers`` processes decode ahead of the training step.
    """
    if batch % world:
        raise ValueError(f"batch size {batch} does not split evenly over {world} processes")
    per = batch // world
    ds = _StepDataset(mix, seed, batch, slice(rank * per, (rank + 1) * per), size, cache, rank, world)
    if cache is not None or workers == 0:
        return (ds[s] for s in range(start, stop))
    loader = torch.utils.data.DataLoader(ds, batch_size=None, sampler=range(start, stop),
                                         num_workers=workers, pin_memory=pin_memory,
                                         prefetch_factor=4, persistent_workers=False)
    return iter(loader)


def preview_batch(mix: Mixture, seed: int, n: int, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A fixed set of ``n`` images, their AUs and targets for the periodic image grids."""
    rng = np.random.default_rng([seed, _PREVIEW_STREAM])
    idx = mix.draw(rng, n)
    other = mix.draw(rng, n, source=mix.target_pool)
    images = torch.from_numpy(np.stack([mix.decode(i, size) for i in idx]))
    return images, torch.from_numpy(mix.aus_unit[idx]), torch.from_numpy(mix.aus_unit[other])


def to_device(images: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    """uint8 ``(B, 3, S, S)`` -> float32 in ``[-1, 1]`` on ``device`` (x / 127.5 - 1)."""
    x = images.to(device, non_blocking=True)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x.float().div_(127.5).sub_(1.0)


def source_counts(source: torch.Tensor, n_sources: int) -> np.ndarray:
    return np.bincount(source.numpy(), minlength=n_sources)
