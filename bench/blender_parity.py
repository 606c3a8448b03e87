"""Label parity between the Blender and pyrender backends, plus a side-by-side contact sheet.

Renders the same scene specs with both backends and compares the labels each derives from
its own id pass: 2D landmarks (px), face-mask IoU, occlusion-mask IoU (specs where either
backend sees an occluder), segmentation / AU-region / visibility agreement and depth.
Checks: landmarks within 0.5 px, face-mask IoU >= 0.98, occlusion IoU >= 0.95.

    python bench/blender_parity.py [--n 50] [--size 128] [--samples 32] [--sheet /tmp/blender_sheet.png]

Writes bench/results/blender_parity.json and the sheet (pyrender left, Blender right, one
pair per cell; the sheet is not tracked by git).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

import numpy as np  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

OUT = Path(__file__).parent / "results" / "blender_parity.json"
THRESHOLDS = {"landmarks_px": 0.5, "face_iou": 0.98, "occlusion_iou": 0.95}


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = (a | b).sum()
    return 1.0 if union == 0 else float((a & b).sum() / union)


def compare(ref: dict, out: dict) -> dict:
    both = (ref["depth"] > 0) & (out["depth"] > 0)
    occluded = bool(ref["occlusion"].any() or out["occlusion"].any())
    return {
        "landmarks_max_px": float(np.abs(ref["landmarks_2d"] - out["landmarks_2d"]).max()),
        "face_iou": iou(ref["face_mask"], out["face_mask"]),
        "occlusion_iou": iou(ref["occlusion"], out["occlusion"]) if occluded else None,
        "occluded_pixels": int(ref["occlusion"].sum()),
        "seg_agreement": float((ref["seg"] == out["seg"]).mean()),
        "au_regions_agreement": float((ref["au_regions"] == out["au_regions"]).mean()),
        "visibility_agreement": float((ref["landmark_visible"] == out["landmark_visible"]).mean()),
        "depth_median_abs_cm": float(np.median(np.abs(ref["depth"][both] - out["depth"][both]))) if both.any() else 0.0,
    }


def sheet(pairs: list[tuple[np.ndarray, np.ndarray, str]], cols: int, path: Path) -> None:
    h, w = pairs[0][0].shape[:2]
    pad, text = 4, 12
    rows = (len(pairs) + cols - 1) // cols
    canvas = Image.new("RGB", (cols * (2 * w + pad) + pad, rows * (h + text + pad) + pad), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for k, (a, b, caption) in enumerate(pairs):
        x = pad + (k % cols) * (2 * w + pad)
        y = pad + (k // cols) * (h + text + pad)
        canvas.paste(Image.fromarray(a), (x, y + text))
        canvas.paste(Image.fromarray(b), (x + w, y + text))
        draw.text((x + 2, y), caption, fill=(0, 0, 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=50, help="number of specs")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--samples", type=int, default=32, help="Cycles samples (the labels do not depend on it)")
    p.add_argument("--subsurface", default="random_walk", choices=["random_walk", "burley", "none"])
    p.add_argument("--no-denoise", action="store_true")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="config override for the specs, e.g. --set occluders.probability=0.5")
    p.add_argument("--sheet", type=Path, default=Path("/tmp/ausynth_blender_sheet.png"))
    p.add_argument("--sheet-n", type=int, default=24, help="specs shown on the sheet")
    p.add_argument("--out", type=Path, default=OUT)
    a = p.parse_args()

    from aukit.config import load
    from synth.config import SynthConfig
    from synth.render import make_renderer
    from synth.rig import HeadRig
    from synth.sampling import sample_scene
    from synth.scene import IdentityCache, build_scene

    cfg = load(SynthConfig, overrides=[f"output.size={a.size}", *a.overrides])
    rig = HeadRig(subdivisions=cfg.output.subdivisions, eyeball_fit=cfg.identity.eyeball_fit,
                  wrinkles=cfg.identity.wrinkles, wrinkle_aus=cfg.identity.wrinkle_aus,
                  au_gain=cfg.identity.au_gain)
    cache = IdentityCache(rig)
    ref_r = make_renderer("pyrender", a.size, antialias=cfg.output.antialias)
    bl_r = make_renderer("blender", a.size, samples=a.samples, denoise=not a.no_denoise,
                         subsurface=a.subsurface, identity_cache=cache)
    rows, pairs, t_bl, t_ref = [], [], 0.0, 0.0
    for i in range(a.n):
        geom = build_scene(sample_scene(cfg, a.seed, i), rig, cache)
        t = time.perf_counter()
        ref = ref_r.render(geom)
        t_ref += time.perf_counter() - t
        t = time.perf_counter()
        out = bl_r.render(geom)
        t_bl += time.perf_counter() - t
        row = {"index": i, "occluders": [o["kind"] for o in geom.spec.occluders], **compare(ref, out)}
        rows.append(row)
        occ = "" if row["occlusion_iou"] is None else f"  occ IoU {row['occlusion_iou']:.4f}"
        print(f"{i:3d}  lm {row['landmarks_max_px']:.3f}px  face IoU {row['face_iou']:.4f}{occ}", flush=True)
        if i < a.sheet_n:
            pairs.append((ref["rgb"], out["rgb"], f"{i} {','.join(row['occluders'])}"))
    bl_r.close()
    ref_r.close()

    occ = [r["occlusion_iou"] for r in rows if r["occlusion_iou"] is not None]
    summary = {
        "n": a.n, "size": a.size, "seed": a.seed, "samples": a.samples, "overrides": a.overrides,
        "landmarks_max_px": max(r["landmarks_max_px"] for r in rows),
        "face_iou_min": min(r["face_iou"] for r in rows),
        "face_iou_mean": float(np.mean([r["face_iou"] for r in rows])),
        "n_occluded": len(occ),
        "occlusion_iou_min": min(occ) if occ else None,
        "occlusion_iou_mean": float(np.mean(occ)) if occ else None,
        "seg_agreement_min": min(r["seg_agreement"] for r in rows),
        "au_regions_agreement_min": min(r["au_regions_agreement"] for r in rows),
        "visibility_agreement_min": min(r["visibility_agreement"] for r in rows),
        "depth_median_abs_cm_max": max(r["depth_median_abs_cm"] for r in rows),
        "seconds_per_image": {"blender": round(t_bl / a.n, 3), "pyrender": round(t_ref / a.n, 3)},
    }
    summary["pass"] = bool(summary["landmarks_max_px"] <= THRESHOLDS["landmarks_px"]
                           and summary["face_iou_min"] >= THRESHOLDS["face_iou"]
                           and (not occ or summary["occlusion_iou_min"] >= THRESHOLDS["occlusion_iou"]))
    print(json.dumps(summary, indent=2))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps({"summary": summary, "thresholds": THRESHOLDS, "specs": rows}, indent=2) + "\n")
    sheet(pairs, cols=4, path=a.sheet)
    print(f"wrote {a.out} and {a.sheet} (pyrender left, Blender right)")


if __name__ == "__main__":
    main()
