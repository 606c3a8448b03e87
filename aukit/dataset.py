"""The on-disk dataset format: GANimation-compatible, plus full labels and a manifest.

Layout of a dataset directory (``<id>`` is a sample id such as ``00000042``)::

    imgs/<id>.jpg          RGB face crop (GANimation reads these)
    aus_openface.pkl       {id: float64[17]} FACS 0-5, GANIMATION_AUS order (legacy format)
    aus.csv                the same table as CSV: id,AU01,...,AU45 (safe to read)
    train_ids.csv          one "<id>.jpg" per line (the official GANimation convention)
    test_ids.csv
    labels.jsonl           one JSON object per sample: the full label (scene spec, pose, ...)
    meta/<id>.json         per-sample label, written last: its presence marks the sample done
    masks/<id>.npz         per-sample arrays (masks, landmarks, depth), see the writer's docs
    manifest.json          resolved config, package versions, seed, counts, schema version

Official GANimation folders have only ``imgs/``, the pickle and the id lists; they load
with the same reader. The pickle is untrusted input and is read with
:class:`SafeAUUnpickler`, which can build nothing but dicts, strings and float arrays.
"""

from __future__ import annotations

import csv
import io
import json
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from aukit.aus import GANIMATION_AUS

SCHEMA_VERSION = 1
IMGS, META, MASKS = "imgs", "meta", "masks"
AU_PKL, AU_CSV, LABELS, MANIFEST = "aus_openface.pkl", "aus.csv", "labels.jsonl", "manifest.json"
SPLIT_FILES = {"train": "train_ids.csv", "test": "test_ids.csv"}
IMAGE_EXTS = (".jpg", ".jpeg", ".png")
_ID_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")


class DatasetError(ValueError):
    """A dataset folder or one of its files is missing, malformed or unsafe."""


# ----------------------------------------------------------------------------- ids

def check_id(sample_id: str) -> str:
    """Return ``sample_id`` if it is a plain file stem; reject anything that escapes ``imgs/``."""
    if not isinstance(sample_id, str) or not _ID_RE.match(sample_id) or ".." in sample_id:
        raise DatasetError(f"unsafe or malformed sample id {sample_id!r} "
                           "(ids must be plain file names: no '/', '..' or absolute paths)")
    return sample_id


def strip_image_ext(name: str) -> str:
    """``"N_0001.jpg"`` -> ``"N_0001"`` (id lists carry the extension, AU tables do not)."""
    low = name.lower()
    for ext in IMAGE_EXTS:
        if low.endswith(ext):
            return name[: -len(ext)]
    return name


def read_ids(path: Path) -> list[str]:
    """Read a ``*_ids.csv`` (one id per line, extension optional), validating each id."""
    if not path.is_file():
        raise DatasetError(f"id list not found: {path}")
    lines = [ln.strip() for ln in path.read_text().splitlines()]
    return [check_id(strip_image_ext(ln)) for ln in lines if ln]


def ids_text(ids: Iterable[str], ext: str = ".jpg") -> str:
    """Contents of a ``*_ids.csv``: one ``<id><ext>`` per line (the official convention)."""
    return "".join(f"{i}{ext}\n" for i in ids)


# ----------------------------------------------------------------------------- AU tables

class SafeAUUnpickler(pickle.Unpickler):
    """Unpickler for ``aus_openface.pkl`` that builds only dicts, strings and float arrays.

    Every global other than numpy's array reconstruction helpers is refused, and the
    dtype helper accepts float dtypes only, so a crafted pickle cannot run code.
    """

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise DatasetError(f"refusing to load {module}.{name} from an AU pickle: only dicts, "
                               "strings and float arrays are allowed")
        if name == "dtype":
            return _float_dtype
        if name == "encode":  # protocol-2 pickles written by Python 3 wrap raw bytes this way
            return _latin1_bytes
        if name == "_reconstruct":
            return _reconstruct
        return np.ndarray


def _float_dtype(spec: Any, *args: Any) -> np.dtype:
    if not isinstance(spec, str) or spec.lstrip("<>=|") not in ("f2", "f4", "f8"):
        raise DatasetError(f"AU pickle holds a non-float dtype {spec!r}")
    return np.dtype(spec)


def _latin1_bytes(text: Any, encoding: str = "latin1") -> bytes:
    if not isinstance(text, str) or encoding != "latin1":
        raise DatasetError("AU pickle uses _codecs.encode for something other than latin-1 bytes")
    return text.encode("latin1")


def _reconstruct(cls: Any, shape: Any, typecode: Any) -> np.ndarray:
    if cls is not np.ndarray:
        raise DatasetError("AU pickle tries to build something other than a numpy array")
    return np.ndarray.__new__(np.ndarray, shape, np.uint8)


def load_au_pickle(path: Path) -> dict[str, np.ndarray]:
    """Load ``{id: float64[17]}`` from an (untrusted) GANimation AU pickle."""
    try:
        data = SafeAUUnpickler(io.BytesIO(path.read_bytes()), encoding="latin1").load()
    except DatasetError:
        raise
    except Exception as exc:  # truncated/corrupt pickles raise many types
        raise DatasetError(f"cannot read AU pickle {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise DatasetError(f"AU pickle {path} must hold a dict, got {type(data).__name__}")
    out = {}
    for key, value in data.items():
        key = key.decode("latin1") if isinstance(key, bytes) else key
        out[check_id(str(key))] = _check_au_row(value, f"{path}:{key}")
    return out


def _check_au_row(value: Any, where: str) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind != "f" or arr.shape != (len(GANIMATION_AUS),):
        raise DatasetError(f"{where}: expected {len(GANIMATION_AUS)} float AU intensities, "
                           f"got dtype {arr.dtype} shape {arr.shape}")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise DatasetError(f"{where}: AU intensities must be finite")
    return arr


def au_table_bytes(table: dict[str, np.ndarray]) -> tuple[bytes, bytes]:
    """``aus.csv`` and ``aus_openface.pkl`` contents (float64, GANIMATION_AUS order, 0-5)."""
    rows = {k: np.asarray(v, dtype=np.float64) for k, v in table.items()}
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["id", *GANIMATION_AUS])
    for key, row in rows.items():
        w.writerow([key, *(repr(float(x)) for x in row)])
    return buf.getvalue().encode(), pickle.dumps(rows, protocol=4)


def read_au_csv(path: Path) -> dict[str, np.ndarray]:
    """Read ``aus.csv`` (id + the 17 GANimation AU columns, in any column order)."""
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [a for a in ("id", *GANIMATION_AUS) if a not in (reader.fieldnames or [])]
        if missing:
            raise DatasetError(f"{path}: missing columns {missing}")
        out = {}
        for n, row in enumerate(reader, start=2):
            try:
                vals = np.array([float(row[a]) for a in GANIMATION_AUS])
            except ValueError as exc:
                raise DatasetError(f"{path}:{n}: {exc}") from exc
            out[check_id(row["id"])] = _check_au_row(vals, f"{path}:{n}")
    return out


def read_au_table(root: Path) -> dict[str, np.ndarray]:
    """The AU table of a dataset folder: ``aus.csv`` if present, else the pickle."""
    if (root / AU_CSV).is_file():
        return read_au_csv(root / AU_CSV)
    if (root / AU_PKL).is_file():
        return load_au_pickle(root / AU_PKL)
    raise DatasetError(f"{root}: no AU table ({AU_CSV} or {AU_PKL})")


# ----------------------------------------------------------------------------- reading

@dataclass(frozen=True)
class Sample:
    """One image of a dataset: id, image path, 17 AUs (FACS 0-5, GANimation order), split."""

    id: str
    image: Path
    aus: np.ndarray
    split: str


def find_image(root: Path, sample_id: str) -> Path | None:
    for ext in IMAGE_EXTS:
        p = root / IMGS / f"{sample_id}{ext}"
        if p.is_file():
            return p
    return None


def read_dataset(root: str | Path, split: str | None = None) -> list[Sample]:
    """Index a GANimation-format folder (ours or official). ``split``: train, test or None."""
    root = Path(root)
    if not (root / IMGS).is_dir():
        raise DatasetError(f"{root} is not a dataset folder: no {IMGS}/ directory")
    table = read_au_table(root)
    splits = [split] if split else list(SPLIT_FILES)
    out: list[Sample] = []
    for sp in splits:
        if sp not in SPLIT_FILES:
            raise DatasetError(f"unknown split {sp!r}; use one of {list(SPLIT_FILES)}")
        path = root / SPLIT_FILES[sp]
        if not path.is_file():
            continue
        for sid in read_ids(path):
            img = find_image(root, sid)
            if sid in table and img is not None:
                out.append(Sample(sid, img, table[sid], sp))
    return out


def iter_labels(root: str | Path) -> Iterator[dict[str, Any]]:
    """Full per-sample labels (``labels.jsonl``) of one of our datasets."""
    path = Path(root) / LABELS
    if not path.is_file():
        raise DatasetError(f"{root}: no {LABELS} (is this a finalized ausynth dataset?)")
    with path.open() as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def read_manifest(root: str | Path) -> dict[str, Any]:
    path = Path(root) / MANIFEST
    if not path.is_file():
        raise DatasetError(f"{root}: no {MANIFEST}")
    return json.loads(path.read_text())
