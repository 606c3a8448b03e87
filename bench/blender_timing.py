"""Seconds per image of the Blender backend (Cycles, CPU) against pyrender, in one run.

Cycles at each size (default 128 and 256) x samples (16, 64) x denoise (off, on), plus
pyrender (ssaa2) at the same sizes, on the same scene specs, one process, automatic
threads. Each renderer renders one warm-up image first (scene build, kernel load); the
warm-up time is reported as ``first_image_s``. Optionally EEVEE (``--eevee``).

    python bench/blender_timing.py [--n 4] [--sizes 128 256] [--samples 16 64] [--eevee]

Prints a table and writes bench/results/blender_timing.json. Machines here are shared and
noisy: the load average at start and end is recorded, and CPU seconds per image (all threads
of the process) next to wall seconds; on an idle machine with C cores, wall ~ CPU / C for
Cycles. Compare against the pyrender rows of the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

OUT = Path(__file__).parent / "results" / "blender_timing.json"


def timed(renderer, geoms) -> tuple[float, float, float, dict]:
    """(first image s, mean wall s per image over the rest, mean CPU s per image (all
    threads of this process), stage means for Blender)."""
    t = time.perf_counter()
    renderer.render(geoms[0])
    first = time.perf_counter() - t
    stages: dict[str, float] = {}
    if renderer.name == "blender":
        stages = _instrument(renderer)
    t, c = time.perf_counter(), time.process_time()
    for g in geoms[1:]:
        renderer.render(g)
    n = max(1, len(geoms) - 1)
    per, cpu = (time.perf_counter() - t) / n, (time.process_time() - c) / n
    return first, per, cpu, {k: round(v / n, 4) for k, v in stages.items()}


def _instrument(r) -> dict[str, float]:
    """Accumulate the time of the Blender renderer's stages (sync, colour, id passes)."""
    acc = {"sync": 0.0, "colour_pass": 0.0, "id_passes": 0.0}
    for attr, key in (("_sync", "sync"), ("_colour_pass", "colour_pass"), ("_id_pass", "id_passes")):
        fn = getattr(r, attr)

        def wrap(*a, _fn=fn, _key=key, **k):
            t = time.perf_counter()
            try:
                return _fn(*a, **k)
            finally:
                acc[_key] += time.perf_counter() - t

        setattr(r, attr, wrap)
    return acc


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=4, help="timed images per configuration (+1 warm-up)")
    p.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    p.add_argument("--samples", type=int, nargs="+", default=[16, 64])
    p.add_argument("--subsurface", default="random_walk", choices=["random_walk", "burley", "none"])
    p.add_argument("--threads", type=int, default=0, help="Cycles threads (0 = all cores)")
    p.add_argument("--eevee", action="store_true",
                   help="also time EEVEE at the smallest size (slow here: software OpenGL)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=OUT)
    a = p.parse_args()

    from aukit.config import load
    from synth.config import SynthConfig
    from synth.render import make_renderer
    from synth.rig import HeadRig
    from synth.sampling import sample_scene
    from synth.scene import IdentityCache, build_scene

    rig = HeadRig()
    cache = IdentityCache(rig)
    load_start = os.getloadavg()
    rows, keep = [], []

    def report(row: dict) -> None:
        rows.append(row)
        save(a, load_start, rows)
        extra = f"  stages {row['stages_s']}" if row.get("stages_s") else ""
        print(f"{row['renderer']:8s} {row['size']:4d}px  samples {str(row.get('samples', '-')):>3s}  "
              f"denoise {str(row.get('denoise', '-')):5s}  {row['seconds_per_image']:7.3f} s/img  "
              f"cpu {row['cpu_seconds_per_image']:7.3f} s/img  "
              f"(first {row['first_image_s']:.2f} s){extra}", flush=True)

    for size in a.sizes:
        cfg = load(SynthConfig, overrides=[f"output.size={size}"])
        geoms = [build_scene(sample_scene(cfg, a.seed, i), rig, cache) for i in range(a.n + 1)]
        # pyrender's close() terminates the process's EGL display, which Blender's Workbench
        # id pass also uses: keep every pyrender renderer open until the end
        ref = make_renderer("pyrender", size, antialias=cfg.output.antialias)
        keep.append(ref)
        first, per, cpu, _ = timed(ref, geoms)
        report({"renderer": "pyrender", "size": size, "antialias": cfg.output.antialias,
                "seconds_per_image": round(per, 4), "cpu_seconds_per_image": round(cpu, 4),
                "first_image_s": round(first, 3)})
        for samples in a.samples:
            for denoise in (False, True):
                r = make_renderer("blender", size, samples=samples, denoise=denoise, threads=a.threads,
                                  subsurface=a.subsurface, identity_cache=cache)
                first, per, cpu, stages = timed(r, geoms)
                r.close()
                report({"renderer": "cycles", "size": size, "samples": samples, "denoise": denoise,
                        "adaptive_sampling": True, "subsurface": a.subsurface,
                        "seconds_per_image": round(per, 4), "cpu_seconds_per_image": round(cpu, 4),
                        "first_image_s": round(first, 3), "stages_s": stages})
        if a.eevee and size == min(a.sizes):
            r = make_renderer("blender", size, engine="eevee", samples=a.samples[0], identity_cache=cache)
            first, per, cpu, stages = timed(r, geoms[:2])
            r.close()
            report({"renderer": "eevee", "size": size, "samples": a.samples[0], "seconds_per_image": round(per, 4),
                    "cpu_seconds_per_image": round(cpu, 4), "first_image_s": round(first, 3), "stages_s": stages})
    save(a, load_start, rows)
    print(f"wrote {a.out}")
    # the pyrender renderers in `keep` are not closed: after Blender's GPU passes the EGL
    # display may already be gone, and the process ends here anyway


def save(a, load_start, rows) -> None:
    """Write the JSON (after every configuration, so an interrupted run keeps its rows)."""
    from importlib.metadata import version

    for row in rows:
        base = next(r["seconds_per_image"] for r in rows if r["renderer"] == "pyrender" and r["size"] == row["size"])
        row["x_pyrender"] = round(row["seconds_per_image"] / base, 1)
    result = {"n": a.n, "cpu_count": os.cpu_count(), "threads": a.threads, "bpy": version("bpy"),
              "python": platform.python_version(), "loadavg_start": [round(x, 2) for x in load_start],
              "loadavg_end": [round(x, 2) for x in os.getloadavg()], "rows": rows}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
