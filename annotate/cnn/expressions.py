"""EMFACS expression variants as an AU table for ``ausynth render`` (``expression.dataset``).

The renderer's ``prototype`` strategy draws one canonical AU set per emotion
(``aukit.aus.EMOTION_PROTOTYPES``), and its ``sparse`` strategy random sets of 1-4 AUs.
Neither shows the combinations the EMFACS tables list as *variants* of an emotion, e.g.
anger with a raised upper lip and parted lips (4+5+7+10+25), which is how most photos
labelled angry look; a network that only saw closed-mouth anger learns that an open mouth
means brows up (surprise, fear) and misses AU04 on shouting faces. This module writes those
variants, with random intensities, as a GANimation AU table (``aus.csv``) that
``expression.weights.dataset`` samples from (plus the renderer's ``dataset_jitter``).

Sources: Ekman & Friesen, EMFACS-7 prediction tables; Friesen & Ekman (1983); the variants
are the listed AU combinations (our rig's 17 GANimation AUs; AU11/AU16/AU22/AU24 variants
are approximated by the nearest listed combination without them). No data is used.

    python -m annotate.cnn.expressions --out runs/emfacs_variants --rows 4000
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from aukit import atomic
from aukit.aus import FACS_MAX, GANIMATION_AUS

#: emotion -> list of AU combinations (FACS numbers) listed for it.
VARIANTS: dict[str, list[tuple[int, ...]]] = {
    "happiness": [(6, 12), (6, 12, 25), (6, 12, 25, 26), (12,), (12, 25), (6, 7, 12, 25)],
    "sadness": [(1, 4, 15), (1, 4, 15, 17), (1, 4, 15, 25), (6, 15), (1, 15, 17), (4, 15, 17), (1, 4, 17),
                (1, 4, 15, 45)],
    "surprise": [(1, 2, 5, 26), (1, 2, 5, 25, 26), (1, 2, 26), (1, 2, 5), (5, 26), (1, 2, 25, 26), (1, 2, 5, 25)],
    "fear": [(1, 2, 4, 5, 20, 25, 26), (1, 2, 4, 5, 25, 26), (1, 2, 4, 5), (1, 2, 5, 20, 25), (5, 20, 25, 26),
             (4, 5, 20, 26), (1, 4, 5, 20, 25)],
    "anger": [(4, 5, 7, 10, 23, 25), (4, 5, 7, 10, 25, 26), (4, 5, 7, 23, 25, 26), (4, 5, 7, 17, 23), (4, 5, 7, 23),
              (4, 7, 10, 25), (4, 5, 10, 25, 26), (4, 7, 23), (4, 5, 7), (4, 7, 10, 17, 23)],
    "disgust": [(9,), (9, 15), (9, 17), (10,), (10, 17), (9, 10, 25), (10, 15, 25), (9, 15, 17), (4, 9, 10, 25, 26)],
    "contempt": [(14,), (12, 14)],
    "talking": [(25,), (25, 26), (1, 2, 25), (17, 23), (25, 26, 45)],
}


def variant_rows(rows: int, seed: int = 0) -> np.ndarray:
    """(rows, 17) FACS intensities: a random variant of a random emotion per row, each AU
    at ``scale x base`` (scale ~ U(0.35, 1.2) per row, base ~ U(2.5, 4.5) per AU)."""
    rng = np.random.default_rng(seed)
    names = sorted(VARIANTS)
    table = np.zeros((rows, len(GANIMATION_AUS)))
    for r in range(rows):
        combo = VARIANTS[names[int(rng.integers(len(names)))]]
        aus = combo[int(rng.integers(len(combo)))]
        scale = rng.uniform(0.35, 1.2)
        for number in aus:
            table[r, GANIMATION_AUS.index(f"AU{number:02d}")] = scale * rng.uniform(2.5, 4.5)
    return np.clip(table, 0.0, FACS_MAX)


def write_table(out: Path, rows: int, seed: int = 0) -> Path:
    """Write ``out/aus.csv`` (``id,AU01,...,AU45``; readable by ``aukit.dataset.read_au_table``)."""
    table = variant_rows(rows, seed)
    lines = ["id," + ",".join(GANIMATION_AUS)]
    lines += [f"v{r:05d}," + ",".join(f"{v:.3f}" for v in row) for r, row in enumerate(table)]
    out.mkdir(parents=True, exist_ok=True)
    atomic.write_text(out / "aus.csv", "\n".join(lines) + "\n")
    return out / "aus.csv"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("runs/emfacs_variants"))
    p.add_argument("--rows", type=int, default=4000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    print(f"wrote {write_table(args.out, args.rows, args.seed)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
