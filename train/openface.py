"""Reader for OpenFace-annotated image folders (one OpenFace CSV per image).

Layout::

    imgs/<id>.jpg            the face crops
    openface/<id>.csv        OpenFace ``FaceLandmarkImg``/``FeatureExtraction`` output for it
    train_ids.csv            optional id lists; without them every annotated image is "train"
    test_ids.csv

This is the input the official ``data/prepare_au_annotations.py`` turns into
``aus_openface.pkl``; here it is read directly. Columns are found by name (``AU01_r`` ...
``AU45_r``, OpenFace writes them with or without a leading space), so both OpenFace 1.x
and 2.x files work. If a file holds several faces, the most confident row is used.
Intensities stay on the FACS 0-5 scale, like every AU table in the project.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from aukit.aus import GANIMATION_AUS
from aukit.dataset import (IMGS, SPLIT_FILES, DatasetError, Sample, check_id, find_image,
                           read_ids)

OPENFACE_DIR = "openface"


def is_openface_folder(root: Path) -> bool:
    return (root / IMGS).is_dir() and (root / OPENFACE_DIR).is_dir()


def read_openface_csv(path: Path) -> np.ndarray:
    """The 17 GANimation AU intensities (float64, FACS 0-5) of one OpenFace CSV."""
    try:
        with path.open(newline="") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read OpenFace CSV {path}: {exc}") from exc
    if len(rows) < 2:
        raise DatasetError(f"{path}: OpenFace CSV has no data row")
    header = [h.strip() for h in rows[0]]
    cols = {name: i for i, name in enumerate(header)}
    missing = [f"{a}_r" for a in GANIMATION_AUS if f"{a}_r" not in cols]
    if missing:
        raise DatasetError(f"{path}: OpenFace CSV lacks intensity columns {missing}")
    body = [r for r in rows[1:] if r and any(c.strip() for c in r)]
    if "confidence" in cols:  # several faces: keep the one OpenFace trusts most
        body.sort(key=lambda r: -_float(r[cols["confidence"]], path))
    row = body[0]
    values = np.array([_float(row[cols[f"{a}_r"]], path) for a in GANIMATION_AUS])
    if not np.all(np.isfinite(values)):
        raise DatasetError(f"{path}: AU intensities must be finite")
    return values


def _float(text: str, path: Path) -> float:
    try:
        return float(text)
    except ValueError as exc:
        raise DatasetError(f"{path}: non-numeric value {text!r}") from exc


def read_openface_dataset(root: str | Path, split: str | None = None) -> list[Sample]:
    """Index an OpenFace-annotated folder as :class:`aukit.dataset.Sample` records."""
    root = Path(root)
    if not is_openface_folder(root):
        raise DatasetError(f"{root} is not an OpenFace-annotated folder: it needs {IMGS}/ "
                           f"and {OPENFACE_DIR}/")
    csv_ids = sorted(check_id(p.stem) for p in (root / OPENFACE_DIR).glob("*.csv"))
    listed = {sp: root / f for sp, f in SPLIT_FILES.items() if (root / f).is_file()}
    if listed:
        order = [(sp, read_ids(path)) for sp, path in listed.items()]
    else:
        order = [("train", csv_ids)]
    available = set(csv_ids)
    out: list[Sample] = []
    for sp, ids in order:
        if split is not None and sp != split:
            continue
        for sid in ids:
            img = find_image(root, sid)
            if sid in available and img is not None:
                out.append(Sample(sid, img, read_openface_csv(root / OPENFACE_DIR / f"{sid}.csv"), sp))
    return out
