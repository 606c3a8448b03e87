"""Per-AU ground-truth edit regions for a rendered *neutral* test set (attention quality).

The renderer marks a pixel with AU k's bit when the sample's own AUs move its surface
(``au_regions``), so a neutral face carries no regions at all. To know where an edit to AU
k *should* act on a neutral test face, this module renders the same scenes again with AU k
alone at FACS 5 ("companions") and reads their ``au_regions``:

1. The test set must be rendered with the ``dataset`` expression strategy from a one-row,
   all-zero AU table (:func:`write_au_table`; ``ausynth render --set
   'expression.weights={dataset: 1}' --set expression.dataset=ZERO --set
   expression.dataset_jitter=0 --set expression.blink_probability=0``). Then every
   companion, rendered with the same seed and config but a one-row table holding AU k = 5,
   consumes the scene RNG identically: same identity, pose, camera, lights, background;
   only the AUs differ. :func:`build` checks this spec by spec and refuses otherwise.
2. ``<test set>/target_regions/<id>.npz`` gets ``regions``: uint32 (H, W) with bit j set
   where AU ``GANIMATION_AUS[j]`` alone at 5 moves the visible surface (> 0.5 mm), in the
   image of the face showing that AU (the region an edit to it changes), and ``bit_order``.

Usage (the experiment driver runs it; layering: synth only through ``ausynth render``)::

    python -m eval.regions DIR [--workers 1]
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

from aukit import atomic
from aukit.aus import GANIMATION_AUS
from aukit.dataset import MASKS, au_table_bytes, iter_labels

REGIONS_DIR = "target_regions"
COMPANIONS = ".companions"


def write_au_table(folder: Path, aus17: np.ndarray) -> Path:
    """A one-row AU table (``aus.csv``) usable as ``expression.dataset``."""
    csv_bytes, _ = au_table_bytes({"row0": np.asarray(aus17, np.float64)})
    atomic.write_bytes(Path(folder) / "aus.csv", csv_bytes)
    return Path(folder)


def check_renderable(job: dict) -> None:
    """Refuse test sets whose scenes a companion could not reproduce."""
    expr = job["config"]["expression"]
    weights = {k: v for k, v in expr["weights"].items() if v}
    if set(weights) != {"dataset"} or expr.get("blink_probability", 0) != 0 or not expr.get("dataset"):
        raise ValueError("companion regions need a test set rendered with only the 'dataset' expression "
                         "strategy from a one-row all-zero table and blink_probability 0 (see eval/regions.py)")
    table = Path(expr["dataset"]) / "aus.csv"
    if not table.is_file():
        raise ValueError(f"the test set's expression.dataset table {table} is gone")


def render_companion(root: Path, job: dict, au: str, workers: int) -> Path:
    """``ausynth render`` of every test scene with ``au`` alone at FACS 5 (resumable)."""
    out = root / COMPANIONS / au
    table = write_au_table(root / COMPANIONS / "tables" / au,
                           np.eye(len(GANIMATION_AUS))[GANIMATION_AUS.index(au)] * 5.0)
    cfg = json.loads(json.dumps(job["config"]))
    cfg["expression"]["dataset"] = str(table.resolve())
    cfg_path = root / COMPANIONS / "tables" / f"{au}.yaml"
    atomic.write_text(cfg_path, yaml.safe_dump(cfg, sort_keys=False))
    cmd = [sys.executable, "-m", "ausynth.cli", "render", "--n", str(job["n_requested"]), "--seed",
           str(job["seed"]), "--config", str(cfg_path), "--out", str(out), "--workers", str(workers)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"companion render for {au} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return out


def _scene_key(label: dict) -> str:
    spec = {k: v for k, v in label["spec"].items() if k not in ("aus", "expression")}
    return json.dumps(spec, sort_keys=True)


def build(root: str | Path, workers: int = 1) -> int:
    """Render the companions of test set ``root`` and write ``target_regions/``; returns the
    number of samples written. Idempotent: finished companions are not re-rendered."""
    root = Path(root)
    job = json.loads((root / "job.json").read_text())
    check_renderable(job)
    labels = {lab["id"]: lab for lab in iter_labels(root)}
    bits: dict[str, np.ndarray] = {}
    for j, au in enumerate(GANIMATION_AUS):
        comp = render_companion(root, job, au, workers)
        for lab in iter_labels(comp):
            base = labels.get(lab["id"])
            if base is None or _scene_key(base) != _scene_key(lab):
                raise ValueError(f"companion {au}/{lab['id']} is not the same scene as the test sample; "
                                 "was the test set rendered as eval/regions.py requires?")
            with np.load(comp / MASKS / f"{lab['id']}.npz") as z:
                moved = z["au_regions"] != 0
            acc = bits.setdefault(lab["id"], np.zeros(moved.shape, np.uint32))
            acc[moved] |= np.uint32(1 << j)
    for sid, regions in bits.items():
        buf = io.BytesIO()
        np.savez_compressed(buf, regions=regions, bit_order=np.array(GANIMATION_AUS))
        atomic.write_bytes(root / REGIONS_DIR / f"{sid}.npz", buf.getvalue())
    return len(bits)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m eval.regions", description=__doc__.split("\n\n")[0])
    p.add_argument("test_set", type=Path, help="rendered neutral test set folder")
    p.add_argument("--workers", type=int, default=1)
    args = p.parse_args(argv)
    try:
        n = build(args.test_set, args.workers)
    except (ValueError, RuntimeError, FileNotFoundError) as exc:
        print(f"eval.regions: {exc}", file=sys.stderr)
        return 2
    print(f"eval.regions: wrote {n} region maps to {args.test_set / REGIONS_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
