"""Fit the face rig to 478 image landmarks: pose, identity shape and the source's AUs.

Shared by the photo-identity reconstruction (``synth/identity/photo.py``) and the geometric
AU annotator. numpy/scipy only; a fit takes a few milliseconds.

Model (weak perspective, i.e. a 3D similarity followed by an orthographic projection)::

    q_i = s * R @ (neutral_i + sum_k c_k shape_k,i + sum_j a_j au_j,i) + t

* ``q``: the landmarks in the *image frame*: ``(x, -y, -z)`` of MediaPipe's pixel
  landmarks (x right, y down, z smaller = nearer), i.e. x right, y up, z towards the
  camera. The rig frame has the same handedness (+x subject's left = image right for a
  frontal face, +y up, +z out of the face), so ``R`` is the head rotation relative to the
  camera and :func:`rotation_to_pose` turns it into yaw/pitch/roll with the conventions of
  :mod:`aukit.schema`.
* ``c``: identity shape coefficients (units: standard deviations), Tikhonov-regularised
  and bounded to ``[-shape_bound, shape_bound]``.
* ``a``: FACS intensities of ``RIG_AUS``, bounded to ``[0, 5]`` (bounded least squares,
  :func:`scipy.optimize.lsq_linear`), with a small L2 and an L1 (sparsity) penalty.
  AU45 (blink) shares AU43's eyelid field exactly, so only AU43 is fitted and AU45 stays 0.
* ``detail``: what the model cannot explain, per vertex, in the rig frame (cm): the fitted
  model plus ``detail`` reproduces the landmarks exactly (x, y; z up to MediaPipe's depth).

* The model's neutral is the rig's neutral plus :func:`landmark_prior` (how MediaPipe's
  landmarks of real neutral faces differ from it on average), so neutral photos fit AUs
  near 0 instead of absorbing that difference.

Solver: a similarity (Umeyama) and two alternating linear solves for the start, then a
joint Gauss-Newton over rotation, scale, translation and coefficients with bounded steps
(each step a bounded least-squares problem reduced to its K x K normal equations).
x/y residuals weigh 1, MediaPipe's less reliable z weighs ``z_weight``. Noise-free
synthetic landmarks are recovered exactly (tests/synth/test_photo_fitting.py).

``residual``: RMS 2D distance between the fitted model's projection (without detail) and the
landmarks, divided by the outer-eye-corner distance (scale-free; ~0.01-0.03 on real photos).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from importlib import resources as ilr

import numpy as np
from scipy.optimize import lsq_linear

from aukit import landmarks as lmk
from aukit.aus import RIG_AUS
from aukit.basis import FaceBasis, load_basis
from aukit.meshops import similarity_fit

PRIOR_FILE = "landmark_prior.json"
#: AUs left out of the fit by default: AU45's field is AU43's (identical columns).
DEFAULT_FIXED_AUS: tuple[str, ...] = ("AU45",)


@dataclass(frozen=True)
class FitOptions:
    """Weights of the fit. ``shape_reg``/``au_reg``: Tikhonov weights (cm^2 per unit^2)."""

    iterations: int = 30
    z_weight: float = 0.3
    shape_reg: float = 0.02
    shape_bound: float = 3.0
    au_reg: float = 0.002
    au_bounds: tuple[float, float] = (0.0, 5.0)
    fit_aus: bool = True
    fit_shape: bool = True
    fixed_aus: tuple[str, ...] = DEFAULT_FIXED_AUS
    landmark_prior: bool = True
    au_l1: float = 2.0


@dataclass(frozen=True)
class FitResult:
    """A fitted rig. Image-frame coordinates are ``(x, -y, -z)`` of pixel landmarks."""

    scale: float                 # pixels per cm
    rotation: np.ndarray         # (3, 3) rig frame -> image frame
    translation: np.ndarray      # (3,) image frame, pixels
    shape: np.ndarray            # (S,) shape coefficients
    aus: np.ndarray              # (len(RIG_AUS),) FACS 0-5
    detail: np.ndarray           # (478, 3) cm, rig frame: landmarks minus the fitted model
    residual: float              # RMS 2D error / outer-eye-corner distance (model without detail)
    inter_ocular_px: float       # outer-eye-corner distance in the image (pixels)
    pose: dict[str, float] = field(default_factory=dict)   # yaw, pitch, roll (deg)
    offset: np.ndarray | None = None   # (478, 3) the landmark prior added to the neutral (cm)

    @property
    def au_dict(self) -> dict[str, float]:
        return {a: float(v) for a, v in zip(RIG_AUS, self.aus)}

    def model(self, basis: FaceBasis | None = None, aus: np.ndarray | None = None,
              detail: bool = True) -> np.ndarray:
        """Rig-frame vertices (478, 3): neutral + shape (+ ``aus``, default the fitted ones)
        (+ detail)."""
        b = basis or load_basis()
        v = b.deform(self.aus if aus is None else aus, self.shape)
        if self.offset is not None:
            v = v + self.offset
        return v + self.detail if detail else v

    def identity_mesh(self, basis: FaceBasis | None = None) -> np.ndarray:
        """The neutral identity (478, 3): fitted mesh with the source expression removed."""
        return self.model(basis, aus=np.zeros(len(RIG_AUS)))

    def to_image(self, vertices: np.ndarray) -> np.ndarray:
        """Rig-frame points (N, 3) -> image frame (N, 3) (x right, y up, z to the camera)."""
        return self.scale * np.asarray(vertices) @ self.rotation.T + self.translation

    def project(self, vertices: np.ndarray) -> np.ndarray:
        """Rig-frame points (N, 3) -> pixel coordinates (N, 2) (x right, y down)."""
        q = self.to_image(vertices)
        return np.stack([q[:, 0], -q[:, 1]], 1)


@functools.lru_cache(maxsize=1)
def landmark_prior() -> np.ndarray:
    """(478, 3) cm: how MediaPipe's landmarks of real neutral faces differ from the rig's
    neutral on average (rig frame), from ``assets/landmark_prior.json``.

    Added to the neutral during the fit so that the AUs explain expressions, not the
    systematic difference between the rig's neutral and MediaPipe's idea of a face (without
    it, neutral photos fit AU24 ~3 and AU05 ~2.5). Built by ``bench/photo_fit_calibration.py``
    (median rig-frame residual of a shape-only fit over near-frontal neutral real photos,
    symmetrised); see ``docs/photo_identities.md``.
    """
    off = np.asarray(_prior_asset()["offset_cm"], dtype=np.float64)
    if off.shape != (lmk.N_MESH, 3):
        raise ValueError(f"{PRIOR_FILE}: expected (478, 3) offsets, got {off.shape}")
    return off


@functools.lru_cache(maxsize=1)
def _prior_asset() -> dict:
    return json.loads(ilr.files("assets").joinpath(PRIOR_FILE).read_text())


def neutral_allowance() -> np.ndarray:
    """(len(RIG_AUS),) FACS: per AU, the upper quartile of what *neutral* real photos fit
    (``assets/landmark_prior.json``, same calibration as :func:`landmark_prior`).

    Fitted AUs up to this level are as likely identity (eye aperture, lip shape) as
    expression; photo identities remove only the excess (``synth/identity/photo.py``).
    """
    allow = _prior_asset().get("neutral_allowance", {})
    return np.array([float(allow.get(a, 0.0)) for a in RIG_AUS])


def image_frame(landmarks: np.ndarray) -> np.ndarray:
    """MediaPipe pixel landmarks (N, 3) -> image frame (x, -y, -z)."""
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.ndim != 2 or lm.shape[1] != 3:
        raise ValueError(f"expected (N, 3) landmarks, got {lm.shape}")
    return lm * np.array([1.0, -1.0, -1.0])


def rotation_to_pose(rot: np.ndarray) -> dict[str, float]:
    """Yaw, pitch, roll (deg) of ``rot = Rz(roll) Rx(-pitch) Ry(yaw)`` (``synth.camera.rotation``)."""
    r = np.asarray(rot, dtype=np.float64)
    a = float(np.arcsin(np.clip(r[2, 1], -1.0, 1.0)))
    yaw = float(np.arctan2(-r[2, 0], r[2, 2]))
    roll = float(np.arctan2(-r[0, 1], r[1, 1]))
    return {"yaw": float(np.degrees(yaw)), "pitch": float(np.degrees(-a)), "roll": float(np.degrees(roll))}


def inter_ocular(points_2d: np.ndarray) -> float:
    """Distance between the outer eye corners (landmarks 33 and 263)."""
    p = np.asarray(points_2d)[:, :2]
    return float(np.linalg.norm(p[lmk.R_EYE_OUTER] - p[lmk.L_EYE_OUTER]))


def fit_landmarks(landmarks: np.ndarray, basis: FaceBasis | None = None,
                  options: FitOptions | None = None, point_weight: np.ndarray | None = None) -> FitResult:
    """Fit pose, shape and AUs to MediaPipe pixel landmarks (478 or 468, 3).

    ``point_weight``: optional (468,) weights >= 0 of the face landmarks (default all 1).
    Zero-weight points take no part in the fit, its initial pose or its residual, so a
    region of the face can be fitted on its own."""
    b = basis or load_basis()
    opt = options or FitOptions()
    q_all = image_frame(landmarks)
    if len(q_all) < lmk.N_FACE or not np.isfinite(q_all[:lmk.N_FACE]).all():
        raise ValueError("need 468 finite landmarks")
    n = lmk.N_FACE
    q = q_all[:n]
    iod = inter_ocular(q_all)
    if iod <= 0:
        raise ValueError("degenerate landmarks: zero inter-ocular distance")

    pw = _point_weight(point_weight, n)
    sel = pw > 0
    free_aus = [i for i, a in enumerate(RIG_AUS) if a not in opt.fixed_aus] if opt.fit_aus else []
    n_shape = len(b.shape_names) if opt.fit_shape else 0
    cols = []
    if n_shape:
        cols.append(b.shape_fields[:, :n].reshape(n_shape, -1).T)
    if free_aus:
        cols.append(b.au_fields[free_aus][:, :n].reshape(len(free_aus), -1).T)
    basis_mat = np.concatenate(cols, axis=1) if cols else np.zeros((3 * n, 0))
    w = np.tile(np.array([1.0, 1.0, opt.z_weight]), n) * np.repeat(pw, 3)
    reg = np.concatenate([np.full(n_shape, np.sqrt(opt.shape_reg)), np.full(len(free_aus), np.sqrt(opt.au_reg))])
    a_mat = np.concatenate([basis_mat * w[:, None], np.diag(reg)]) if len(reg) else None
    lo = np.concatenate([np.full(n_shape, -opt.shape_bound), np.full(len(free_aus), opt.au_bounds[0])])
    hi = np.concatenate([np.full(n_shape, opt.shape_bound), np.full(len(free_aus), opt.au_bounds[1])])

    # initial pose: similarity of the neutral mesh, then a few alternating linear solves
    l1 = np.concatenate([np.zeros(n_shape), np.full(len(free_aus), opt.au_l1)])
    offset = landmark_prior() if opt.landmark_prior else np.zeros((lmk.N_MESH, 3))
    base = b.neutral[:n] + offset[:n]
    coef = np.zeros(len(reg))
    model = base.copy()
    scale, rot, trans = similarity_fit(model[sel], q[sel])
    for _ in range(2 if len(reg) else 0):
        local = (q - trans) @ rot / scale - base                   # rig frame, cm
        rhs = np.concatenate([local.ravel() * w, np.zeros(len(reg))])
        coef = _bounded_lstsq(a_mat, rhs, lo, hi, l1)
        model = base + (basis_mat @ coef).reshape(n, 3)
        scale, rot, trans = similarity_fit(model[sel], q[sel])
    # joint Gauss-Newton on (rotation, scale, translation, coefficients), bounded steps
    damping = 1e-3
    for _ in range(opt.iterations):
        model = base + (basis_mat @ coef).reshape(n, 3)
        posed = model @ rot.T                                      # (n, 3), rotated, unscaled
        res = (scale * posed + trans - q).ravel() * w
        jac = np.empty((3 * n, 7 + len(coef)))
        # d/d omega of exp([omega]) R m = -[R m]_x omega
        px, py, pz = posed[:, 0], posed[:, 1], posed[:, 2]
        zero = np.zeros(n)
        cross = np.stack([np.stack([zero, pz, -py], 1), np.stack([-pz, zero, px], 1),
                          np.stack([py, -px, zero], 1)], 1)         # (n, 3 rows, 3 omega)
        jac[:, 0:3] = scale * cross.reshape(3 * n, 3)
        jac[:, 3] = scale * posed.ravel()                          # relative scale step
        jac[:, 4:7] = np.tile(np.eye(3), (n, 1))
        if len(coef):
            rb = np.einsum("ij,njk->nik", rot, basis_mat.reshape(n, 3, -1))
            jac[:, 7:] = scale * rb.reshape(3 * n, -1)
        jac *= w[:, None]
        k = len(coef)
        rows = [jac, np.concatenate([np.zeros((k, 7)), np.diag(reg)], 1) if k else np.zeros((0, 7)),
                np.sqrt(damping) * np.diag(np.concatenate([np.full(3, 1.0), [1.0], np.full(3, 1.0 / scale),
                                                           np.ones(k)]))]
        rhs = np.concatenate([-res, -reg * coef, np.zeros(7 + k)])
        step_lo = np.concatenate([np.full(7, -np.inf), lo - coef])
        step_hi = np.concatenate([np.full(7, np.inf), hi - coef])
        step_hi = np.maximum(step_hi, step_lo + 1e-12)
        step = _bounded_lstsq(np.concatenate(rows), rhs, step_lo, step_hi,
                              np.concatenate([np.zeros(7), l1]))
        rot = _expmap(step[0:3]) @ rot
        scale *= 1.0 + step[3]
        trans = trans + step[4:7]
        coef = np.clip(coef + step[7:], lo, hi)
        if np.abs(step[:3]).max() < 1e-7 and np.abs(step[7:]).max(initial=0.0) < 1e-6:
            break

    shape = coef[:n_shape] if n_shape else np.zeros(len(b.shape_names))
    aus = np.zeros(len(RIG_AUS))
    aus[free_aus] = coef[n_shape:]
    full = b.deform(aus, shape) + offset
    local_all = (q_all - trans) @ rot / scale
    detail = np.zeros((len(full), 3))
    m = min(len(q_all), len(full))
    detail[:m] = local_all[:m] - full[:m]
    proj = scale * full[:n] @ rot.T + trans
    residual = float(np.sqrt(np.average(np.sum((proj[:, :2] - q[:, :2]) ** 2, axis=1), weights=pw))) / iod
    return FitResult(scale=float(scale), rotation=rot, translation=trans, shape=shape, aus=aus,
                     detail=detail, residual=residual, inter_ocular_px=iod, pose=rotation_to_pose(rot),
                     offset=offset)


def _point_weight(point_weight: np.ndarray | None, n: int) -> np.ndarray:
    """(n,) landmark weights, checked: finite, >= 0, at least 3 points weighted."""
    if point_weight is None:
        return np.ones(n)
    pw = np.asarray(point_weight, dtype=np.float64)
    if pw.shape != (n,) or not np.isfinite(pw).all() or (pw < 0).any():
        raise ValueError(f"point_weight must be {n} finite weights >= 0, got shape {pw.shape}")
    if np.count_nonzero(pw) < 3:
        raise ValueError("point_weight must weight at least 3 landmarks")
    return pw


def _expmap(omega: np.ndarray) -> np.ndarray:
    """Rotation matrix of the rotation vector ``omega`` (Rodrigues)."""
    theta = float(np.linalg.norm(omega))
    if theta < 1e-12:
        return np.eye(3)
    k = np.asarray(omega) / theta
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(theta) * kx + (1 - np.cos(theta)) * kx @ kx


def _bounded_lstsq(a: np.ndarray, b: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                   linear: np.ndarray | None = None) -> np.ndarray:
    """``argmin ||a x - b||^2 + linear . x`` with ``lo <= x <= hi``, via the (K x K) Cholesky
    factor of the normal equations (the tall problem reduced to a square one: same
    minimiser, ~50x faster). ``linear`` on variables bounded below by 0 is an L1 penalty."""
    m = a.T @ a
    g = a.T @ b
    if linear is not None:
        g = g - 0.5 * linear
    m[np.diag_indices_from(m)] += 1e-12 * max(1.0, float(np.trace(m)) / len(m))
    chol = np.linalg.cholesky(m)                   # m = L L^T
    rhs = np.linalg.solve(chol, g)                 # ||a x - b||^2 = ||L^T x - rhs||^2 + const
    free = np.linalg.solve(chol.T, rhs)
    if np.all(free >= lo) and np.all(free <= hi):
        return free
    return lsq_linear(chol.T, rhs, bounds=(lo, hi), method="bvls").x
