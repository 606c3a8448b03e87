"""Streaming sharded datasets (``aukit.shards``) into training.

A sharded source is read as a stream, not by random access (one sequential read per
shard suits object stores):

* per epoch ``e`` the shard order is a permutation drawn from ``(seed, e)``; rank ``r`` of
  ``W`` reads shards ``r, r+W, ...`` of that order (disjoint shards per rank under DDP);
* within a shard, samples come in a permutation drawn from ``(seed, e, shard)``; only the
  training split's samples are kept;
* the ``k``-th sample a rank takes from the source is element ``k`` of its stream.

The trainer's batch plan stays a pure function of ``(seed, step)``: how many rows of each
step come from the stream is known from the plans, so the stream position at any step is
a prefix sum over earlier plans (memoised every ``CHECKPOINT_EVERY`` steps). A resumed run
therefore continues at exactly the sample boundary where it stopped.
"""

from __future__ import annotations

import io
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from aukit.dataset import DatasetError, Sample, check_id, read_au_table, read_ids
from aukit.shards import read_index, unpack
from aukit.storage import open_storage

_SHARD_ORDER = 0x5D
_SAMPLE_ORDER = 0x5E


def is_sharded(root: Path) -> bool:
    return (root / "shards" / "index.json").is_file()


@dataclass(frozen=True)
class ShardSet:
    """A sharded dataset's split: shard names, the ids each holds, AUs per id."""

    root: str
    shards: tuple[str, ...]
    ids: tuple[tuple[str, ...], ...]    # per shard, the split's ids in stored order
    samples: list[Sample]               # flat list (image path = "<shard>#<id>")

    @classmethod
    def open(cls, root: str | Path, split: str) -> "ShardSet":
        index = read_index(root)
        table = read_au_table(Path(root))
        keep = set(read_ids(Path(root) / f"{split}_ids.csv"))
        shards, ids, samples = [], [], []
        for entry in index["shards"]:
            mine = tuple(check_id(i) for i in entry["ids"] if i in keep and i in table)
            if mine:
                shards.append(entry["name"])
                ids.append(mine)
                samples += [Sample(i, Path(f"{entry['name']}#{i}"), table[i], split) for i in mine]
        if not samples:
            raise DatasetError(f"sharded dataset {root} has no '{split}' samples")
        return cls(str(root), tuple(shards), tuple(ids), samples)


class ShardStream:
    """The deterministic sample stream of one rank: ``flat_index(k)`` for ``k = 0, 1, ...``."""

    def __init__(self, shard_set: ShardSet, seed: int, rank: int = 0, world: int = 1):
        if not 0 <= rank < world:
            raise ValueError(f"rank {rank} outside world {world}")
        if len(shard_set.shards) < world:
            raise DatasetError(f"{shard_set.root}: {len(shard_set.shards)} shards cannot feed "
                               f"{world} processes (need at least one shard per process)")
        self.set, self.seed, self.rank, self.world = shard_set, seed, rank, world
        counts = np.array([len(i) for i in shard_set.ids])
        self.offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
        self._epochs: dict[int, np.ndarray] = {}

    def _epoch(self, e: int) -> np.ndarray:
        """Flat sample indices of this rank's stream in epoch ``e``."""
        if e not in self._epochs:
            order = np.random.default_rng([self.seed, _SHARD_ORDER, e]).permutation(len(self.set.shards))
            parts = []
            for s in order[self.rank::self.world]:
                n = len(self.set.ids[s])
                perm = np.random.default_rng([self.seed, _SAMPLE_ORDER, e, int(s)]).permutation(n)
                parts.append(self.offsets[s] + perm)
            self._epochs[e] = np.concatenate(parts)
            if len(self._epochs) > 4:
                self._epochs.pop(min(self._epochs))
        return self._epochs[e]

    def flat_index(self, k: int) -> int:
        e, pos = 0, k
        while True:  # epochs may differ in length when shard sizes differ
            ep = self._epoch(e)
            if pos < len(ep):
                return int(ep[pos])
            pos -= len(ep)
            e += 1


class ShardReader:
    """Decodes streamed samples, keeping a few shards' bytes in memory (per process)."""

    def __init__(self, root: str, capacity: int = 4):
        self.store = open_storage(root)
        self.capacity = capacity
        self._shards: OrderedDict[str, dict[str, bytes]] = OrderedDict()

    def image(self, ref: Path, size: int) -> np.ndarray:
        shard, _, sid = str(ref).partition("#")
        if shard not in self._shards:
            data = self.store.read_bytes(f"shards/{shard}")
            self._shards[shard] = {s.id: s.image for s in unpack(data)}
            if len(self._shards) > self.capacity:
                self._shards.popitem(last=False)
        self._shards.move_to_end(shard)
        with Image.open(io.BytesIO(self._shards[shard][sid])) as im:
            im = im.convert("RGB")
            if im.size != (size, size):
                im = im.resize((size, size), Image.Resampling.LANCZOS)
            return np.asarray(im).transpose(2, 0, 1).copy()
