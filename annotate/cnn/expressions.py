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

``--kind open-mouth`` writes another table: 1-6 AUs drawn independently (no emotion
pattern, like the renderer's ``sparse`` strategy), with the lips parted (AU25, often with
AU26) in half the rows, independently of the rest. Expressive photos mostly show an open
mouth, and in sparse renders a given AU meets an open mouth in only ~30% of its samples.

    python -m annotate.cnn.expressions --kind open-mouth --out runs/open_mouth --rows 4000

``--kind distress`` writes sadness as photos of sad people show it: the listed sadness
variants plus crying (grief brows 1+4 with the eyes squeezed, 6+7, and the mouth stretched
open, 20+25+26; :data:`DISTRESS`). Most faces labelled sad in the real set are crying, with
the mouth open and the eyes narrowed, which the sparse and EMFACS renders rarely pair with
AU01+AU04 or AU15.

    python -m annotate.cnn.expressions --kind distress --out runs/distress --rows 4000

``--kind grief`` separates the two halves of the crying face: the grief brows (AU01+AU04,
:data:`GRIEF_BROWS`) in every row, and the lower face drawn as in ``open-mouth``
(independent lower-face AUs, lips parted in half the rows), with no cheek raise (AU06) and
no emotion pattern below the eyes. In the sparse renders AU04 meets AU01 in a few percent of
its samples, so a network learns AU04 as "brows lowered" and misses it in grief brows, where
the inner brows rise while they are drawn together.

    python -m annotate.cnn.expressions --kind grief --out runs/grief --rows 4000

``--kind brows`` is the factorial version: AU01, AU02, AU04 (each in half the rows), AU05,
AU07 and AU45 switched on independently of each other (:data:`BROW_RATES`), over the same
independent lower face, so AU04 appears with and without AU01 equally often and neither can
be read off the other.

    python -m annotate.cnn.expressions --kind brows --out runs/brows --rows 4000

``--kind upper`` adds the cheek raiser (AU06, :data:`UPPER_RATES`) to the factorial brows: in
the other renders AU06 comes mostly with the smile or the squint, and the CNN's AU06 reads
real happy faces at chance.

    python -m annotate.cnn.expressions --kind upper --seed 35 --out runs/upper35 --rows 4000

``--kind jaw`` draws surprise's four AUs factorially: the brows of ``brows``, the lids widened
(AU05) in half the rows, and the jaw dropped (AU26) in half the rows, independently; in the
``brows`` table AU26 is on in 30% of the rows and AU05 in 25%.

    python -m annotate.cnn.expressions --kind jaw --seed 36 --out runs/jaw36 --rows 4000
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


#: Sadness and crying ("distress") combinations: the listed sadness variants, and crying
#: faces (grief brows with squeezed eyes and a stretched, open mouth; Darwin's "grief
#: muscles", the cry-face AUs of Messinger & Oster's infant and adult crying studies).
DISTRESS: list[tuple[int, ...]] = [
    (1, 4, 15), (1, 4, 15, 17), (1, 4, 6, 15, 17), (1, 4, 6, 7, 15, 17), (4, 6, 7, 15, 17),
    (1, 4, 6, 7, 20, 25, 26), (1, 4, 6, 7, 15, 20, 25, 26), (1, 4, 7, 10, 15, 20, 25),
    (1, 4, 6, 7, 10, 20, 25), (1, 4, 15, 20, 25), (1, 4, 6, 7, 15, 17, 45), (1, 4, 7, 15, 25, 26),
]


def variant_rows(rows: int, seed: int = 0, table_of: dict[str, list[tuple[int, ...]]] | None = None) -> np.ndarray:
    """(rows, 17) FACS intensities: a random variant of a random emotion per row, each AU
    at ``scale x base`` (scale ~ U(0.35, 1.2) per row, base ~ U(2.5, 4.5) per AU).
    ``table_of``: emotion -> combinations (default :data:`VARIANTS`)."""
    variants = VARIANTS if table_of is None else table_of
    rng = np.random.default_rng(seed)
    names = sorted(variants)
    table = np.zeros((rows, len(GANIMATION_AUS)))
    for r in range(rows):
        combo = variants[names[int(rng.integers(len(names)))]]
        aus = combo[int(rng.integers(len(combo)))]
        scale = rng.uniform(0.35, 1.2)
        for number in aus:
            table[r, GANIMATION_AUS.index(f"AU{number:02d}")] = scale * rng.uniform(2.5, 4.5)
    return np.clip(table, 0.0, FACS_MAX)


#: AUs the open-mouth table draws independently (the mouth opening is drawn on its own).
INDEPENDENT_AUS = tuple(a for a in GANIMATION_AUS if a not in ("AU25", "AU26", "AU45"))


def open_mouth_rows(rows: int, seed: int = 0, open_rate: float = 0.5, max_active: int = 6) -> np.ndarray:
    """(rows, 17) FACS intensities: 1..``max_active`` of :data:`INDEPENDENT_AUS` at U(1, 5),
    and with probability ``open_rate`` lips parted (AU25 U(1.5, 5); AU26 U(1, 5) in 60% of
    those), drawn independently of the other AUs."""
    rng = np.random.default_rng(seed)
    table = np.zeros((rows, len(GANIMATION_AUS)))
    for r in range(rows):
        k = int(rng.integers(1, max_active + 1))
        for a in rng.choice(INDEPENDENT_AUS, size=k, replace=False):
            table[r, GANIMATION_AUS.index(str(a))] = rng.uniform(1.0, 5.0)
        _part_lips(table[r], rng, open_rate)
    return table


#: Upper-face grief combinations (AU01+AU04, sometimes with the lids tightened or lowered).
GRIEF_BROWS: list[tuple[int, ...]] = [(1, 4), (1, 4), (1, 4, 7), (1, 4, 45)]

#: Lower-face AUs the grief table draws independently of the brows.
LOWER_AUS = ("AU10", "AU12", "AU14", "AU15", "AU17", "AU20", "AU23")


def grief_rows(rows: int, seed: int = 0, open_rate: float = 0.5, max_lower: int = 3) -> np.ndarray:
    """(rows, 17) FACS intensities: a :data:`GRIEF_BROWS` combination per row (each AU at
    U(1.5, 5)), plus 0..``max_lower`` of :data:`LOWER_AUS` at U(1, 5) and, with probability
    ``open_rate``, parted lips (AU25 U(1.5, 5); AU26 U(1, 5) in 60% of those), all drawn
    independently of the brows."""
    rng = np.random.default_rng(seed)
    table = np.zeros((rows, len(GANIMATION_AUS)))
    for r in range(rows):
        for number in GRIEF_BROWS[int(rng.integers(len(GRIEF_BROWS)))]:
            table[r, GANIMATION_AUS.index(f"AU{number:02d}")] = rng.uniform(1.5, 5.0)
        _lower_face(table[r], rng, open_rate, max_lower)
    return table


#: Upper-face AU -> the rate the ``brows`` table switches it on, each independently.
BROW_RATES: dict[str, float] = {"AU01": 0.5, "AU02": 0.5, "AU04": 0.5, "AU05": 0.25, "AU07": 0.25, "AU45": 0.15}


#: :data:`BROW_RATES` plus the cheek raiser (AU06), for the ``upper`` table.
UPPER_RATES: dict[str, float] = {**BROW_RATES, "AU06": 0.3}


def brow_rows(rows: int, seed: int = 0, open_rate: float = 0.5, max_lower: int = 3,
              rates: dict[str, float] | None = None) -> np.ndarray:
    """(rows, 17) FACS intensities: each of ``rates``' AUs (default :data:`BROW_RATES`) on at
    its rate (U(1.5, 5)), independently of the others (a factorial design: AU04 appears with
    and without AU01 equally often), plus the lower face of :func:`grief_rows`."""
    rates = BROW_RATES if rates is None else rates
    rng = np.random.default_rng(seed)
    table = np.zeros((rows, len(GANIMATION_AUS)))
    for r in range(rows):
        for name, rate in rates.items():
            if rng.random() < rate:
                table[r, GANIMATION_AUS.index(name)] = rng.uniform(1.5, 5.0)
        _lower_face(table[r], rng, open_rate, max_lower)
    return table


def _lower_face(row: np.ndarray, rng: np.random.Generator, open_rate: float, max_lower: int) -> None:
    """Fill ``row`` (17,) in place: 0..``max_lower`` of :data:`LOWER_AUS` at U(1, 5) and, with
    probability ``open_rate``, parted lips (AU25 U(1.5, 5); AU26 U(1, 5) in 60% of those)."""
    for a in rng.choice(LOWER_AUS, size=int(rng.integers(0, max_lower + 1)), replace=False):
        row[GANIMATION_AUS.index(str(a))] = rng.uniform(1.0, 5.0)
    _part_lips(row, rng, open_rate)


def _part_lips(row: np.ndarray, rng: np.random.Generator, open_rate: float) -> None:
    """With probability ``open_rate``, part the lips of ``row`` (17,) in place: AU25 U(1.5, 5),
    and AU26 U(1, 5) in 60% of those."""
    if rng.random() < open_rate:
        row[GANIMATION_AUS.index("AU25")] = rng.uniform(1.5, 5.0)
        if rng.random() < 0.6:
            row[GANIMATION_AUS.index("AU26")] = rng.uniform(1.0, 5.0)


def upper_rows(rows: int, seed: int = 0) -> np.ndarray:
    """(rows, 17) FACS intensities: :func:`brow_rows` with :data:`UPPER_RATES` (the cheek raiser
    AU06 on in 30% of the rows, independently of the smile AU12 and of the lids)."""
    return brow_rows(rows, seed, rates=UPPER_RATES)


#: Upper-face rates of the ``jaw`` table: the brows of :data:`BROW_RATES`, the lids widened (AU05)
#: in half the rows.
JAW_BROW_RATES: dict[str, float] = {**BROW_RATES, "AU05": 0.5}


def jaw_rows(rows: int, seed: int = 0, jaw_rate: float = 0.5, max_lower: int = 3) -> np.ndarray:
    """(rows, 17) FACS intensities: :data:`JAW_BROW_RATES`' AUs each on at its rate (U(1.5, 5)),
    0..``max_lower`` of :data:`LOWER_AUS` (U(1, 5)), and the jaw dropped (AU26 U(1, 5), lips
    parted: AU25 U(1.5, 5)) in ``jaw_rate`` of the rows, else lips parted alone in 20%; all
    independent, so AU01, AU02 and AU05 meet AU26 as often as not (surprise's four AUs)."""
    rng = np.random.default_rng([seed, 1])    # a stream of its own, apart from brow_rows' (seed)
    table = brow_rows(rows, seed, open_rate=0.0, max_lower=max_lower, rates=JAW_BROW_RATES)
    for row in table:
        if rng.random() < jaw_rate:
            row[GANIMATION_AUS.index("AU26")] = rng.uniform(1.0, 5.0)
            row[GANIMATION_AUS.index("AU25")] = rng.uniform(1.5, 5.0)
        elif rng.random() < 0.2:
            row[GANIMATION_AUS.index("AU25")] = rng.uniform(1.5, 5.0)
    return table


def distress_rows(rows: int, seed: int = 0) -> np.ndarray:
    """(rows, 17) FACS intensities: a random :data:`DISTRESS` combination per row, with
    :func:`variant_rows`' intensities."""
    return variant_rows(rows, seed, {"distress": DISTRESS})


KINDS = {"variants": variant_rows, "open-mouth": open_mouth_rows, "distress": distress_rows, "grief": grief_rows,
         "brows": brow_rows, "upper": upper_rows, "jaw": jaw_rows}


def write_table(out: Path, rows: int, seed: int = 0, kind: str = "variants") -> Path:
    """Write ``out/aus.csv`` (``id,AU01,...,AU45``; readable by ``aukit.dataset.read_au_table``)."""
    if kind not in KINDS:
        raise ValueError(f"unknown table kind {kind!r}; one of {sorted(KINDS)}")
    table = KINDS[kind](rows, seed)
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
    p.add_argument("--kind", choices=sorted(KINDS), default="variants",
                   help="variants: EMFACS emotion variants; open-mouth: independent AUs, lips parted in half the rows; "
                        "distress: sadness variants and crying faces; grief: AU01+AU04 brows over an independent lower face; "
                        "brows: brow and lid AUs each on independently, over an independent lower face; "
                        "upper: brows plus the cheek raiser AU06, each on independently; "
                        "jaw: brows and widened lids with the jaw dropped in half the rows, independently")
    args = p.parse_args(argv)
    print(f"wrote {write_table(args.out, args.rows, args.seed, args.kind)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
