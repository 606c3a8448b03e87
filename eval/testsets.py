"""Test sets: GANimation-format folders read from disk (rendered or prepared), the faces
selected for editing, and the reference images for realism.

Kinds: ``synthetic`` when the folder's manifest says ``kind: ausynth-render`` (exact AU
labels, ``au_regions`` masks), else ``real`` (``ausynth prepare`` output or an official
GANimation folder; AU labels are an annotator's estimates). ``NAME:DIR@synthetic`` or
``@real`` forces the kind.

Face selection (:class:`eval.config.SelectConfig`): the ``split``'s samples (identity-
disjoint from training when the dataset was split by identity), neutral ones only if
asked (synthetic: all 17 AUs exactly 0 except a blink; real: source label
``emotion == neutral``), sorted by id, then ``n_faces`` drawn with ``numpy`` seeded by
``select.seed``. Images are read at the model's size with the trainer's decoder
(``train.data.decode_image``: centre square, Lanczos), so models see test faces exactly as
they saw training faces.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from aukit.aus import GANIMATION_AUS, RIG_AUS
from aukit.dataset import MASKS, DatasetError, iter_labels, read_dataset, read_manifest
from eval.attention import resize_mask
from eval.config import SelectConfig

SYNTHETIC, REAL = "synthetic", "real"
_I45 = GANIMATION_AUS.index("AU45")


@dataclass(frozen=True)
class Face:
    """One dataset sample: ``aus`` float64 (17,) FACS labels; ``emotion`` from the source
    labels (real) or the render spec (synthetic), None if unknown."""

    id: str
    image: Path
    aus: np.ndarray
    split: str
    emotion: str | None = None
    identity: str | None = None


@dataclass
class EvalSet:
    """A test set folder and its selected faces (``faces``; order = face index)."""

    name: str
    root: Path
    kind: str
    faces: list[Face]
    manifest: dict[str, Any] = field(default_factory=dict)
    selection: dict[str, Any] = field(default_factory=dict)
    _cache: dict[Any, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def exact(self) -> bool:
        """True when the AU labels are exact (rendered)."""
        return self.kind == SYNTHETIC

    def labels(self) -> np.ndarray:
        """float64 (F, 17) AU labels of the selected faces (FACS 0-5)."""
        return np.stack([f.aus for f in self.faces])

    def images(self, size: int) -> np.ndarray:
        """uint8 (F, size, size, 3) RGB of the selected faces."""
        return load_images([f.image for f in self.faces], size, self._cache)

    def landmarks(self, size: int) -> list[np.ndarray | None]:
        """Per face (478, 2) landmarks in pixels of the ``size`` image, None if unknown."""
        return [landmarks_of(self.root, f, size) for f in self.faces]

    def regions(self, size: int) -> tuple[np.ndarray, tuple[str, ...]] | None:
        """AU region bitfields of the selected faces at ``size`` and their bit order, or None.

        Prefers ``target_regions/<id>.npz`` (per-AU regions of neutral faces, built by
        :mod:`eval.regions`; GANimation bit order), else the render's own ``au_regions``
        (rig bit order; empty on neutral faces). None for real sets or without either.
        """
        if not self.exact:
            return None
        from eval.regions import REGIONS_DIR
        own = self.root / REGIONS_DIR
        if all((own / f"{f.id}.npz").is_file() for f in self.faces):
            maps, order = [], None
            for f in self.faces:
                with np.load(own / f"{f.id}.npz") as z:
                    maps.append(resize_mask(center_square(z["regions"]), size))
                    order = tuple(str(a) for a in z["bit_order"])
            return np.stack(maps), order
        if not all((self.root / MASKS / f"{f.id}.npz").is_file() for f in self.faces):
            return None
        maps = []
        for f in self.faces:
            with np.load(self.root / MASKS / f"{f.id}.npz") as z:
                maps.append(resize_mask(center_square(z["au_regions"]), size))
        order = tuple(self.manifest.get("au_region_bits") or RIG_AUS)
        return np.stack(maps), order

    def describe(self) -> dict[str, Any]:
        """JSON-ready description: path, kind, selection, and the dataset manifest's key facts."""
        m = self.manifest
        keep = ("kind", "command", "created", "n_samples", "n_train", "n_test", "seed", "annotator",
                "summary", "versions", "backend")
        return {"name": self.name, "root": str(self.root), "kind": self.kind, **self.selection,
                "dataset_manifest": {k: m[k] for k in keep if k in m},
                "generator_config": m.get("config") if self.exact else None}


def center_square(a: np.ndarray) -> np.ndarray:
    h, w = a.shape[:2]
    s = min(h, w)
    return a[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]


def load_images(paths: list[Path], size: int, cache: dict[Any, np.ndarray] | None = None) -> np.ndarray:
    from train.data import decode_image  # the trainer's decoder: identical preprocessing

    key = (size, tuple(str(p) for p in paths))
    if cache is not None and key in cache:
        return cache[key]
    out = np.stack([decode_image(str(p), size).transpose(1, 2, 0) for p in paths]) if paths else \
        np.zeros((0, size, size, 3), np.uint8)
    if cache is not None:
        cache[key] = out
    return out


def landmarks_of(root: Path, face: Face, size: int) -> np.ndarray | None:
    """(478, 2) landmarks of a sample rescaled to a ``size`` image (centre square), or None."""
    path = root / MASKS / f"{face.id}.npz"
    if not path.is_file():
        return None
    with np.load(path) as z:
        key = "landmarks_2d" if "landmarks_2d" in z else "landmarks" if "landmarks" in z else None
        if key is None:
            return None
        lm = np.asarray(z[key], np.float64)[:, :2]
    with Image.open(face.image) as im:
        w, h = im.size
    s = min(w, h)
    lm = lm - [(w - s) / 2, (h - s) / 2]
    return (lm * (size / s)).astype(np.float32)


def parse_spec(text: str) -> tuple[str, Path, str | None, str | None]:
    """``NAME:DIR[@synthetic|@real][#test|#train|#all]`` -> (name, dir, forced kind or None,
    split override or None)."""
    name, sep, rest = text.partition(":")
    if not sep or not name or not rest:
        raise ValueError(f"--test-set {text!r}: expected NAME:DIR[@synthetic|@real][#SPLIT]")
    kind = split = None
    if "#" in rest:
        rest, split = rest.rsplit("#", 1)
        if split not in ("test", "train", "all"):
            raise ValueError(f"--test-set {text!r}: split must be #test, #train or #all, got #{split}")
    if "@" in rest:
        rest, kind = rest.rsplit("@", 1)
        if kind not in (SYNTHETIC, REAL):
            raise ValueError(f"--test-set {text!r}: kind must be @synthetic or @real, got @{kind}")
    if not name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"--test-set name {name!r} must be alphanumeric (with _ or -)")
    return name, Path(rest), kind, split


def read_faces(root: Path, split: str | None) -> tuple[list[Face], dict[str, Any]]:
    """Every sample of ``split`` (None: all) with labels, and the manifest ({} if none)."""
    if not root.is_dir():
        raise DatasetError(f"test set folder not found: {root}")
    samples = read_dataset(root, split)
    manifest = read_manifest(root) if (root / "manifest.json").is_file() else {}
    extra: dict[str, dict[str, Any]] = {}
    if (root / "labels.jsonl").is_file():
        extra = {lab["id"]: lab for lab in iter_labels(root) if "id" in lab}
    faces = []
    for s in samples:
        lab = extra.get(s.id, {})
        spec_expr = (lab.get("spec") or {}).get("expression") or {}
        emotion = (lab.get("source_labels") or {}).get("emotion") or spec_expr.get("emotion")
        ident = lab.get("identity") or (lab.get("spec") or {}).get("identity", {}).get("seed")
        faces.append(Face(s.id, s.image, np.asarray(s.aus, np.float64), s.split, emotion,
                          None if ident is None else str(ident)))
    return faces, manifest


def is_neutral(face: Face, kind: str) -> bool:
    if kind == SYNTHETIC:
        aus = face.aus.copy()
        aus[_I45] = 0.0  # a blink does not make a face non-neutral
        return bool(np.all(aus == 0.0))
    return face.emotion == "neutral"


def open_test_set(text: str, select: SelectConfig) -> EvalSet:
    """Read ``NAME:DIR[@kind]`` and select its faces; DatasetError/ValueError if impossible."""
    name, root, forced, split = parse_spec(text)
    split = split or select.split
    root = root.resolve()
    faces, manifest = read_faces(root, None if split == "all" else split)
    kind = forced or (SYNTHETIC if manifest.get("kind") == "ausynth-render" else REAL)
    pool = [f for f in faces if is_neutral(f, kind)] if select.neutral_only else faces
    if len(pool) < 2:
        why = ("neutral " if select.neutral_only else "") + f"{split}-split"
        raise DatasetError(f"test set {name!r} ({root}): {len(pool)} {why} faces (need >= 2)"
                           + ("; real sets need source labels with emotion=neutral (prepare "
                              "--labels-csv), or set select.neutral_only=false" if kind == REAL and
                              select.neutral_only else ""))
    pool.sort(key=lambda f: f.id)
    rng = np.random.default_rng(select.seed)
    pick = sorted(rng.choice(len(pool), size=min(select.n_faces, len(pool)), replace=False))
    chosen = [pool[i] for i in pick]
    ids_digest = hashlib.sha1("\n".join(f.id for f in chosen).encode()).hexdigest()[:16]
    selection = {"split": split, "neutral_only": select.neutral_only, "pool": len(pool),
                 "n_faces": len(chosen), "ids_sha1": ids_digest, "ids": [f.id for f in chosen],
                 "identities": len({f.identity for f in chosen if f.identity is not None})}
    return EvalSet(name, root, kind, chosen, manifest, selection)


def reference_faces(ts: EvalSet, split: str, max_n: int, seed: int) -> list[Face]:
    """Realism reference: ``split`` samples of ``ts``'s folder minus its selected faces,
    at most ``max_n`` (seeded choice, sorted ids)."""
    faces, _ = read_faces(ts.root, split)
    taken = {f.id for f in ts.faces}
    pool = sorted((f for f in faces if f.id not in taken), key=lambda f: f.id)
    if len(pool) > max_n:
        rng = np.random.default_rng(seed)
        pool = [pool[i] for i in sorted(rng.choice(len(pool), max_n, replace=False))]
    return pool


def describe_faces(faces: list[Face]) -> dict[str, Any]:
    ids = "\n".join(f.id for f in faces)
    emotions: dict[str, int] = {}
    for f in faces:
        emotions[str(f.emotion)] = emotions.get(str(f.emotion), 0) + 1
    return {"n": len(faces), "ids_sha1": hashlib.sha1(ids.encode()).hexdigest()[:16],
            "emotions": dict(sorted(emotions.items()))}


def dataset_summary(root: str | Path) -> dict[str, Any]:
    """Manifest facts of a training data folder (for the report's provenance tables)."""
    root = Path(root)
    out: dict[str, Any] = {"path": str(root)}
    try:
        m = read_manifest(root)
    except DatasetError:
        return {**out, "manifest": None}
    out["kind"] = SYNTHETIC if m.get("kind") == "ausynth-render" else REAL
    for k in ("kind", "command", "created", "n_samples", "n_train", "n_test", "seed", "annotator", "summary"):
        if k in m:
            out[f"manifest_{k}"] = m[k]
    out["manifest_sha1"] = hashlib.sha1(json.dumps(m, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return out


def training_identities(root: str | Path, split: str = "train") -> set[str]:
    """Identities in ``split`` of a training folder (prepare: ``identity``; render: the
    procedural identity seed); empty when the folder has no labels.jsonl."""
    root = Path(root)
    if not (root / "labels.jsonl").is_file():
        return set()
    out = set()
    for lab in iter_labels(root):
        if lab.get("split", split) != split:
            continue
        ident = lab.get("identity") or (lab.get("spec") or {}).get("identity", {}).get("seed")
        if ident is not None:
            out.add(str(ident))
    return out
