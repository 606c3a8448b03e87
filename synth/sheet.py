"""``ausynth sheet``: a contact sheet PNG of a dataset, optionally with label overlays.

Works on any GANimation-format folder; overlays need our per-sample arrays
(``masks/<id>.npz``): ``landmarks`` (68 points, visible green / hidden red), ``regions``
(pixels moved by the active AUs, tinted), ``seg`` (segmentation classes) and ``occlusion``
(occluders yellow, the face they hide red).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from aukit.dataset import DatasetError, read_dataset
from aukit.landmarks import LM68

OVERLAYS = ["none", "landmarks", "regions", "seg", "occlusion"]
SEG_COLORS = np.array([[0, 0, 0], [255, 200, 150], [80, 160, 255], [220, 40, 60], [140, 100, 60],
                       [200, 160, 120], [60, 220, 90], [220, 220, 40]], np.uint8)


def _caption(meta: dict | None, aus: np.ndarray) -> str:
    if meta and "spec" in meta:
        spec = meta["spec"]
        expr = spec["expression"]
        what = expr.get("emotion") or expr["strategy"]
        top = sorted(((v, k) for k, v in spec["aus"].items() if v >= 1.0), reverse=True)[:2]
        pose = spec["pose"]
        return f"{what} {' '.join(f'{k[2:]}:{v:.0f}' for v, k in top)}\ny{pose['yaw']:.0f} p{pose['pitch']:.0f}"
    return " ".join(f"{i}" for i in np.flatnonzero(aus >= 1.0)[:4])


def _overlay(img: Image.Image, arrays: dict, mode: str, scale: float) -> Image.Image:
    if mode == "seg" and "seg" in arrays:
        seg = SEG_COLORS[np.clip(arrays["seg"], 0, len(SEG_COLORS) - 1)]
        img = Image.blend(img, Image.fromarray(seg).resize(img.size, Image.Resampling.NEAREST), 0.45)
    elif mode == "occlusion" and "occlusion" in arrays:
        # occluders in yellow, the face they hide in red, everything else unchanged
        tint = np.zeros(arrays["occlusion"].shape + (3,), np.uint8)
        tint[arrays["occlusion"]] = (255, 220, 0)
        tint[arrays["face_occluded"]] = (255, 30, 30)
        mask = Image.fromarray((arrays["occlusion"] * 255).astype(np.uint8)).resize(img.size, Image.Resampling.NEAREST)
        t = Image.fromarray(tint).resize(img.size, Image.Resampling.NEAREST)
        img = Image.composite(Image.blend(img, t, 0.55), img, mask)
    elif mode == "regions" and "au_regions" in arrays:
        mask = arrays["au_regions"] > 0
        tint = np.zeros(mask.shape + (3,), np.uint8)
        tint[mask] = (255, 0, 200)
        t = Image.fromarray(tint).resize(img.size, Image.Resampling.NEAREST)
        img = Image.composite(Image.blend(img, t, 0.5),
                              img, Image.fromarray((mask * 255).astype(np.uint8)).resize(img.size))
    if mode in ("landmarks", "seg", "regions", "occlusion") and "landmarks_2d" in arrays:
        d = ImageDraw.Draw(img)
        lm, vis = arrays["landmarks_2d"][list(LM68)] * scale, arrays["landmark_visible"][list(LM68)]
        for (x, y), v in zip(lm, vis):
            d.ellipse([x - 1.2, y - 1.2, x + 1.2, y + 1.2], fill=(40, 255, 40) if v else (255, 40, 40))
    return img


def write_sheet(root: Path, out: Path, n: int = 48, cols: int = 8, tile: int = 160,
                overlay: str = "none", start: int = 0) -> Path:
    """Write a ``cols``-wide grid of the first ``n`` samples (train and test) to ``out``."""
    samples = read_dataset(root)
    samples = sorted(samples, key=lambda s: s.id)[start:start + n]
    if not samples:
        raise DatasetError(f"{root} has no samples to show")
    rows = (len(samples) + cols - 1) // cols
    band = 28  # two caption lines of PIL's default font
    sheet = Image.new("RGB", (cols * tile, rows * (tile + band)), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    for k, s in enumerate(samples):
        img = Image.open(s.image).convert("RGB")
        scale = tile / img.width
        img = img.resize((tile, tile), Image.Resampling.BICUBIC)
        meta_path = root / "meta" / f"{s.id}.json"
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else None
        if overlay != "none" and meta and meta.get("arrays"):
            with np.load(root / meta["arrays"]) as arrays:
                img = _overlay(img, dict(arrays), overlay, scale)
        x, y = (k % cols) * tile, (k // cols) * (tile + band)
        sheet.paste(img, (x, y))
        draw.text((x + 2, y + tile + 1), _caption(meta, s.aus), fill=(230, 230, 230))
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    return out


def build_parser(prog: str = "ausynth sheet") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset", help="dataset directory (GANimation format)")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument("--n", type=int, default=48, help="number of samples (default 48)")
    p.add_argument("--start", type=int, default=0, help="skip this many samples first")
    p.add_argument("--cols", type=int, default=8, help="tiles per row (default 8)")
    p.add_argument("--tile", type=int, default=160, help="tile size in pixels (default 160)")
    p.add_argument("--overlay", choices=OVERLAYS, default="none",
                   help="draw labels over the images (needs our masks/<id>.npz): landmarks (visible "
                        "green, hidden red), regions (pixels moved by active AUs), seg (classes), "
                        "occlusion (occluders yellow, hidden face red)")
    return p


def main(args: argparse.Namespace) -> int:
    try:
        out = write_sheet(Path(args.dataset), Path(args.out), args.n, args.cols, args.tile,
                          args.overlay, args.start)
    except (DatasetError, OSError) as exc:
        print(f"ausynth sheet: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


