"""``ausynth prepare``: a folder of real photos -> a GANimation-format dataset with AU labels.

Per photo: load (``aukit.imageio``), find the largest face (or all with ``--all-faces``;
``aukit.faces``), crop it by the shared rule (``aukit.crop``) at ``--size``, label it with
an annotator (``annotate.registry``), write it (``aukit.writer``). Parallel over
``--workers`` processes (spawned; one FaceAnalyzer and annotator each), resumable (rerun
the same command: finished photos are skipped), every input accounted for in
``prepare_report.jsonl``. Full documentation: docs/faces.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Iterator, Literal

from annotate import registry
from annotate.base import AnnotatorUnavailable
from annotate.pool import WorkerStartError, run_tasks
from annotate.sources import LabelsTable, Photo, identity_of, list_photos, split_of
from annotate.worker import Task, WorkerSettings, WorkerState, process_photo
from aukit import atomic
from aukit.config import ConfigError, apply_override, check, dump_yaml, from_dict, read_yaml, to_dict
from aukit.dataset import META
from aukit.faces import FaceConfig
from aukit.writer import DatasetWriter

REPORT = "prepare_report.jsonl"
STATE = "prepare_config.json"
INFLIGHT = ".prepare_inflight"  # per-worker markers of the photo in progress (annotate.pool)


@dataclass(frozen=True)
class PrepareConfig:
    """Settings of ``ausynth prepare`` (YAML keys = field names; CLI flags override)."""

    images: str = ""
    out: str = ""
    annotator: str = "geometric"
    annotator_options: dict[str, Any] = field(default_factory=dict)
    openface_csv: str | None = None
    labels_csv: str | None = None
    identity_from_dir: bool = False
    size: int = 128
    workers: int = 2
    test_fraction: float = 0.1
    seed: int = 0
    all_faces: bool = False
    max_side: int = 2048
    min_confidence: float = 0.0
    image_format: Literal["jpg", "png"] = "jpg"
    jpeg_quality: int = 95
    faces: FaceConfig = FaceConfig()

    def __post_init__(self) -> None:
        check(bool(self.images), "images: the --images folder is required")
        check(bool(self.out), "out: the --out dataset folder is required")
        check(16 <= self.size <= 1024, f"size must be in [16, 1024], got {self.size}")
        check(1 <= self.workers <= 256, f"workers must be in [1, 256], got {self.workers}")
        check(0.0 <= self.test_fraction <= 1.0, f"test_fraction must be in [0, 1], got {self.test_fraction}")
        check(self.seed >= 0, f"seed must be >= 0, got {self.seed}")
        check(self.max_side >= 64, f"max_side must be >= 64, got {self.max_side}")
        check(0.0 <= self.min_confidence <= 1.0, f"min_confidence must be in [0, 1], got {self.min_confidence}")
        check(1 <= self.jpeg_quality <= 100, f"jpeg_quality must be in [1, 100], got {self.jpeg_quality}")
        check(not (self.labels_csv and self.identity_from_dir),
              "labels_csv and identity_from_dir are two identity sources: give one")

    def annotator_kwargs(self) -> dict[str, Any]:
        """Options for the annotator factory (``--openface-csv`` becomes ``csv``)."""
        opts = dict(self.annotator_options)
        if self.annotator == "openface" and self.openface_csv:
            opts.setdefault("csv", str(Path(self.openface_csv).resolve()))
        return opts


# ----------------------------------------------------------------------------- CLI

def build_parser(prog: str = "ausynth prepare") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Turn a folder of real photos into a "
                                "GANimation-format dataset with AU labels (see docs/faces.md).")
    a = p.add_argument
    a("--images", help="folder of photos (searched recursively)")
    a("--out", help="dataset folder to create or resume")
    a("--annotator", help=f"AU annotator: {', '.join(sorted(registry.ANNOTATORS))} (default geometric)")
    a("--openface-csv", help="OpenFace output: folder of per-image CSVs or one FeatureExtraction CSV "
                             "(implies --annotator openface)")
    a("--labels-csv", help="CSV with image,identity columns: identity-disjoint train/test split")
    a("--identity-from-dir", action="store_true", default=None,
      help="use each photo's parent folder as its identity (identity-disjoint split)")
    a("--size", type=int, help="crop size in pixels (default 128)")
    a("--workers", type=int, help="worker processes (default 2)")
    a("--test-fraction", type=float, help="share of photos/identities in the test split (default 0.1)")
    a("--seed", type=int, help="split seed (default 0)")
    a("--all-faces", action="store_true", default=None, help="every face of a photo, not just the largest")
    a("--min-face-px", type=float, help="skip faces smaller than this (pixels, default 40)")
    a("--config", help="YAML file with PrepareConfig keys")
    a("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key (repeatable)")
    a("--dry-run", action="store_true", help="print the resolved config and exit")
    a("--no-progress", action="store_true", help="no progress bar")
    return p


def config_from_args(args: argparse.Namespace) -> PrepareConfig:
    """YAML file < CLI flags < ``--set`` overrides."""
    data: dict[str, Any] = read_yaml(args.config) if args.config else {}
    flags = {"images": args.images, "out": args.out, "annotator": args.annotator,
             "openface_csv": args.openface_csv, "labels_csv": args.labels_csv,
             "identity_from_dir": args.identity_from_dir, "size": args.size, "workers": args.workers,
             "test_fraction": args.test_fraction, "seed": args.seed, "all_faces": args.all_faces}
    data.update({k: v for k, v in flags.items() if v is not None})
    if args.min_face_px is not None:
        data.setdefault("faces", {})["min_face_px"] = args.min_face_px
    if args.openface_csv and args.annotator not in (None, "openface"):
        raise ConfigError(f"--openface-csv imports OpenFace AUs; it cannot be combined with "
                          f"--annotator {args.annotator}")
    if args.openface_csv:
        data["annotator"] = "openface"
    for item in args.set:
        apply_override(data, item)
    return from_dict(PrepareConfig, data)


def main(args: argparse.Namespace) -> int:
    try:
        cfg = config_from_args(args)
        if args.dry_run:
            print(dump_yaml(cfg), end="")
            return 0
        summary = run_prepare(cfg, progress=not args.no_progress)
    except (ConfigError, FileNotFoundError, ValueError, AnnotatorUnavailable, WorkerStartError) as exc:
        print(f"ausynth prepare: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ausynth prepare: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    print(json.dumps(summary, indent=1))
    return 0


# ----------------------------------------------------------------------------- pipeline

def run_prepare(cfg: PrepareConfig, progress: bool = True) -> dict[str, Any]:
    """Run (or resume) ``prepare``; returns the summary that also goes into the manifest."""
    out, images = Path(cfg.out).resolve(), Path(cfg.images).resolve()
    photos = list_photos(images, exclude=out if out.is_relative_to(images) else None)
    labels = LabelsTable(cfg.labels_csv) if cfg.labels_csv else None
    factory = registry.get_factory(cfg.annotator)
    probe = factory(**cfg.annotator_kwargs())  # fail fast on bad options or missing weights
    description = probe.describe()
    _claim_output(out, cfg)
    writer = DatasetWriter(out, cfg.image_format, cfg.jpeg_quality)
    tasks, records = _plan(cfg, photos, labels, out, writer.done_ids())
    del probe  # workers build their own: do not hold a second copy of its models
    settings = WorkerSettings(str(out), cfg.size, cfg.all_faces, cfg.max_side, cfg.min_confidence,
                              cfg.image_format, cfg.jpeg_quality, cfg.faces)
    bar = _progress(len(photos), len(photos) - len(tasks), progress)
    with (out / REPORT).open("a") as report:
        for rec in _execute(settings, factory, cfg, tasks, out):
            report.write(json.dumps(rec) + "\n")
            report.flush()
            records[rec["source"]] = rec
            bar.update(1)
    bar.close()
    ordered = [records[p.rel] for p in photos if p.rel in records]
    atomic.write_text(out / REPORT, "".join(json.dumps(r) + "\n" for r in ordered))
    summary = _summarize(ordered)
    writer.finalize({"command": "prepare", "config": to_dict(cfg), "annotator": description,
                     "images_root": str(images), "report": REPORT, "summary": summary})
    return summary


def _claim_output(out: Path, cfg: PrepareConfig) -> None:
    """Record the settings that shape samples; refuse to resume with different ones."""
    key = {k: v for k, v in to_dict(cfg).items() if k not in ("out", "workers")}
    for path_key in ("images", "labels_csv", "openface_csv"):
        if key.get(path_key):
            key[path_key] = str(Path(key[path_key]).resolve())
    key["annotator_options"] = cfg.annotator_kwargs()
    state = out / STATE
    if state.is_file():
        old = json.loads(state.read_text())
        diff = sorted(k for k in set(old) | set(key) if old.get(k) != key.get(k))
        if diff:
            raise ConfigError(f"{out} was prepared with different settings ({', '.join(diff)}); "
                              "use a new --out folder or the original settings to resume")
        return
    if (out / META).is_dir() and any((out / META).iterdir()):
        raise ConfigError(f"{out} already holds a dataset not made by prepare; choose a new --out")
    out.mkdir(parents=True, exist_ok=True)
    atomic.write_json(state, key)


def _plan(cfg: PrepareConfig, photos: list[Photo], labels: LabelsTable | None, out: Path,
          done: set[str]) -> tuple[list[Task], dict[str, dict[str, Any]]]:
    """Tasks still to run, and the records of photos already settled."""
    previous = _read_report(out / REPORT)
    tasks, records = [], {}
    for photo in photos:
        st = photo.path.stat()
        if not photo.is_image_name:
            records[photo.rel] = {"source": photo.rel, "size_bytes": st.st_size, "mtime_ns": st.st_mtime_ns,
                                  "faces": [], "status": "skipped", "reason": "unsupported-extension",
                                  "detail": f"{photo.path.suffix or 'no extension'} is not an image extension"}
            continue
        prev = previous.get(photo.rel)
        if prev and _settled(prev, st.st_size, st.st_mtime_ns, done):
            records[photo.rel] = prev
            continue
        identity, extra = identity_of(photo, labels, cfg.identity_from_dir)
        use_identity = labels is not None or cfg.identity_from_dir
        split = (split_of(identity, cfg.seed, cfg.test_fraction) if identity else None) if use_identity \
            else split_of(photo.rel, cfg.seed, cfg.test_fraction)
        tasks.append(Task(photo.rel, str(photo.path), split, identity, extra, st.st_size, st.st_mtime_ns))
    return tasks, records


def _settled(prev: dict[str, Any], size: int, mtime_ns: int, done: set[str]) -> bool:
    """A previous record still holds: same file, and every accepted sample is on disk."""
    if prev.get("size_bytes") != size or prev.get("mtime_ns") != mtime_ns or prev.get("reason") == "error":
        return False
    return all(f["id"] in done for f in prev.get("faces", []) if f.get("status") == "accepted")


def _read_report(path: Path) -> dict[str, dict[str, Any]]:
    """Latest record per source; a torn last line (killed run) is ignored."""
    out: dict[str, dict[str, Any]] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                rec = json.loads(line)
                out[rec["source"]] = rec
            except (json.JSONDecodeError, KeyError, TypeError):
                continue
    return out


# ----------------------------------------------------------------------------- execution

def _make_worker(settings: WorkerSettings, factory: Any, options: dict[str, Any]) -> Any:
    """Runs once in each worker process: its analyzer, annotator and writer."""
    return partial(process_photo, WorkerState(settings, factory(**options)))


def _crashed(task: Task) -> dict[str, Any]:
    return {"source": task.rel, "size_bytes": task.size_bytes, "mtime_ns": task.mtime_ns, "faces": [],
            "status": "skipped", "reason": "worker-crashed",
            "detail": "the worker process died on this photo (native crash or out of memory)"}


def _execute(settings: WorkerSettings, factory: Any, cfg: PrepareConfig, tasks: list[Task],
             out: Path) -> Iterator[dict[str, Any]]:
    """Records of ``tasks`` in completion order, from ``cfg.workers`` spawned processes."""
    if not tasks:
        return
    markers = out / INFLIGHT
    try:
        yield from run_tasks(tasks, min(cfg.workers, len(tasks)), _make_worker,
                             (settings, factory, cfg.annotator_kwargs()), markers, _crashed)
    finally:
        shutil.rmtree(markers, ignore_errors=True)


def _progress(total: int, initial: int, enabled: bool) -> Any:
    from tqdm import tqdm
    return tqdm(total=total, initial=initial, unit="img", disable=not enabled, desc="prepare")


def _summarize(records: list[dict[str, Any]]) -> dict[str, Any]:
    faces = [f for r in records for f in r.get("faces", [])]
    return {
        "photos": len(records),
        "photos_accepted": sum(r["status"] == "accepted" for r in records),
        "photos_skipped": dict(sorted(Counter(r["reason"] for r in records if r["status"] != "accepted").items())),
        "faces_accepted": sum(f["status"] == "accepted" for f in faces),
        "faces_skipped": dict(sorted(Counter(f["reason"] for f in faces if f["status"] != "accepted").items())),
    }
