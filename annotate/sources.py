"""Inputs of ``prepare``: which files, their sample ids, identities and train/test split.

* Files: every non-hidden file under ``--images`` (recursively, sorted, symlinked folders
  not followed). Files without an image extension are reported as skipped, not ignored,
  so nothing vanishes silently.
* Sample id: ``<slug of the relative path>-<8 hex of sha1(relative path)>``: deterministic
  (resumable), unique even when slugs collide (``a b.jpg`` vs ``a_b.jpg``), and a plain
  file name. With ``--all-faces`` face k gets ``<id>_f<k>``.
* Split: ``aukit.seeding.split_is_test(seed, key, test_fraction)`` with key = the
  identity (identity-disjoint) when an identity source is given, else the relative path
  (all faces of one photo share a split). Deterministic; the test share is binomial
  around ``test_fraction`` (per identity when identities are used).
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from aukit.seeding import split_is_test

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp",
                            ".ppm", ".pgm", ".pbm"})


@dataclass(frozen=True)
class Photo:
    """One input file. ``rel``: POSIX path relative to the images root."""

    rel: str
    path: Path

    @property
    def is_image_name(self) -> bool:
        return self.path.suffix.lower() in IMAGE_SUFFIXES


def list_photos(root: str | Path, exclude: Path | None = None) -> list[Photo]:
    """Every non-hidden file under ``root``, sorted by relative path (``exclude``: a subtree
    to leave out, e.g. the output folder when it lies inside ``root``)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"--images folder not found: {root}")
    skip = exclude.resolve() if exclude is not None else None
    out = []
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                         and (skip is None or (here / d).resolve() != skip))
        for name in sorted(files):
            if not name.startswith("."):
                path = here / name
                out.append(Photo(path.relative_to(root).as_posix(), path))
    out.sort(key=lambda p: p.rel)
    return out


def photo_id(rel: str) -> str:
    """Deterministic, unique, filesystem-safe sample id of a relative path."""
    stem = rel.rsplit(".", 1)[0] if "." in Path(rel).name else rel
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem.replace("/", "__")).strip("._-")[:80] or "img"
    slug = slug.replace("..", "_")
    return f"{slug}-{hashlib.sha1(rel.encode()).hexdigest()[:8]}"


def face_id(rel: str, face_index: int, all_faces: bool) -> str:
    return f"{photo_id(rel)}_f{face_index}" if all_faces else photo_id(rel)


def split_of(key: str, seed: int, test_fraction: float) -> str:
    """``"train"`` or ``"test"`` for a string key (identity or relative path)."""
    k = int(hashlib.sha1(key.encode()).hexdigest()[:15], 16)
    return "test" if split_is_test(seed, k, test_fraction) else "train"


class LabelsTable:
    """Per-image identity (and other columns) from a CSV with ``image`` and ``identity``.

    An image is looked up by its relative path, then by its file name (only if that name
    is unique in the CSV). Other columns (e.g. ``emotion``) are kept as source labels.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"--labels-csv not found: {self.path}")
        with self.path.open(newline="") as fh:
            reader = csv.DictReader(fh)
            cols = [c.strip() for c in reader.fieldnames or []]
            if "image" not in cols or "identity" not in cols:
                raise ValueError(f"{self.path}: needs 'image' and 'identity' columns, has {cols}")
            rows = [{k.strip(): (v or "").strip() for k, v in r.items() if k} for r in reader]
        self.by_rel = {r["image"]: r for r in rows}
        names: dict[str, list[dict[str, str]]] = {}
        for r in rows:
            names.setdefault(Path(r["image"]).name, []).append(r)
        self.by_name = {n: rs[0] for n, rs in names.items() if len(rs) == 1}

    def lookup(self, rel: str) -> dict[str, str] | None:
        row = self.by_rel.get(rel) or self.by_name.get(Path(rel).name)
        return row if row and row.get("identity") else None


def identity_of(photo: Photo, labels: LabelsTable | None, from_dir: bool) -> tuple[str | None, dict[str, str]]:
    """(identity or None, other source labels) of ``photo``."""
    if labels is not None:
        row = labels.lookup(photo.rel)
        if row is None:
            return None, {}
        return row["identity"], {k: v for k, v in row.items() if k not in ("image", "identity")}
    if from_dir:
        parent = Path(photo.rel).parent.as_posix()
        return (parent if parent != "." else None), {}
    return None, {}
