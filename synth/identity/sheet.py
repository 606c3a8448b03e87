"""Contact sheets of photo identities: each row one identity, re-posed and re-expressed."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from aukit.aus import EMOTION_PROTOTYPES, RIG_AUS
from aukit.schema import SceneSpec

#: (title, AUs, pose) per column; pose None = the source pose, "lo"/"hi" = the yaw limits
COLUMNS: tuple[tuple[str, dict[str, float], object], ...] = (
    ("neutral", {}, None),
    ("frontal", {}, {"yaw": 0.0, "pitch": 0.0, "roll": 0.0}),
    ("yaw-", {}, "lo"),
    ("yaw+", {}, "hi"),
    ("happy", EMOTION_PROTOTYPES["happiness"], None),
    ("surprise", EMOTION_PROTOTYPES["surprise"], None),
    ("sad", EMOTION_PROTOTYPES["sadness"], None),
    ("anger", EMOTION_PROTOTYPES["anger"], {"yaw": 10.0, "pitch": 5.0, "roll": 0.0}),
    ("blink", {"AU45": 5.0}, None),
)


def photo_spec(path: str, aus: dict[str, float], pose: dict[str, float], size: int,
               distance_cm: float = 100.0, gaze: tuple[float, float] = (0.0, 0.0)) -> SceneSpec:
    """A scene spec rendering the photo identity ``path`` with exactly ``aus`` at ``pose``."""
    return SceneSpec(seed=0, index=0, image_size=size, split="train",
                     identity={"kind": "photo", "file": str(path)},
                     aus={a: float(aus.get(a, 0.0)) for a in RIG_AUS}, expression={"strategy": "fixed"},
                     pose={k: float(v) for k, v in pose.items()}, gaze={"yaw": gaze[0], "pitch": gaze[1]},
                     camera={"distance_cm": distance_cm, "jitter": [0.0, 0.0, 0.0]}, lights=(), ambient=0.0,
                     background={"kind": "photo"})


def identity_sheet(files: Sequence[str], out: Path, size: int = 128, renderer=None) -> np.ndarray:
    """Write (and return) the sheet of ``files``; samples the guard rejects are drawn red."""
    from synth.config import SynthConfig
    from synth.identity.photo import read_meta
    from synth.identity.photo_pool import allowed_pose
    from synth.render import make_renderer
    from synth.rig import HeadRig
    from synth.scene import IdentityCache, build_scene

    rig = HeadRig()
    cache = IdentityCache(rig)
    own = renderer is None
    r = renderer or make_renderer("pyrender", size, antialias="ssaa2")
    cfg = SynthConfig()
    rows = []
    try:
        for f in files:
            meta = read_meta(f)
            src = meta["fit"]["pose"]
            yaw = allowed_pose(cfg, meta)["yaw"]
            cells = [_source_cell(f, size)]
            for _, aus, pose in COLUMNS:
                if pose is None:
                    p = dict(src)
                elif isinstance(pose, str):
                    p = {**src, "yaw": yaw[0] if pose == "lo" else yaw[1]}
                else:
                    p = dict(pose)
                try:
                    cells.append(r.render(build_scene(photo_spec(f, aus, p, size), rig, cache))["rgb"])
                except Exception:  # a refused sample (holes) or a failure: red cell
                    cell = np.zeros((size, size, 3), np.uint8)
                    cell[..., 0] = 160
                    cells.append(cell)
            rows.append(np.concatenate(cells, 1))
    finally:
        if own:
            r.close()
    sheet = np.concatenate(rows, 0) if rows else np.zeros((size, size, 3), np.uint8)
    header = Image.new("RGB", (sheet.shape[1], 14), "black")
    draw = ImageDraw.Draw(header)
    for k, title in enumerate(["photo"] + [c[0] for c in COLUMNS]):
        draw.text((k * size + 3, 1), title, fill="white")
    img = np.concatenate([np.asarray(header), sheet], 0)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(out)
    return img


def _source_cell(path: str, size: int) -> np.ndarray:
    """The photo's crop-rule face crop (what a sample at the source pose frames)."""
    from aukit.crop import crop_box, crop_image
    from synth.identity import photo

    pid = photo.load(path)
    box = crop_box(pid.photo_xy)
    return crop_image(pid.photo, box, size)

