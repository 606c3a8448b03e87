"""Figures and image strips of the report, returned as base64 PNG strings (for ``<img src=
"data:image/png;base64,...">``, so the HTML stays one self-contained file).

Matplotlib runs on the Agg backend (no display needed).
"""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from aukit.aus import GANIMATION_AUS


def png_b64(image: np.ndarray | Image.Image) -> str:
    pil = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
    buf = io.BytesIO()
    pil.save(buf, format="PNG", optimize=True)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _fig_b64(fig: Any) -> str:
    import matplotlib.pyplot as plt
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _plt() -> Any:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def strip(images: list[np.ndarray], scale: int = 2, gap: int = 2) -> np.ndarray:
    """Images side by side (RGB or gray uint8 (S, S[, 3])), upscaled ``scale``x (nearest)."""
    tiles = []
    for im in images:
        im = np.asarray(im)
        if im.ndim == 2:
            im = np.repeat(im[..., None], 3, -1)
        tiles.append(np.kron(im, np.ones((scale, scale, 1), np.uint8)))
        tiles.append(np.full((tiles[-1].shape[0], gap, 3), 255, np.uint8))
    return np.concatenate(tiles[:-1], axis=1)


def labelled_strip(images: list[np.ndarray], labels: list[str], scale: int = 2) -> np.ndarray:
    """:func:`strip` with a small caption above each image."""
    body = strip(images, scale)
    tile = images[0].shape[1] * scale + 2
    canvas = Image.new("RGB", (body.shape[1], body.shape[0] + 12), "white")
    canvas.paste(Image.fromarray(body), (0, 12))
    draw = ImageDraw.Draw(canvas)
    for i, text in enumerate(labels):
        draw.text((i * tile + 2, 0), text[: max(3, tile // 6)], fill=(40, 40, 40))
    return np.asarray(canvas)


def efficiency_plot(series: dict[str, dict[str, list[dict[str, Any]]]], metrics: list[str],
                    descriptions: dict[str, str]) -> str | None:
    """Metric vs real-data share: one panel per metric, one line per test set, 95% CI bars.

    ``series[metric][test_set]``: points ``{share, value, ci_low, ci_high, model}``."""
    metrics = [m for m in metrics if any(sum(q["value"] is not None for q in p) >= 2
                                         for p in series.get(m, {}).values())]
    if not metrics:
        return None
    plt = _plt()
    cols = min(3, len(metrics))
    rows = (len(metrics) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False)
    for ax, metric in zip(axes.flat, metrics):
        for name, pts in sorted(series[metric].items()):
            pts = sorted(pts, key=lambda p: p["share"])
            x = np.array([p["share"] for p in pts])
            y = np.array([np.nan if p["value"] is None else p["value"] for p in pts], float)
            lo = np.array([np.nan if p["ci_low"] is None else p["ci_low"] for p in pts], float)
            hi = np.array([np.nan if p["ci_high"] is None else p["ci_high"] for p in pts], float)
            # Intervals drawn from their ends: a biased statistic's (FD's) percentile interval
            # need not contain its point estimate, so yerr offsets could be negative.
            line = ax.plot(x, y, marker="o", label=name)[0]
            ax.vlines(x, lo, hi, color=line.get_color(), lw=1.2)
            for ends in (lo, hi):
                ax.scatter(x, ends, marker="_", color=line.get_color(), s=40)
        ax.set_title(metric, fontsize=10)
        ax.set_xlabel("real share of training batches")
        ax.set_xlim(-0.05, 1.05)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    fig.tight_layout()
    return _fig_b64(fig)


def per_au_plot(breakdown: dict[str, dict[str, dict[str, Any]]], title: str, ylabel: str) -> str | None:
    """Grouped bars over the 17 AUs, one bar per model, 95% CI whiskers.

    ``breakdown[model][AU]``: ``{value, ci_low, ci_high}``."""
    models = [m for m, b in breakdown.items() if b]
    if not models:
        return None
    plt = _plt()
    aus = [a for a in GANIMATION_AUS if any(a in breakdown[m] for m in models)]
    x = np.arange(len(aus))
    width = 0.8 / len(models)
    fig, ax = plt.subplots(figsize=(max(8, 0.6 * len(aus)), 3.2))
    for i, m in enumerate(models):
        vals = [breakdown[m].get(a, {}) for a in aus]
        y = np.array([np.nan if v.get("value") is None else v["value"] for v in vals], float)
        lo = np.array([np.nan if v.get("ci_low") is None else v["ci_low"] for v in vals], float)
        hi = np.array([np.nan if v.get("ci_high") is None else v["ci_high"] for v in vals], float)
        err = [np.clip(np.nan_to_num(y - lo), 0, None), np.clip(np.nan_to_num(hi - y), 0, None)]
        ax.bar(x + (i - (len(models) - 1) / 2) * width, y, width, label=m, yerr=err, capsize=2,
               error_kw={"lw": 0.8})
    ax.set_xticks(x, aus, rotation=45, fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, ncol=min(len(models), 6))
    fig.tight_layout()
    return _fig_b64(fig)
