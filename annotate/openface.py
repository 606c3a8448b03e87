"""AU labels imported from OpenFace 2.x CSV output (``AUxx_r`` intensity columns, 0-5).

Which CSV rows belong to which photo (``csv`` option of :class:`OpenFaceAnnotator`):

* **A folder** of per-image CSVs, as written by ``FaceLandmarkImg -fdir ... -out_dir D``:
  photo ``sub/dir/name.jpg`` reads ``D/sub/dir/name.csv``, else ``D/name.csv``.
* **One CSV file**, as written by ``FeatureExtraction`` (one row per ``frame``, 1-based):
  a photo is frame N where N is the last integer in its file name plus ``frame_offset``
  (``frame_000042.png`` -> 42; ffmpeg's ``%06d`` numbering matches OpenFace's).

Among the rows of a photo (one per face), the row whose 68 landmarks (``x_0..x_67``,
``y_0..y_67``, pixels of the original upright photo) lie closest to the face being
labelled is used; it must be within ``max_landmark_error`` x the face size (mean point
distance), so a face OpenFace did not see is never given another face's AUs. CSVs without
landmark columns are accepted only when they hold exactly one usable row per photo.
Rows with ``success`` = 0 are ignored. Headers and values may carry leading spaces (OpenFace
writes ``frame, face_id, ...``). ``confidence`` is OpenFace's tracking confidence, clipped
to [0, 1]; intensities are clipped to [0, 5]. AU28 (``_c`` only) is not used.
"""

from __future__ import annotations

import csv
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from annotate.base import AnnotationError, AnnotatorUnavailable, AUEstimate, FaceSample
from aukit.aus import FACS_MAX, GANIMATION_AUS
from aukit.landmarks import LM68

AU_COLUMNS = tuple(f"{a}_r" for a in GANIMATION_AUS)
_LM_X = tuple(f"x_{i}" for i in range(68))
_LM_Y = tuple(f"y_{i}" for i in range(68))


def read_openface_csv(path: str | Path) -> list[dict[str, float]]:
    """Rows of an OpenFace CSV as ``{column: float}`` with stripped names; checks AU columns."""
    path = Path(path)
    with path.open(newline="") as fh:
        reader = csv.reader(fh, skipinitialspace=True)
        header = [h.strip() for h in next(reader, [])]
        missing = [c for c in AU_COLUMNS if c not in header]
        if missing:
            raise ValueError(f"{path}: not an OpenFace AU CSV, missing columns {missing[:5]}"
                             f"{' ...' if len(missing) > 5 else ''}")
        rows = []
        for n, values in enumerate(reader, start=2):
            if not values:
                continue
            try:
                rows.append({h: float(v) for h, v in zip(header, values) if v.strip() != ""})
            except ValueError as exc:
                raise ValueError(f"{path}:{n}: {exc}") from exc
    return rows


def frame_number(source: str, offset: int = 0) -> int | None:
    """The last integer in the file stem of ``source``, plus ``offset``; None if none."""
    found = re.findall(r"\d+", Path(source).stem)
    return int(found[-1]) + offset if found else None


class OpenFaceAnnotator:
    """Looks up a face's AUs in OpenFace output (see module docstring)."""

    name = "openface"

    def __init__(self, csv: str | Path, max_landmark_error: float = 0.15, frame_offset: int = 0):
        self.csv = Path(csv)
        if not self.csv.exists():
            raise AnnotatorUnavailable(f"OpenFace CSV path not found: {self.csv}")
        self.max_landmark_error = float(max_landmark_error)
        self.frame_offset = int(frame_offset)
        self._frames: dict[int, list[dict[str, float]]] | None = None
        if self.csv.is_file():
            self._frames = {}
            for row in read_openface_csv(self.csv):
                if "frame" not in row:
                    raise AnnotatorUnavailable(f"{self.csv}: a single OpenFace CSV needs a 'frame' column")
                self._frames.setdefault(int(row["frame"]), []).append(row)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "csv": str(self.csv), "mode": "frames" if self._frames is not None
                else "per-image", "max_landmark_error": self.max_landmark_error,
                "frame_offset": self.frame_offset}

    def annotate(self, face: FaceSample) -> AUEstimate:
        rows = [r for r in self._rows_for(face.source) if r.get("success", 1.0) >= 0.5]
        if not rows:
            raise AnnotationError("openface-no-row", f"no successful OpenFace row for {face.source}")
        row = self._match(rows, face)
        au = np.clip([row[c] for c in AU_COLUMNS], 0.0, FACS_MAX).astype(np.float32)
        return AUEstimate(au, float(np.clip(row.get("confidence", 1.0), 0.0, 1.0)))

    def _rows_for(self, source: str) -> list[dict[str, float]]:
        if self._frames is not None:
            frame = frame_number(source, self.frame_offset)
            if frame is None:
                raise AnnotationError("openface-no-frame", f"no frame number in the name {source!r}")
            return self._frames.get(frame, [])
        rel = Path(source)
        for cand in (self.csv / rel.parent / f"{rel.stem}.csv", self.csv / f"{rel.stem}.csv"):
            if cand.is_file():
                try:
                    return _read_cached(str(cand), cand.stat().st_mtime_ns)
                except (OSError, ValueError) as exc:
                    raise AnnotationError("openface-bad-csv", str(exc)) from exc
        raise AnnotationError("openface-no-csv", f"no OpenFace CSV for {source} under {self.csv}")

    def _match(self, rows: list[dict[str, float]], face: FaceSample) -> dict[str, float]:
        """The row whose 68 landmarks fit ``face``; see the module docstring."""
        with_lm = [r for r in rows if all(k in r for k in _LM_X + _LM_Y)]
        if not with_lm:
            if len(rows) == 1:
                return rows[0]
            raise AnnotationError("openface-ambiguous",
                                  f"{len(rows)} OpenFace rows for {face.source} and no landmarks to match")
        ours = np.asarray(face.image_landmarks, dtype=np.float64)[list(LM68), :2]
        size = float(max(ours.max(axis=0) - ours.min(axis=0)))
        errors = [np.linalg.norm(_landmarks(r) - ours, axis=1).mean() / size for r in with_lm]
        best = int(np.argmin(errors))
        if errors[best] > self.max_landmark_error:
            raise AnnotationError("openface-no-match",
                                  f"closest OpenFace face is {errors[best]:.2f} face sizes away "
                                  f"(limit {self.max_landmark_error})")
        return with_lm[best]


def _landmarks(row: dict[str, float]) -> np.ndarray:
    return np.stack([[row[x] for x in _LM_X], [row[y] for y in _LM_Y]], axis=1)


@lru_cache(maxsize=64)
def _read_cached(path: str, mtime_ns: int) -> list[dict[str, float]]:
    return read_openface_csv(path)


def create(csv: str | None = None, **options: Any) -> OpenFaceAnnotator:
    """Registry factory: ``csv`` is required (``--openface-csv``)."""
    if not csv:
        raise AnnotatorUnavailable("the openface annotator needs --openface-csv DIR_OR_FILE")
    return OpenFaceAnnotator(csv, **options)
