"""The batch render job: sample -> build -> render -> write, over worker processes.

Work is split into units: chunks of sample indices for the GANimation folder format, or
whole shards for the sharded format (``output.format``). Units run on an executor
(:mod:`synth.executors`: local processes or Ray actors); output is identical for any
executor or worker count because every sample is a pure function of (seed, index).

Resumable by construction: sample ids are ``f"{index:08d}"``; a folder-format sample is
done when its meta file exists (written last, atomically), a shard when its tar exists
(one atomic put). ``job.json`` records seed and config at the first run, and a rerun with
a different seed or config is refused instead of mixing two datasets.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aukit.aus import RIG_AUS, au_vector, rig_to_ganimation
from aukit.config import ConfigError, from_dict, to_dict
from aukit.shards import ShardSample, ShardWriter
from aukit.storage import LocalStorage, open_storage
from aukit.writer import DatasetWriter, encode_arrays, encode_image
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
    photo_identities: tuple[str, ...] = ()   # photo pool (synth.identity.photo_pool), pinned per job


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


def check_output(out: str, job_record: dict[str, Any]) -> None:
    """Fail before any work if ``out`` is unwritable or holds a different job."""
    store = open_storage(out)
    try:
        if isinstance(store, LocalStorage):
            store.root.mkdir(parents=True, exist_ok=True)
        store.write_bytes(".write_probe", b"ok")
    except OSError as exc:
        raise ConfigError(f"output directory {out} is not writable: {exc}") from exc
    if isinstance(store, LocalStorage):
        (store.root / ".write_probe").unlink(missing_ok=True)
    if store.exists(JOB_FILE):
        old = json.loads(store.read_bytes(JOB_FILE))
        old["config"] = _with_defaults(old.get("config"))
        for key in ("seed", "config"):
            if old.get(key) != job_record[key]:
                raise ConfigError(f"{out} already holds a dataset rendered with a different {key}; "
                                  "use a new --out directory (or the same settings to resume)")


def _with_defaults(config: Any) -> Any:
    """A recorded config with keys added since it was written set to their defaults (those
    defaults render what the code did before the key existed), so such a job resumes."""
    if not isinstance(config, dict):
        return config
    try:
        return to_dict(from_dict(SynthConfig, config))
    except (ConfigError, TypeError, ValueError):
        return config  # unreadable now: compared as recorded, so it differs


def prepare_job(cfg: SynthConfig, out: str | Path, n: int, seed: int) -> Job:
    """Validate everything and record the job; raises ConfigError with a clear message."""
    if n < 1:
        raise ConfigError("--n must be at least 1")
    if seed < 0:
        raise ConfigError("--seed must be a non-negative integer")
    images = list_background_images(cfg)
    _check_backend(cfg.output.backend)
    record = {"seed": seed, "config": to_dict(cfg)}
    check_output(str(out), record)
    record["n_requested"] = n
    open_storage(str(out)).write_bytes(JOB_FILE, (json.dumps(record, indent=2) + "\n").encode())
    from synth.identity.photo_pool import pinned_pool  # resolved (built if needed) and pinned in --out

    return Job(cfg, str(out), n, seed, images, pinned_pool(cfg, str(out)))


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
    rig = HeadRig(subdivisions=out.subdivisions, eyeball_fit=job.cfg.identity.eyeball_fit,
                  wrinkles=job.cfg.identity.wrinkles,
                  wrinkle_aus=job.cfg.identity.wrinkle_aus, au_gain=job.cfg.identity.au_gain)
    cache = IdentityCache(rig)
    opts = {"antialias": out.antialias, "shadows": job.cfg.lights_extra.shadows} if out.backend == "pyrender" else {}
    if out.backend == "blender":  # Cycles settings; the skin's AU shape keys need the identity cache
        opts = {**to_dict(job.cfg.blender), "identity_cache": cache}
    _STATE.update(job=job, rig=rig, cache=cache,
                  renderer=make_renderer(out.backend, out.size, **opts),
                  writer=DatasetWriter(job.out, out.image_format, out.jpeg_quality)
                  if out.format == "ganimation" else None)


def close_worker() -> None:
    if "renderer" in _STATE:
        _STATE.pop("renderer").close()


def _render(index: int) -> tuple[np.ndarray, dict[str, Any], dict[str, np.ndarray] | None]:
    """Image, label and arrays of sample ``index`` (in this worker)."""
    from synth.sampling import sample_scene
    from synth.scene import build_scene

    job: Job = _STATE["job"]
    spec = sample_scene(job.cfg, job.seed, index, job.background_images, job.photo_identities)
    geom = build_scene(spec, _STATE["rig"], _STATE["cache"])
    out = _STATE["renderer"].render(geom)
    out["rgb"] = photometric.apply(out["rgb"], spec.photometric)
    label, arrays = _label(spec, geom, out)
    return out["rgb"], label, arrays if job.cfg.output.write_arrays else None


def _failure(index: int, exc: Exception) -> dict[str, Any]:
    return {"index": index, "ok": False, "error": f"{type(exc).__name__}: {exc}",
            "trace": traceback.format_exc(limit=3)}


def render_sample(index: int) -> dict[str, Any]:
    """Render and write one sample (folder format); returns a status record."""
    try:
        rgb, label, arrays = _render(index)
        _STATE["writer"].write_sample(sample_id(index), rgb, label, arrays)
        return {"index": index, "ok": True}
    except Exception as exc:  # one bad sample must not kill the batch
        return _failure(index, exc)


def render_shard(k: int) -> list[dict[str, Any]]:
    """Render every sample of shard ``k`` and write the shard in one atomic put."""
    job: Job = _STATE["job"]
    out = job.cfg.output
    size = out.shard_size
    samples, statuses = [], []
    for index in range(k * size, min(job.n, (k + 1) * size)):
        try:
            rgb, label, arrays = _render(index)
            sid = sample_id(index)
            img = f"imgs/{sid}.{out.image_format}"
            samples.append(ShardSample(sid, out.image_format, encode_image(rgb, out.image_format, out.jpeg_quality),
                                       {"id": sid, "image": img, **label},
                                       encode_arrays(arrays) if arrays is not None else None))
            statuses.append({"index": index, "ok": True})
        except Exception as exc:
            statuses.append(_failure(index, exc))
    ShardWriter(job.out, size).write_shard(k, samples)
    return statuses


def run_unit(unit: tuple[str, list[int]]) -> list[dict[str, Any]]:
    """Run one work unit in this worker: ("samples", indices) or ("shard", [k])."""
    kind, items = unit
    if kind == "shard":
        return render_shard(items[0])
    return [render_sample(i) for i in items]


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
def work_units(job: Job, chunk: int = 8) -> list[tuple[str, list[int]]]:
    """What is left to do: sample chunks (folder format) or shard indices (sharded)."""
    out = job.cfg.output
    if out.format == "shards":
        done = ShardWriter(job.out, out.shard_size).done_shards()
        n_shards = (job.n + out.shard_size - 1) // out.shard_size
        return [("shard", [k]) for k in range(n_shards) if k not in done]
    done = DatasetWriter(job.out).done_ids()
    todo = [i for i in range(job.n) if sample_id(i) not in done]
    return [("samples", todo[i:i + chunk]) for i in range(0, len(todo), chunk)]


def unit_size(job: Job, unit: tuple[str, list[int]]) -> int:
    if unit[0] == "shard":
        k, size = unit[1][0], job.cfg.output.shard_size
        return min(job.n, (k + 1) * size) - k * size
    return len(unit[1])


def run_job(job: Job, workers: int = 1, progress: bool = True, executor: str = "local",
            ray_address: str | None = None) -> dict[str, Any]:
    """Render every missing sample of ``job`` and finalize; returns the manifest."""
    from tqdm import tqdm

    from synth.executors import run_units

    units = work_units(job)
    errors, rendered = [], 0
    t0 = time.time()
    store = open_storage(job.out)
    bar = tqdm(total=sum(unit_size(job, u) for u in units), unit="img", disable=not progress,
               smoothing=0.1, desc=f"render ({executor})")
    try:
        for statuses in run_units(job, units, workers, executor, ray_address):
            bar.update(len(statuses))
            for status in statuses:
                rendered += status["ok"]
                if not status["ok"]:
                    errors.append(status)
            _log_errors(store, [s for s in statuses if not s["ok"]])
    finally:
        bar.close()
    return finalize(job, time.time() - t0, rendered, errors)


def _log_errors(store, failed: list[dict[str, Any]]) -> None:
    if not failed:
        return
    old = store.read_bytes(ERRORS_FILE).decode() if store.exists(ERRORS_FILE) else ""
    store.write_bytes(ERRORS_FILE, (old + "".join(json.dumps(s) + "\n" for s in failed)).encode())


def finalize(job: Job, elapsed: float, rendered: int, errors: list[dict[str, Any]]) -> dict[str, Any]:
    out = job.cfg.output
    manifest = {
        "kind": "ausynth-render", "seed": job.seed, "n_requested": job.n,
        "config": to_dict(job.cfg), "backend": out.backend, "format": out.format,
        "render_seconds_last_run": round(elapsed, 2), "rendered_last_run": rendered,
        "errors_last_run": len(errors),
        "label_files": {"per_sample": "meta/<id>.json", "arrays": "masks/<id>.npz (seg, face_mask, "
                        "au_regions, depth [cm, float16], landmarks_2d, landmarks_3d, landmark_visible, "
                        "occlusion, occluder_instance, occluder_class, face_occluded, au_occlusion)"},
        "occluder_classes": OCCLUDER_CLASSES,
        "au_region_bits": list(RIG_AUS),
    }
    if out.format == "shards":
        result = ShardWriter(job.out, out.shard_size).finalize(manifest)
    else:
        result = DatasetWriter(job.out, out.image_format, out.jpeg_quality).finalize(manifest)
    return result | {"errors": errors}


def default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))
