"""Attention statistics and attention quality against the renderer's AU region masks.

GANimation outputs ``A * x + (1 - A) * C``: attention ``A`` in [0, 1], 1 keeps the input
pixel. The *edit mask* is ``1 - A``.

* Statistics (any test set), per image: ``mean`` of A; ``replaced``: share of pixels with
  ``A < SATURATION`` (fully replaced by the colour map); ``kept``: share with
  ``A > 1 - SATURATION`` (untouched). ``replaced + kept`` is the saturated share: GANimation
  is known to collapse to all-kept (the edit is ignored) or all-replaced (the face is
  repainted) masks.
* Quality (synthetic test sets): the ground-truth edit region of a target is the union of
  the renderer's ``au_regions`` bits of the target's active AUs (bit k = the pixel shows a
  surface that rig AU k moves, defined per triangle whatever the face's current AUs, so it
  is known on neutral inputs too). With the edit mask thresholded at ``threshold``:
  ``iou = |M & G| / |M | G|``, ``precision = |M & G| / |M|``, ``recall = |M & G| / |G|``
  (NaN where a denominator is 0: no edit or no region in view).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from aukit.aus import GANIMATION_AUS, RIG_AUS

SATURATION = 0.05

#: GANimation AU -> rig AUs whose regions it moves (AU45 is max(AU43, AU45) in labels).
_RIG_OF = {a: (a,) for a in GANIMATION_AUS} | {"AU45": ("AU43", "AU45")}


def attention_stats(attention: np.ndarray, saturation: float = SATURATION) -> dict[str, np.ndarray]:
    """Per-image statistics of ``attention`` (N, H, W) in [0, 1]: ``mean``, ``replaced``,
    ``kept`` (each float64 (N,))."""
    a = np.asarray(attention, dtype=np.float64).reshape(len(attention), -1)
    return {"mean": a.mean(1), "replaced": (a < saturation).mean(1),
            "kept": (a > 1.0 - saturation).mean(1)}


def region_bits(target17: np.ndarray, bit_order: Sequence[str] = RIG_AUS, min_intensity: float = 0.0) -> int:
    """uint32 bitmask of the rig AUs that the 17-AU target (FACS) activates above ``min_intensity``."""
    bits = 0
    for a, v in zip(GANIMATION_AUS, np.asarray(target17, dtype=np.float64)):
        if v > min_intensity:
            for rig in _RIG_OF[a]:
                if rig in bit_order:
                    bits |= 1 << list(bit_order).index(rig)
    return bits


def target_region(au_regions: np.ndarray, bits: int) -> np.ndarray:
    """bool (H, W): pixels whose region bitfield shares a bit with ``bits``."""
    return (np.asarray(au_regions).astype(np.uint64) & np.uint64(bits)) > 0


def resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """Nearest-neighbour resize of a bool/int (H, W) map to (size, size) (pixel centres)."""
    h, w = mask.shape
    if (h, w) == (size, size):
        return mask
    rows = np.minimum(((np.arange(size) + 0.5) * h / size).astype(int), h - 1)
    cols = np.minimum(((np.arange(size) + 0.5) * w / size).astype(int), w - 1)
    return mask[rows][:, cols]


def region_scores(edit: np.ndarray, truth: np.ndarray, threshold: float = 0.5) -> dict[str, np.ndarray]:
    """IoU, precision, recall of edit masks ``edit`` (N, H, W) in [0, 1] (``1 - A``) against
    bool ground truth ``truth`` (N, H, W); float64 (N,) each, NaN where undefined."""
    m = np.asarray(edit, dtype=np.float64).reshape(len(edit), -1) > threshold
    g = np.asarray(truth, dtype=bool).reshape(len(truth), -1)
    inter = (m & g).sum(1).astype(np.float64)
    union, n_m, n_g = (m | g).sum(1), m.sum(1), g.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"iou": np.where(union > 0, inter / union, np.nan),
                "precision": np.where(n_m > 0, inter / n_m, np.nan),
                "recall": np.where(n_g > 0, inter / n_g, np.nan)}
