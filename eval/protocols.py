"""Edit-fidelity protocols: edit every selected test face to every target, judge the results.

Protocol 1 (real test sets) and 2 (synthetic test sets) share one procedure,
:func:`run_cell`; a synthetic set adds exact input labels and attention-vs-region scores.
Protocol 3 (the matrix) is :func:`run_cell` over models x test sets (``eval.cli``), and
protocol 4 (data efficiency) is the matrix read along the models' real-data share
(``eval.report``).

A *cell* is one (model, test set) pair. Its table (``cells/<model>__<set>.npz``) holds one
row per (face, target) edit, row ``r = t * F + f`` for target ``t`` and face ``f``:

=================  ==============  ==================================================
key                shape           meaning
=================  ==============  ==================================================
face, target       (M,) int        face and target index of each row
target_aus         (M, 17)         requested AUs, FACS 0-5
judge_aus          (M, 17)         AU judge on the output (NaN: no face / refused)
judge_in           (F, 17)         AU judge on the unedited input
labels_in          (F, 17)         the dataset's labels of the input (exact if synthetic)
fer_probs          (M, 7)          expression judge on the output (FER_CLASSES order)
fer_in             (F, 7)          expression judge on the input
feats              (M, 128)        realism features of the outputs (FER penultimate)
feats_in           (F, 128)        realism features of the inputs
id_dist            (M,)            identity distance input-output (NaN: not judged)
att_mean/replaced/kept (M,)        attention statistics (:mod:`eval.attention`)
iou/precision/recall (M,)          edit mask vs AU regions (NaN on real sets)
t_kind, t_name, t_intensity (T,)   the targets
grid_in (G, S, S, 3), grid_out (G, T, S, S, 3), grid_att (G, T, S, S) uint8: images of
the first G faces, kept for the report
=================  ==============  ==================================================
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from aukit import atomic
from eval.attention import attention_stats, region_bits, region_scores, target_region
from eval.config import EvalConfig
from eval.models import EvalModel
from eval.targets import Target
from eval.testsets import EvalSet

Progress = Callable[[int], None]


@dataclass
class Judges:
    """The judges of one evaluation (``au`` may be None when disabled)."""

    expression: Any
    identity: Any
    au: Any

    def describe(self) -> dict[str, Any]:
        return {"expression": self.expression.judge_id, "identity": self.identity.judge_id,
                "identity_threshold": self.identity.threshold,
                "au": self.au.describe() if self.au is not None else None}


def cell_key(model: EvalModel, ts: EvalSet, targets: list[Target], judges: Judges, cfg: EvalConfig) -> str:
    """Digest of everything that shapes a cell's table (resume guard)."""
    parts = {"model": model.info.get("sha1") or model.name, "size": model.image_size,
             "set": [str(ts.root), ts.kind, ts.selection.get("ids_sha1")],
             "targets": [t.label for t in targets], "judges": judges.describe(),
             "cfg": {"identity_on": cfg.judges.identity_on, "grid": cfg.grid_faces,
                     "thr": cfg.stats.attention_threshold, "sat": cfg.stats.saturation}}
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def load_cell(path: Path, key: str) -> dict[str, np.ndarray] | None:
    """A saved cell table if it exists and was made with ``key``; else None."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) != key:
                return None
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, KeyError):  # damaged file: recompute
        return None


def save_cell(path: Path, table: dict[str, np.ndarray]) -> None:
    buf = io.BytesIO()
    np.savez_compressed(buf, **table)
    atomic.write_bytes(path, buf.getvalue())


def generate(model: EvalModel, images: np.ndarray, targets: list[Target], batch: int,
             device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """All edits, row ``t * F + f``: uint8 (M, S, S, 3) outputs, float32 (M, S, S) attention."""
    outs, atts = [], []
    for t in targets:
        for i in range(0, len(images), batch):
            o, a = model.edit(images[i:i + batch], t.aus, device)
            outs.append(o)
            atts.append(a)
    return np.concatenate(outs), np.concatenate(atts)


def run_cell(model: EvalModel, ts: EvalSet, targets: list[Target], judges: Judges, cfg: EvalConfig,
             key: str, device: torch.device, progress: Progress | None = None,
             chunk: int = 128) -> dict[str, np.ndarray]:
    """Edit, judge and score one (model, test set) cell; returns its table (see module doc).

    ``progress(n)`` is called as edits are judged (in chunks of ``chunk`` rows)."""
    size = model.image_size
    images, lms = ts.images(size), ts.landmarks(size)
    n_f, n_t = len(images), len(targets)
    face = np.tile(np.arange(n_f), n_t)
    tidx = np.repeat(np.arange(n_t), n_f)
    outputs, attention = generate(model, images, targets, cfg.batch_size, device)
    row_lms = [lms[f] for f in face]
    want_id = _identity_rows(cfg, targets, tidx)
    table: dict[str, np.ndarray] = {"key": np.array(key), "face": face, "target": tidx,
                                    "target_aus": np.stack([targets[t].aus for t in tidx]).astype(np.float32),
                                    "labels_in": ts.labels().astype(np.float32)}
    table.update(_judge_inputs(judges, images, lms, want_id.any()))
    parts = []
    for i in range(0, len(outputs), chunk):
        rows = slice(i, i + chunk)
        parts.append(_judge_outputs(judges, outputs[rows], row_lms[rows], want_id[rows],
                                    table.get("_id_in"), face[rows]))
        if progress:
            progress(len(outputs[rows]))
    table.update({k: np.concatenate([p[k] for p in parts]) for k in parts[0]})
    table.pop("_id_in", None)
    stats = attention_stats(attention, cfg.stats.saturation)
    table.update({f"att_{k}": v for k, v in stats.items()})
    table.update(_regions(ts, size, targets, attention, face, tidx, cfg.stats.attention_threshold))
    table.update(_targets_table(targets))
    table.update(_grid(images, outputs, attention, n_f, n_t, cfg.grid_faces))
    return table


def _identity_rows(cfg: EvalConfig, targets: list[Target], tidx: np.ndarray) -> np.ndarray:
    """bool (M,): edits the (slow) identity judge looks at."""
    mode = cfg.judges.identity_on
    if mode == "none":
        return np.zeros(len(tidx), bool)
    if mode == "all":
        return np.ones(len(tidx), bool)
    return np.array([targets[t].kind == "emotion" for t in tidx], bool)


def _judge_inputs(judges: Judges, images: np.ndarray, lms: list, identity: bool) -> dict[str, np.ndarray]:
    ins = judges.expression.run(images, lms)
    out = {"fer_in": ins.probs, "feats_in": ins.features,
           "judge_in": judges.au.predict(images).aus if judges.au is not None else
           np.full((len(images), 17), np.nan, np.float32)}
    if identity:
        out["_id_in"] = judges.identity.embed(images, lms)
    return out


def _judge_outputs(judges: Judges, outputs: np.ndarray, lms: list, want_id: np.ndarray,
                   id_in: np.ndarray | None, face: np.ndarray) -> dict[str, np.ndarray]:
    exp = judges.expression.run(outputs, lms)
    part = {"fer_probs": exp.probs, "feats": exp.features}
    if judges.au is not None:
        au = judges.au.predict(outputs)
        part.update(judge_aus=au.aus, judge_detected=au.detected)
    else:
        part.update(judge_aus=np.full((len(outputs), 17), np.nan, np.float32),
                    judge_detected=np.zeros(len(outputs), bool))
    dist = np.full(len(outputs), np.nan)
    rows = np.flatnonzero(want_id)
    if rows.size and id_in is not None:
        emb = judges.identity.embed(outputs[rows], [lms[r] for r in rows])
        dist[rows] = judges.identity.distance(id_in[face[rows]], emb)
    part["id_dist"] = dist
    return part


def _regions(ts: EvalSet, size: int, targets: list[Target], attention, face, tidx,
             threshold: float) -> dict[str, np.ndarray]:
    nan = np.full(len(attention), np.nan)
    found = ts.regions(size)
    if found is None:
        return {"iou": nan, "precision": nan.copy(), "recall": nan.copy()}
    regions, order = found
    bits = [region_bits(t.aus, order) for t in targets]
    truth = np.stack([target_region(regions[f], bits[t]) for f, t in zip(face, tidx)])
    return region_scores(1.0 - attention, truth, threshold)


def _targets_table(targets: list[Target]) -> dict[str, np.ndarray]:
    return {"t_kind": np.array([t.kind for t in targets]), "t_name": np.array([t.name for t in targets]),
            "t_intensity": np.array([t.intensity for t in targets]),
            "t_label": np.array([t.label for t in targets])}


def _grid(images, outputs, attention, n_f: int, n_t: int, g: int) -> dict[str, np.ndarray]:
    g = min(g, n_f)
    if g == 0:
        return {}
    size = images.shape[1]
    out = outputs.reshape(n_t, n_f, size, size, 3)[:, :g].transpose(1, 0, 2, 3, 4)
    att = attention.reshape(n_t, n_f, size, size)[:, :g].transpose(1, 0, 2, 3)
    return {"grid_in": images[:g], "grid_out": np.ascontiguousarray(out),
            "grid_att": np.clip(att * 255 + 0.5, 0, 255).astype(np.uint8)}
