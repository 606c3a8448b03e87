"""``ausynth edit``: apply target AUs to a face photo with a trained GANimation checkpoint.

    ausynth edit --checkpoint runs/x --image photo.jpg --aus AU12=3,AU06=2 --out smile.png
    ausynth edit --checkpoint runs/x --image photo.jpg --emotion happiness
    ausynth edit --checkpoint runs/x --image photo.jpg --sweep AU12:0..5 --out smile.gif

The face is detected (:mod:`aukit.faces`) and cropped with the rule that prepared the
training data (:func:`aukit.crop.crop_box`), edited at the network's size, and pasted
back: only the generator's change ``(1 - A) * (C - x)`` is upsampled and added to the
photo, faded out towards the crop border, so untouched regions keep full resolution.
Target AUs are absolute FACS intensities (0-5); AUs not given are 0 (neutral).

Writes ``OUT`` (the edited photo), ``OUT_attention.png`` (the attention mask in the
photo's frame: white = pixel kept, black = replaced) and ``OUT_crop.png`` (input crop |
attention | colour | output). With ``--sweep`` ``OUT`` is an animated GIF.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from aukit.aus import (EMOTION_PROTOTYPES, GANIMATION_AUS, RIG_AUS, au_vector,
                       parse_au_assignments, rig_to_ganimation, to_unit)
from aukit.crop import CropBox, crop_box, crop_image

FEATHER = 0.06       # fraction of the crop side over which the edit fades out at its border
GIF_MAX_SIDE = 512   # GIF frames are downscaled to this longer side (file size)


class EditError(ValueError):
    """Bad edit input: no face, unknown AU/emotion, malformed sweep."""


def target_aus(aus: str | None, emotion: str | None) -> np.ndarray:
    """The 17 GANimation AUs (FACS 0-5) from ``--emotion`` and/or ``--aus`` (which wins)."""
    values: dict[str, float] = {}
    if emotion:
        if emotion not in EMOTION_PROTOTYPES and emotion != "neutral":
            raise EditError(f"unknown emotion {emotion!r}; choose from "
                            f"{['neutral', *EMOTION_PROTOTYPES]}")
        values.update(EMOTION_PROTOTYPES.get(emotion, {}))
    if aus:
        try:
            values.update(parse_au_assignments(aus))
        except ValueError as exc:
            raise EditError(str(exc)) from exc
    ignored = sorted(a for a, v in values.items() if a not in GANIMATION_AUS and a != "AU43" and v)
    if ignored:
        print(f"ausynth edit: the GANimation model has no {', '.join(ignored)}; ignored",
              file=sys.stderr)
    # rig_to_ganimation also folds AU43 (eyes closed) into AU45, as the renderer labels it.
    return rig_to_ganimation(au_vector(values, RIG_AUS)).astype(np.float64)


def parse_sweep(text: str) -> tuple[int, float, float]:
    """``"AU12:0..5"`` -> (column in GANIMATION_AUS, start, end), FACS 0-5."""
    name, sep, rng = text.partition(":")
    lo, sep2, hi = rng.partition("..")
    name = name.strip().upper()
    try:
        start, end = float(lo), float(hi)
    except ValueError:
        sep = ""
    if not sep or not sep2:
        raise EditError(f"--sweep {text!r}: expected AUxx:START..END, e.g. AU12:0..5")
    if name not in GANIMATION_AUS:
        raise EditError(f"--sweep: {name} is not one of the model's AUs {list(GANIMATION_AUS)}")
    if not (0 <= start <= 5 and 0 <= end <= 5):
        raise EditError("--sweep: intensities must be in [0, 5]")
    return GANIMATION_AUS.index(name), start, end


def detect_face(image: np.ndarray, index: int = 0) -> np.ndarray:
    """Landmarks ``(478, 2+)`` of the ``index``-th largest face (pixels, x right, y down)."""
    try:
        from aukit.faces import FaceAnalyzer
    except ImportError as exc:  # the detector module ships separately
        raise EditError(f"face detection is not available ({exc})") from exc
    found = FaceAnalyzer().detect(image)
    faces = [f for f in found if not getattr(f, "tiny", False)]  # too small to edit
    if len(faces) <= index:
        raise EditError(f"found {len(faces)} usable face(s) ({len(found) - len(faces)} too "
                        f"small); cannot use face #{index}")
    return np.asarray(faces[index].landmarks)


@torch.no_grad()
def edit_crop(gen: torch.nn.Module, crop: np.ndarray, aus_facs: np.ndarray,
              device: torch.device) -> dict[str, np.ndarray]:
    """Run the generator on a ``uint8 (S, S, 3)`` crop; float32 maps in crop space.

    Returns ``delta`` (S, S, 3, in 0-255 units), ``attention`` (S, S, in [0, 1]),
    ``color`` and ``output`` (S, S, 3, uint8).
    """
    x = torch.from_numpy(np.array(crop)).permute(2, 0, 1)[None].float().to(device) / 127.5 - 1
    aus = torch.from_numpy(to_unit(aus_facs)).float()[None].to(device)
    out = gen(x, aus)
    to8 = lambda t: ((t[0].permute(1, 2, 0).clamp(-1, 1) + 1) * 127.5).round().byte().cpu().numpy()
    return {"delta": ((out.image - x)[0].permute(1, 2, 0) * 127.5).float().cpu().numpy(),
            "attention": out.attention[0, 0].float().cpu().numpy(),
            "color": to8(out.color), "output": to8(out.image)}


def _feather(size: int) -> np.ndarray:
    d = np.minimum(np.arange(size) + 0.5, size - np.arange(size) - 0.5) / (FEATHER * size)
    ramp = np.clip(d, 0, 1)
    return np.minimum(ramp[:, None], ramp[None, :]).astype(np.float32)


def paste(image: np.ndarray, box: CropBox, crop_maps: np.ndarray, fill: float) -> tuple[np.ndarray, slice, slice]:
    """Resample ``(S, S, C)`` crop-space maps into the photo frame over the box's pixels.

    Returns the resampled ``(h, w, C)`` block and the row/column slices it covers;
    photo pixels outside the crop get ``fill``.
    """
    h, w = image.shape[:2]
    x0, x1 = max(0, int(np.floor(box.x0))), min(w, int(np.ceil(box.x0 + box.side)))
    y0, y1 = max(0, int(np.floor(box.y0))), min(h, int(np.ceil(box.y0 + box.side)))
    if x1 <= x0 or y1 <= y0:
        raise EditError("the face crop lies outside the image")
    # grid_sample coordinates: -1/+1 are the crop's outer pixel edges (align_corners=False).
    gx = ((np.arange(x0, x1) + 0.5 - box.x0) / box.side) * 2 - 1
    gy = ((np.arange(y0, y1) + 0.5 - box.y0) / box.side) * 2 - 1
    grid = torch.from_numpy(np.stack(np.meshgrid(gx, gy), -1)).float()[None]
    src = torch.from_numpy(np.ascontiguousarray(crop_maps)).float().permute(2, 0, 1)[None] - fill
    out = F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + fill
    return out[0].permute(1, 2, 0).numpy(), slice(y0, y1), slice(x0, x1)


def apply_edit(image: np.ndarray, box: CropBox, maps: dict[str, np.ndarray]
               ) -> tuple[np.ndarray, np.ndarray]:
    """The edited photo (uint8, same size) and its attention mask (uint8, 255 = kept)."""
    size = maps["attention"].shape[0]
    delta = maps["delta"] * _feather(size)[..., None]
    block, rows, cols = paste(image, box, delta, 0.0)
    edited = image.astype(np.float32)
    edited[rows, cols] += block
    att_block, rows, cols = paste(image, box, maps["attention"][..., None], 1.0)
    mask = np.full(image.shape[:2], 255, np.uint8)
    mask[rows, cols] = np.clip(att_block[..., 0] * 255 + 0.5, 0, 255).astype(np.uint8)
    return np.clip(edited + 0.5, 0, 255).astype(np.uint8), mask


def build_parser(prog: str = "ausynth edit") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=Path, required=True, help="checkpoint file or run dir")
    p.add_argument("--image", type=Path, required=True, help="photo with a face")
    p.add_argument("--aus", help="target AUs, FACS 0-5, e.g. AU12=3,AU06=2")
    p.add_argument("--emotion", help=f"prototype expression: {', '.join(EMOTION_PROTOTYPES)} "
                   "(combined with --aus, which wins)")
    p.add_argument("--sweep", metavar="AUxx:A..B", help="animate one AU from A to B (GIF)")
    p.add_argument("--frames", type=int, default=12, help="frames of a --sweep (default 12)")
    p.add_argument("--fps", type=float, default=10.0, help="GIF frame rate")
    p.add_argument("--face", type=int, default=0, help="which face, largest first (default 0)")
    p.add_argument("--out", type=Path, help="output file (default: <image>_edit.png/.gif)")
    p.add_argument("--device", default="auto")
    return p


def main(args: argparse.Namespace) -> int:
    from aukit.imageio import ImageError, load_image
    from train.checkpoint import CheckpointError, load_generator
    from train.ddp import resolve_device
    try:
        if not (args.aus or args.emotion or args.sweep):
            raise EditError("give target AUs: --aus AU12=3,..., --emotion NAME or --sweep")
        if args.frames < 2:
            raise EditError("--frames must be >= 2")
        base = target_aus(args.aus, args.emotion)
        sweep = parse_sweep(args.sweep) if args.sweep else None
        device = resolve_device(args.device)
        gen, mcfg, step = load_generator(args.checkpoint, device)
        image = load_image(args.image)
        box = crop_box(detect_face(image, args.face)[:, :2])
        crop = crop_image(image, box, mcfg.image_size)
    except (EditError, CheckpointError, ImageError, ValueError) as exc:
        print(f"ausynth edit: {exc}", file=sys.stderr)
        return 2
    out = args.out or Path(f"{args.image.stem}_edit{'.gif' if sweep else '.png'}")
    out.parent.mkdir(parents=True, exist_ok=True)
    if sweep:
        col, lo, hi = sweep
        frames = []
        for v in np.linspace(lo, hi, args.frames):
            aus = base.copy()
            aus[col] = v
            frames.append(_gif_frame(apply_edit(image, box, edit_crop(gen, crop, aus, device))[0]))
        out = out.with_suffix(".gif")
        frames[0].save(out, save_all=True, append_images=frames[1:], loop=0,
                       duration=int(1000 / args.fps))
        print(f"ausynth edit: wrote {out} ({len(frames)} frames, step {step} checkpoint)")
        return 0
    maps = edit_crop(gen, crop, base, device)
    edited, mask = apply_edit(image, box, maps)
    Image.fromarray(edited).save(out)
    stem = out.with_suffix("")
    Image.fromarray(mask).save(f"{stem}_attention.png")
    att = np.repeat((maps["attention"][..., None] * 255 + 0.5).astype(np.uint8), 3, -1)
    Image.fromarray(np.concatenate([crop, att, maps["color"], maps["output"]], 1)).save(f"{stem}_crop.png")
    print(f"ausynth edit: wrote {out}, {stem}_attention.png, {stem}_crop.png")
    return 0


def _gif_frame(image: np.ndarray) -> Image.Image:
    pil = Image.fromarray(image)
    scale = GIF_MAX_SIDE / max(pil.size)
    if scale < 1:
        pil = pil.resize((round(pil.width * scale), round(pil.height * scale)), Image.Resampling.LANCZOS)
    return pil
