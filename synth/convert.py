"""``ausynth convert``: GANimation folder <-> WebDataset-style shards, bytes unchanged.

Images and arrays are copied byte for byte and labels field for field, so both formats
give identical samples. Official GANimation folders (no per-sample labels) convert too:
their label is the AU row and the split.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Iterator

from aukit.dataset import DatasetError, read_dataset, read_manifest
from aukit.shards import ShardSample, ShardWriter, iter_samples
from aukit.storage import open_storage
from aukit.writer import DatasetWriter


def folder_samples(src: str) -> Iterator[ShardSample]:
    """Every sample of a GANimation-format folder, sorted by id, as stored bytes."""
    store = open_storage(src)
    root = store.local_path()
    if root is None:
        raise DatasetError("converting from a folder needs a local folder")
    for s in sorted(read_dataset(root), key=lambda s: s.id):
        meta_rel = f"meta/{s.id}.json"
        meta = json.loads(store.read_bytes(meta_rel)) if store.exists(meta_rel) else \
            {"id": s.id, "au17": s.aus.tolist(), "split": s.split}
        arrays = store.read_bytes(meta["arrays"]) if meta.get("arrays") else None
        meta = {k: v for k, v in meta.items() if k not in ("image", "arrays")}
        yield ShardSample(s.id, s.image.suffix.lstrip(".").lower().replace("jpeg", "jpg"),
                          s.image.read_bytes(), meta, arrays)


def to_shards(src: str, dst: str, shard_size: int) -> dict:
    writer, batch, k = ShardWriter(dst, shard_size), [], 0
    for sample in folder_samples(src):
        batch.append(sample)
        if len(batch) == shard_size:
            writer.write_shard(k, batch)
            batch, k = [], k + 1
    if batch:
        writer.write_shard(k, batch)
    return writer.finalize(_source_manifest(src) | {"converted_from": str(src)})


def to_folder(src: str, dst: str) -> dict:
    writer = None
    for s in iter_samples(src):
        writer = writer or DatasetWriter(dst, image_format=s.image_ext)
        meta = {k: v for k, v in s.meta.items() if k not in ("id", "image", "arrays")}
        writer.write_encoded(s.id, s.image, s.image_ext, meta, s.arrays)
    if writer is None:
        raise DatasetError(f"{src} holds no samples")
    man = _source_manifest(src)
    man.pop("format", None), man.pop("shard_size", None)
    return writer.finalize(man | {"converted_from": str(src)})


def _source_manifest(src: str) -> dict:
    try:
        man = read_manifest(src)
    except DatasetError:
        return {}
    drop = ("schema_version", "created", "n_samples", "n_train", "n_test", "au_order", "rig_au_order",
            "au_scale", "versions", "converted_from")
    return {k: v for k, v in man.items() if k not in drop}


def build_parser(prog: str = "ausynth convert") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("src", help="source dataset (folder, or sharded dataset root; local or fsspec URL)")
    p.add_argument("dst", help="destination (created)")
    p.add_argument("--to", choices=["shards", "ganimation"], required=True, help="target format")
    p.add_argument("--shard-size", type=int, default=1000, help="samples per shard (default 1000)")
    return p


def main(args: argparse.Namespace) -> int:
    try:
        man = to_shards(args.src, args.dst, args.shard_size) if args.to == "shards" else to_folder(args.src, args.dst)
    except (DatasetError, FileNotFoundError, OSError) as exc:
        print(f"ausynth convert: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {man['n_samples']} samples to {args.dst} ({args.to})")
    return 0
