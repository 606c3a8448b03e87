"""Render throughput: images/s at 128 and 256 px, 1 and 2 workers, render-only and
render+write, plus a per-stage time breakdown. Prints a table and writes JSON.

Ratios are against the 1-worker, 128 px, render-only figure measured in the same run
(machines here are noisy; compare ratios, not absolute numbers, across runs).

    python bench/render_throughput.py [--n 120] [--sizes 128 256] [--workers 1 2] [--antialias ssaa2]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

OUT = Path(__file__).parent / "results" / "render_throughput.json"


def _cfg(size: int, antialias: str, occluders: float = 0.35):
    from aukit.config import load
    from synth.config import SynthConfig

    # a small identity pool: identity building (~0.1 s each) is amortised over long runs
    # and reported separately below
    return load(SynthConfig, overrides=[f"output.size={size}", f"output.antialias={antialias}",
                                        "identity.pool_size=8", f"occluders.probability={occluders}"])


def _worker(args) -> tuple[float, int]:
    size, antialias, indices, write_dir, barrier, occluders = args
    from synth import pipeline

    cfg = _cfg(size, antialias, occluders)
    job = pipeline.Job(cfg, write_dir or tempfile.mkdtemp(), len(indices), 0)
    pipeline._init_worker(job)
    from synth.sampling import sample_scene
    from synth.scene import build_scene

    for i in range(8):  # warm-up: contexts, identity cache, shader compilation
        build = build_scene(sample_scene(cfg, 0, 10_000 + i), pipeline._STATE["rig"], pipeline._STATE["cache"])
        pipeline._STATE["renderer"].render(build)
    barrier.wait()
    t = time.perf_counter()
    for i in indices:
        if write_dir:
            assert pipeline.render_sample(i)["ok"]
        else:
            geom = build_scene(sample_scene(cfg, 0, i), pipeline._STATE["rig"], pipeline._STATE["cache"])
            pipeline._STATE["renderer"].render(geom)
    return time.perf_counter() - t, len(indices)


def measure(size: int, workers: int, n: int, write: bool, antialias: str, occluders: float = 0.35) -> float:
    """Images/s over ``n`` samples split across ``workers`` processes (after warm-up)."""
    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp, ctx.Manager() as mgr:
        barrier = mgr.Barrier(workers)
        chunks = [list(range(k, n, workers)) for k in range(workers)]
        args = [(size, antialias, c, tmp if write else None, barrier, occluders) for c in chunks]
        with ctx.Pool(workers) as pool:
            res = pool.map(_worker, args)
    wall = max(t for t, _ in res)
    return n / wall


def breakdown(size: int, antialias: str, n: int = 40) -> dict[str, float]:
    """Milliseconds per image for each stage, measured in this process."""
    from aukit.writer import DatasetWriter
    from synth import pipeline
    from synth.render import compose
    from synth.sampling import sample_scene
    from synth.scene import build_scene

    cfg = _cfg(size, antialias)
    tmp = tempfile.mkdtemp()
    pipeline._init_worker(pipeline.Job(cfg, tmp, n, 0))
    rig, cache, r = pipeline._STATE["rig"], pipeline._STATE["cache"], pipeline._STATE["renderer"]
    w: DatasetWriter = pipeline._STATE["writer"]
    for i in range(8):
        r.render(build_scene(sample_scene(cfg, 0, 10_000 + i), rig, cache))
    acc = dict.fromkeys(["sample", "build", "colour_pass", "background_composite", "id_pass", "labels", "write"], 0.0)
    for i in range(n):
        t0 = time.perf_counter(); spec = sample_scene(cfg, 0, i)
        t1 = time.perf_counter(); geom = build_scene(spec, rig, cache)
        t2 = time.perf_counter(); rgba = r._color_pass(geom)
        t3 = time.perf_counter(); rgb = compose.composite(rgba, compose.background(spec.background, size), r.k)
        t4 = time.perf_counter(); ids, depth = r._id_pass(geom)
        t5 = time.perf_counter()
        from synth.render.labels import pixel_labels
        out = {"rgb": rgb, **pixel_labels(geom, ids, depth)}
        t6 = time.perf_counter()
        label, arrays = pipeline._label(spec, geom, out)
        w.write_sample(pipeline.sample_id(i), rgb, label, arrays)
        t7 = time.perf_counter()
        for k, dt in zip(acc, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5, t7 - t6)):
            acc[k] += dt
    t = time.perf_counter()
    from synth.identity import procedural_identity
    for s in range(5):
        procedural_identity(1000 + s, rig.basis.neutral, len(rig.basis.shape_names))
    acc = {k: round(1000 * v / n, 2) for k, v in acc.items()}
    acc["identity_build_once"] = round(1000 * (time.perf_counter() - t) / 5, 1)
    return acc


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=120, help="images per measurement")
    p.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--antialias", default="ssaa2", choices=["none", "msaa4", "ssaa2"])
    p.add_argument("--out", type=Path, default=OUT)
    a = p.parse_args()
    rows = []
    for size in a.sizes:
        for workers in a.workers:
            for write in (False, True):
                ips = measure(size, workers, a.n, write, a.antialias)
                rows.append({"size": size, "workers": workers, "write": write, "images_per_s": round(ips, 2)})
                print(f"size {size:4d}  workers {workers}  {'render+write' if write else 'render only ':12s}  {ips:7.1f} img/s", flush=True)
    # occluders on (every sample) against off, same settings, same run
    occ = {}
    for prob in (0.0, 1.0):
        occ[prob] = measure(min(a.sizes), 1, a.n, False, a.antialias, occluders=prob)
        print(f"size {min(a.sizes):4d}  workers 1  render only   occluders p={prob:.0f}: {occ[prob]:7.1f} img/s", flush=True)
    base = next(r["images_per_s"] for r in rows if r["size"] == min(a.sizes) and r["workers"] == 1 and not r["write"])
    for r in rows:
        r["ratio_vs_1worker_render_only_smallest"] = round(r["images_per_s"] / base, 3)
    stages = breakdown(min(a.sizes), a.antialias)
    print("per-image stage times (ms, 1 process, %d px):" % min(a.sizes), stages)
    result = {"antialias": a.antialias, "n": a.n, "cpu_count": os.cpu_count(), "rows": rows,
              "occluders": {"off_images_per_s": round(occ[0.0], 2), "on_images_per_s": round(occ[1.0], 2),
                            "on_over_off": round(occ[1.0] / occ[0.0], 3)},
              "stages_ms": stages, "baseline_images_per_s": base}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
