"""WebDataset-style tar shards: the scalable alternative to the GANimation folder layout.

Layout (under a dataset root, local or fsspec)::

    shards/shard-000000.tar    members "<id>.jpg" (or .png), "<id>.json" (the full
                               per-sample label, as meta/<id>.json), "<id>.npz" (arrays)
    shards/index.json          shard names, ids per shard, counts, shard size
    aus.csv, aus_openface.pkl  the AU table of every sample (as in the folder layout)
    manifest.json              as in the folder layout, with "format": "shards"

A shard is written in one atomic put, so a shard is either complete or absent; resuming
skips the shards that exist. Tar members carry fixed metadata (mtime 0, root owner), so a
shard's bytes depend only on its samples.
"""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

import numpy as np

from aukit.dataset import AU_CSV, AU_PKL, MANIFEST, SPLIT_FILES, au_table_bytes, ids_text
from aukit.storage import Storage, open_storage
from aukit.writer import manifest_header

SHARDS = "shards"
INDEX = f"{SHARDS}/index.json"


def shard_name(k: int) -> str:
    return f"shard-{k:06d}.tar"


@dataclass(frozen=True)
class ShardSample:
    """One sample's stored bytes: the encoded image, its label, and optional arrays (npz)."""

    id: str
    image_ext: str          # "jpg" | "png"
    image: bytes
    meta: dict[str, Any]
    arrays: bytes | None = None


def pack(samples: Iterable[ShardSample]) -> bytes:
    """Tar bytes of ``samples`` (members in sample order: image, json, npz)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for s in samples:
            members = [(f"{s.id}.{s.image_ext}", s.image), (f"{s.id}.json", json.dumps(s.meta).encode())]
            if s.arrays is not None:
                members.append((f"{s.id}.npz", s.arrays))
            for name, data in members:
                info = tarfile.TarInfo(name)
                info.size, info.mtime, info.mode = len(data), 0, 0o644
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def unpack(data: bytes) -> Iterator[ShardSample]:
    """Samples of a shard, in stored order (WebDataset convention: key = name before the first dot)."""
    groups: dict[str, dict[str, bytes]] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
        for member in tar.getmembers():
            if not member.isfile():
                continue
            key, _, ext = member.name.partition(".")
            groups.setdefault(key, {})[ext] = tar.extractfile(member).read()
    for key, files in groups.items():
        ext = "jpg" if "jpg" in files else "png"
        yield ShardSample(key, ext, files[ext], json.loads(files["json"]), files.get("npz"))


class ShardWriter:
    """Writes whole shards atomically and builds the index and tables at the end."""

    def __init__(self, root, shard_size: int = 1000):
        if shard_size < 1:
            raise ValueError("shard_size must be >= 1")
        self.store: Storage = root if isinstance(root, Storage) else open_storage(root)
        self.shard_size = shard_size

    def done_shards(self) -> set[int]:
        return {int(n[len("shard-"):-len(".tar")]) for n in self.store.list(SHARDS, ".tar")}

    def write_shard(self, k: int, samples: list[ShardSample]) -> None:
        self.store.write_bytes(f"{SHARDS}/{shard_name(k)}", pack(samples))

    def finalize(self, manifest: dict[str, Any]) -> dict[str, Any]:
        entries, metas = [], []
        for name in self.store.list(SHARDS, ".tar"):
            shard_metas = [s.meta for s in unpack(self.store.read_bytes(f"{SHARDS}/{name}"))]
            entries.append({"name": name, "ids": [m["id"] for m in shard_metas], "n": len(shard_metas)})
            metas += shard_metas
        csv_bytes, pkl_bytes = au_table_bytes({m["id"]: np.asarray(m["au17"]) for m in metas})
        self.store.write_bytes(AU_CSV, csv_bytes)
        self.store.write_bytes(AU_PKL, pkl_bytes)
        for split, fname in SPLIT_FILES.items():
            ids = [m["id"] for m in metas if m["split"] == split]
            self.store.write_bytes(fname, ids_text(ids).encode())
        index = {"shard_size": self.shard_size, "shards": entries, "n_samples": len(metas)}
        self.store.write_bytes(INDEX, (json.dumps(index) + "\n").encode())
        full = manifest_header(metas) | {"format": "shards", "shard_size": self.shard_size} | manifest
        self.store.write_bytes(MANIFEST, (json.dumps(full, indent=2) + "\n").encode())
        return full


def read_index(root) -> dict[str, Any]:
    store = root if isinstance(root, Storage) else open_storage(root)
    if not store.exists(INDEX):
        raise FileNotFoundError(f"{root}: no {INDEX} (not a sharded ausynth dataset)")
    return json.loads(store.read_bytes(INDEX))


def iter_samples(root, shard_names: Iterable[str] | None = None) -> Iterator[ShardSample]:
    """Every sample of a sharded dataset (or of the given shards), in index order."""
    store = root if isinstance(root, Storage) else open_storage(root)
    names = list(shard_names) if shard_names is not None else [e["name"] for e in read_index(store)["shards"]]
    for name in names:
        yield from unpack(store.read_bytes(f"{SHARDS}/{name}"))
