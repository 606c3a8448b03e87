"""Per-photo work of ``prepare``: load, detect, crop, annotate, write. One state per process.

:func:`process_photo` never raises for a bad input: it returns a report record
(``status`` accepted/skipped with a ``reason``), so one file cannot stop a batch. Samples
are written through ``aukit.writer.DatasetWriter`` (image, arrays, then the meta file that
marks them done), so a killed worker leaves nothing half-counted.
"""

from __future__ import annotations

import json
import traceback
from dataclasses import dataclass
from typing import Any

import numpy as np

from annotate.base import AnnotationError, Annotator, FaceSample, check_estimate
from annotate.sources import face_id
from aukit.crop import crop_box, crop_image
from aukit.dataset import META
from aukit.faces import Face, FaceAnalyzer, FaceConfig
from aukit.hashing import file_sha1
from aukit.imageio import ImageError, load_image_info
from aukit.writer import DatasetWriter


@dataclass(frozen=True)
class Task:
    """One photo to process (built by the parent, pickled to workers)."""

    rel: str
    path: str
    split: str | None          # None: skip with reason "no-identity"
    identity: str | None
    source_labels: dict[str, str]
    size_bytes: int
    mtime_ns: int


@dataclass(frozen=True)
class WorkerSettings:
    out: str
    size: int
    all_faces: bool
    max_side: int
    min_confidence: float
    image_format: str
    jpeg_quality: int
    faces: FaceConfig


class WorkerState:
    """The face analyzer, annotator and writer of one process."""

    def __init__(self, settings: WorkerSettings, annotator: Annotator):
        self.s = settings
        self.analyzer = FaceAnalyzer(settings.faces)
        self.annotator = annotator
        self.writer = DatasetWriter(settings.out, settings.image_format, settings.jpeg_quality)


def process_photo(state: WorkerState, task: Task) -> dict[str, Any]:
    """Report record of ``task`` (see docs/faces.md for its fields)."""
    rec: dict[str, Any] = {"source": task.rel, "size_bytes": task.size_bytes,
                           "mtime_ns": task.mtime_ns, "faces": []}
    try:
        rec["sha1"] = file_sha1(task.path)
        loaded = load_image_info(task.path, max_side=state.s.max_side)  # bad files first
        if task.split is None:
            return _skip(rec, "no-identity", "no identity for this image in the identity source")
        faces = _find_faces(state, loaded.pixels)
        if not faces:
            return _skip(rec, "no-face", "no face detected")
        for k, face in enumerate(faces):
            sample_id = face_id(task.rel, k, state.s.all_faces)
            rec["faces"].append(_do_face(state, task, rec["sha1"], loaded, face, k, sample_id))
    except ImageError as exc:
        return _skip(rec, exc.reason, exc.detail)
    except OSError as exc:
        return _skip(rec, "unreadable", str(exc))
    except Exception as exc:  # a bug or an unexpected file: report it, keep the batch going
        tb = traceback.format_exception_only(type(exc), exc)[-1].strip()
        return _skip(rec, "error", tb)
    accepted = [f for f in rec["faces"] if f["status"] == "accepted"]
    if accepted:
        rec["status"], rec["reason"] = "accepted", None
        return rec
    first = rec["faces"][0]
    return _skip(rec, first["reason"], first.get("detail", ""))


def _find_faces(state: WorkerState, image: np.ndarray) -> list[Face]:
    if state.s.all_faces:
        return state.analyzer.detect(image)
    face = state.analyzer.largest_face(image, allow_tiny=True)
    return [face] if face is not None else []


def _do_face(state: WorkerState, task: Task, sha1: str, loaded: Any, face: Face, k: int,
             sample_id: str) -> dict[str, Any]:
    """Crop, annotate and write face ``k``; its report entry."""
    entry: dict[str, Any] = {"index": k, "id": sample_id, "size_px": round(face.size / loaded.scale, 1)}
    if face.tiny:
        return {**entry, "status": "skipped", "reason": "tiny-face",
                "detail": f"face is {face.size:.0f} px < min_face_px {state.s.faces.min_face_px:g}"}
    if state.writer.is_done(sample_id):  # written by a run killed before it reported
        meta = json.loads((state.writer.root / META / f"{sample_id}.json").read_text())
        return {**entry, "status": "accepted", "confidence": round(meta["confidence"], 4), "resumed": True}
    size = state.s.size
    box = crop_box(face.landmarks[:, :2])
    crop = crop_image(loaded.pixels, box, size)
    lm_crop = box.landmarks_to_crop(face.landmarks, size)
    sample = FaceSample(crop, lm_crop, (face.landmarks / loaded.scale).astype(np.float32), task.rel, k)
    try:
        est = check_estimate(state.annotator.annotate(sample), state.annotator.name)
    except AnnotationError as exc:
        return {**entry, "status": "skipped", "reason": exc.reason, "detail": exc.detail}
    if est.confidence < state.s.min_confidence:
        return {**entry, "status": "skipped", "reason": "low-confidence",
                "detail": f"confidence {est.confidence:.3f} < {state.s.min_confidence:g}"}
    label = {
        "au17": [float(x) for x in est.au17], "split": task.split, "source": task.rel, "sha1": sha1,
        "face_index": k, "crop_box": [v / loaded.scale for v in box.as_list()],
        "detector": face.detector, "detector_score": round(face.score, 4),
        "annotator": state.annotator.name, "confidence": est.confidence,
    }
    if task.identity is not None:
        label["identity"] = task.identity
    if task.source_labels:
        label["source_labels"] = task.source_labels
    state.writer.write_sample(sample_id, crop, label, arrays={"landmarks": lm_crop})
    return {**entry, "status": "accepted", "confidence": round(est.confidence, 4)}


def _skip(rec: dict[str, Any], reason: str, detail: str) -> dict[str, Any]:
    rec.update(status="skipped", reason=reason, detail=detail)
    return rec
