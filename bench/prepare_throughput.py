"""Benchmark: ``ausynth prepare`` images/s at 1 and 2 workers on the same photos.

Each worker count runs the full command path (:func:`annotate.prepare.run_prepare`: listing,
process start-up, load, detect, crop, annotate, write, finalize) on the first ``--limit``
photos of ``--images`` into a fresh temporary dataset, alternating counts over
``--repeats`` rounds so that machine load hits both alike; the best round is reported.

Annotator: ``--annotator NAME`` (default: ``geometric`` when registered). Without it the
bench uses ``bench-null``, defined here, which returns zeros: it measures the pipeline
without annotation cost, and says so in the output.

    python bench/prepare_throughput.py --limit 1000
    python bench/prepare_throughput.py --limit 300 --workers 1 2 --repeats 2

Also reports CPU time per image (this process + the pool's workers), which the machine's
other load does not inflate the way it inflates wall time; the load average is recorded.
Prints a table and writes ``bench/results/prepare_throughput.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from annotate import registry  # noqa: E402
from annotate.base import AUEstimate, FaceSample  # noqa: E402
from annotate.prepare import PrepareConfig, run_prepare  # noqa: E402

DEFAULT_IMAGES = REPO.parent / "shared" / "data" / "real_faces" / "images"


class NullAnnotator:
    """All-zero AUs, confidence 0: isolates the cost of everything but annotation."""

    name = "bench-null"

    def describe(self) -> dict:
        return {"name": self.name, "note": "benchmark only: zeros"}

    def annotate(self, face: FaceSample) -> AUEstimate:
        return AUEstimate(np.zeros(17, np.float32), 0.0)


def make_null(**_: object) -> NullAnnotator:
    return NullAnnotator()


def link_subset(src: Path, dst: Path, limit: int) -> int:
    """Symlink the first ``limit`` files of ``src`` (sorted) into ``dst``; returns the count."""
    names = sorted(n for n in os.listdir(src) if not n.startswith("."))[:limit]
    dst.mkdir(parents=True)
    for n in names:
        os.symlink(src / n, dst / n)
    return len(names)


def cpu_seconds() -> float:
    """CPU time of this process and its reaped children (the pool's workers)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def time_run(images: Path, out: Path, annotator: str, workers: int) -> tuple[float, float, dict]:
    """(wall seconds, CPU seconds, summary) of one prepare run into a fresh ``out``."""
    shutil.rmtree(out, ignore_errors=True)
    cfg = PrepareConfig(images=str(images), out=str(out), annotator=annotator, workers=workers)
    t0, c0 = time.perf_counter(), cpu_seconds()
    summary = run_prepare(cfg, progress=False)
    return time.perf_counter() - t0, cpu_seconds() - c0, summary


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=Path, default=DEFAULT_IMAGES)
    p.add_argument("--limit", type=int, default=1000)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--annotator", default=None)
    p.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "prepare_throughput.json")
    args = p.parse_args()
    if not args.images.is_dir():
        print(f"images folder not found: {args.images}", file=sys.stderr)
        return 2
    annotator = args.annotator or ("geometric" if "geometric" in registry.ANNOTATORS else "bench-null")
    if annotator == "bench-null":
        registry.register("bench-null", make_null)
    best: dict[int, float] = {}
    cpu: dict[int, float] = {}
    summaries: dict[int, dict] = {}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="prepare-bench-") as tmp:
        n = link_subset(args.images, Path(tmp) / "imgs", args.limit)
        for _ in range(args.repeats):
            for w in args.workers:
                dt, ct, summaries[w] = time_run(Path(tmp) / "imgs", Path(tmp) / f"out{w}", annotator, w)
                if dt < best.get(w, float("inf")):
                    best[w], cpu[w] = dt, ct
                print(f"workers={w}: {n / dt:.1f} images/s ({dt:.1f} s wall, {ct:.1f} s CPU, "
                      f"{n} photos, load {os.getloadavg()[0]:.1f})", flush=True)
    result = {
        "images": str(args.images), "n_photos": n, "annotator": annotator, "repeats": args.repeats,
        "results": {str(w): {"seconds": round(best[w], 2), "images_per_s": round(n / best[w], 2),
                             "cpu_seconds": round(cpu[w], 2), "cpu_ms_per_image": round(cpu[w] / n * 1000, 2),
                             "summary": summaries[w]} for w in args.workers},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "load_avg_before": load_before,
                    "load_avg_after": os.getloadavg()},
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if 1 in best and 2 in best:
        result["speedup_2_vs_1"] = round(best[1] / best[2], 3)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1) + "\n")
    print(f"{'workers':>8} {'images/s':>9} {'CPU ms/img':>11}")
    for w in args.workers:
        print(f"{w:>8} {n / best[w]:>9.1f} {cpu[w] / n * 1000:>11.1f}")
    if "speedup_2_vs_1" in result:
        print(f"speedup 2 vs 1 worker: {result['speedup_2_vs_1']:.2f}x  -> {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
