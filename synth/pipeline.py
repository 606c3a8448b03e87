"""The batch render job: sample -> build -> render -> write, over worker processes.

Resumable by construction: sample ids are ``f"{index:08d}"``; a sample is done when the
writer's meta file exists (written last, atomically); a rerun renders only missing ids.
``job.json`` records seed and config at the first run, and a rerun with a different
seed or config is refused instead of mixing two datasets.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from aukit import atomic
from aukit.aus import RIG_AUS, au_vector, rig_to_ganimation
from aukit.config import ConfigError, to_dict
from aukit.writer import DatasetWriter
from synth.config import SynthConfig
from synth.occluders import OCCLUDER_CLASSES
from synth.render import photometric

JOB_FILE = "job.json"
ERRORS_FILE = "render_errors.jsonl"
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def sample_id(index: int) -> str:
    return f"{index:08d}"


@dataclass(frozen=True)
class Job:
    """A resolved render job (everything a worker needs, picklable)."""

    cfg: SynthConfig
    out: str
    n: int
    seed: int
    background_images: tuple[str, ...] = ()


def list_background_images(cfg: SynthConfig) -> tuple[str, ...]:
    """Sorted image files of ``background.image_dir`` (sorted, so every worker agrees)."""
    d = cfg.background.image_dir
    if d is None:
        return ()
    root = Path(d)
    if not root.is_dir():
        raise ConfigError(f"background.image_dir {d!r} is not a directory")
    files = tuple(sorted(str(p) for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTS))
    if not files:
        raise ConfigError(f"background.image_dir {d!r} holds no images ({', '.join(IMAGE_EXTS)})")
    return files


def check_output(out: Path, job_record: dict[str, Any]) -> None:
    """Fail before any work if ``out`` is unwritable or holds a different job."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write_probe"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"output directory {out} is not writable: {exc}") from exc
    path = out / JOB_FILE
    if path.is_file():
        old = json.loads(path.read_text())
        for key in ("seed", "config"):
            if old.get(key) != job_record[key]:
                raise ConfigError(f"{out} already holds a dataset rendered with a different {key}; "
                                  "use a new --out directory (or the same settings to resume)")


def prepare_job(cfg: SynthConfig, out: str | Path, n: int, seed: int) -> Job:
    """Validate everything and record the job; raises ConfigError with a clear message."""
    if n < 1:
        raise ConfigError("--n must be at least 1")
    if seed < 0:
        raise ConfigError("--seed must be a non-negative integer")
    images = list_background_images(cfg)
    _check_backend(cfg.output.backend)
    record = {"seed": seed, "config": to_dict(cfg)}
    out = Path(out)
    check_output(out, record)
    record["n_requested"] = n
    atomic.write_json(out / JOB_FILE, record, fsync=True)
    return Job(cfg, str(out), n, seed, images)


def _check_backend(name: str) -> None:
    """A missing renderer package is reported before any work (and before worker processes
    that would fail in their initializer)."""
    from synth.render import check_available

    try:
        check_available(name)
    except RuntimeError as exc:
        raise ConfigError(str(exc)) from exc


# ---------------------------------------------------------------------------- worker side
_STATE: dict[str, Any] = {}


def _init_worker(job: Job) -> None:
    """Build the rig, identity cache, renderer and writer once per process."""
    from synth.render import make_renderer
    from synth.rig import HeadRig
    from synth.scene import IdentityCache

    out = job.cfg.output
    rig = HeadRig(subdivisions=out.subdivisions)
    cache = IdentityCache(rig)
    opts = {"antialias": out.antialias, "shadows": job.cfg.lights_extra.shadows} if out.backend == "pyrender" else {}
    if out.backend == "blender":  # Cycles settings; the skin's AU shape keys need the identity cache
        opts = {**to_dict(job.cfg.blender), "identity_cache": cache}
    _STATE.update(job=job, rig=rig, cache=cache,
                  renderer=make_renderer(out.backend, out.size, **opts),
                  writer=DatasetWriter(job.out, out.image_format, out.jpeg_quality))


def render_sample(index: int) -> dict[str, Any]:
    """Render and write one sample in this worker; returns a status record."""
    from synth.sampling import sample_scene
    from synth.scene import build_scene

    job: Job = _STATE["job"]
    try:
        spec = sample_scene(job.cfg, job.seed, index, job.background_images)
        geom = build_scene(spec, _STATE["rig"], _STATE["cache"])
        out = _STATE["renderer"].render(geom)
        out["rgb"] = photometric.apply(out["rgb"], spec.photometric)
        label, arrays = _label(spec, geom, out)
        _STATE["writer"].write_sample(sample_id(index), out["rgb"], label,
                                      arrays if job.cfg.output.write_arrays else None)
        return {"index": index, "ok": True}
    except Exception as exc:  # one bad sample must not kill the batch
        return {"index": index, "ok": False, "error": f"{type(exc).__name__}: {exc}",
                "trace": traceback.format_exc(limit=3)}


def _label(spec, geom, out) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    cam = geom.camera
    label = {
        "split": spec.split,
        "au17": rig_to_ganimation(au_vector(spec.aus)).tolist(),
        "spec": spec.to_json(),
        "camera": {"fx": cam.fx, "fy": cam.fy, "cx": cam.cx, "cy": cam.cy, "fov_deg": cam.fov_deg,
                   "pose": np.round(cam.pose, 6).tolist(), "crop_box_ref_px": cam.crop.as_list()},
        "face_box": np.round(out["face_box"], 3).tolist(),
        "landmarks68": np.round(out["landmarks68_2d"], 3).tolist(),
        "n_visible_landmarks": int(out["landmark_visible"].sum()),
        "occluded_face_fraction": round(float(out["face_occluded"].sum() / max(1, out["face_mask"].sum()
                                                                                + out["face_occluded"].sum())), 4),
        "au_occlusion": {a: round(float(v), 4) for a, v in zip(RIG_AUS, out["au_occlusion"])
                         if np.isfinite(v) and spec.aus[a] > 0},
    }
    arrays = {k: out[k] for k in ("seg", "au_regions", "landmarks_2d", "landmarks_3d", "landmark_visible",
                                  "face_mask", "occlusion", "occluder_instance", "occluder_class",
                                  "face_occluded", "au_occlusion")}
    arrays["depth"] = out["depth"].astype(np.float16)
    return label, arrays


# ---------------------------------------------------------------------------- driver
def pending(job: Job) -> list[int]:
    writer = DatasetWriter(job.out)
    done = writer.done_ids()
    return [i for i in range(job.n) if sample_id(i) not in done]


def run_job(job: Job, workers: int = 1, progress: bool = True) -> dict[str, Any]:
    """Render every missing sample of ``job`` and finalize; returns the manifest."""
    todo = pending(job)
    errors = []
    t0 = time.time()
    for status in _results(job, todo, workers, progress):
        if not status["ok"]:
            errors.append(status)
            with open(Path(job.out) / ERRORS_FILE, "a") as fh:
                fh.write(json.dumps(status) + "\n")
    elapsed = time.time() - t0
    manifest = {
        "kind": "ausynth-render", "seed": job.seed, "n_requested": job.n,
        "config": to_dict(job.cfg), "backend": job.cfg.output.backend,
        "render_seconds_last_run": round(elapsed, 2), "rendered_last_run": len(todo) - len(errors),
        "errors_last_run": len(errors),
        "label_files": {"per_sample": "meta/<id>.json", "arrays": "masks/<id>.npz (seg, face_mask, "
                        "au_regions, depth [cm, float16], landmarks_2d, landmarks_3d, landmark_visible, "
                        "occlusion, occluder_instance, occluder_class, face_occluded, au_occlusion)"},
        "occluder_classes": OCCLUDER_CLASSES,
        "au_region_bits": list(RIG_AUS),
    }
    return DatasetWriter(job.out).finalize(manifest) | {"errors": errors}


def _results(job: Job, todo: list[int], workers: int, progress: bool) -> Iterator[dict[str, Any]]:
    from tqdm import tqdm

    bar = tqdm(total=len(todo), unit="img", disable=not progress, smoothing=0.1, desc="render")
    if workers <= 1 or len(todo) <= 1:
        _init_worker(job)
        try:
            for i in todo:
                yield render_sample(i)
                bar.update()
        finally:
            _STATE["renderer"].close()
            bar.close()
        return
    # spawn, not fork: each worker needs its own fresh OpenGL/EGL state
    ctx = mp.get_context("spawn")
    chunk = max(1, min(32, len(todo) // (workers * 8)))
    with ctx.Pool(workers, initializer=_init_worker, initargs=(job,)) as pool:
        try:
            for status in pool.imap_unordered(render_sample, todo, chunksize=chunk):
                yield status
                bar.update()
        finally:
            bar.close()


def default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))
