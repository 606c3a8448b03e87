"""The renderable head rig: subdivided face + skull, eyeballs, mouth interior, neck.

``HeadRig`` is built once per process from :func:`aukit.basis.load_basis`. ``prepare``
precomputes an identity's static geometry; ``pose`` deforms it for one AU vector and gaze
and returns :class:`Part` meshes in the head frame (cm). Everything is numpy; rendering
backends turn parts into their own scene objects.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.optimize import least_squares

from aukit import landmarks as lmk
from aukit.basis import FaceBasis, load_basis
from synth import parts
from synth.config import EYEBALL_FITS, check_au_gain, check_wrinkle_aus
from synth.head import build_loft, orient_outward
from synth.subdivide import loop_subdivision

MOVE_THRESHOLD_CM = 0.05   # a vertex belongs to an AU's region if the AU moves it this much
EYELID_CM = 0.10           # eyelid thickness: skin stays this far outside the eyeballs


@dataclass(frozen=True)
class Part:
    """One mesh to render. ``node`` says which rigid frame it rides in ("head" or "neck").

    ``colors``: (N, 3) float32 linear RGB in [0, 1] or None; ``uv``: (N, 2) texture coords
    for ``texture`` (the identity's face texture) or None. ``seg``: segmentation class id.
    """

    name: str
    vertices: np.ndarray
    triangles: np.ndarray
    normals: np.ndarray
    seg: int
    node: str = "head"
    colors: np.ndarray | None = None
    uv: np.ndarray | None = None
    texture: str | None = None
    roughness: float = 0.7
    tri_regions: np.ndarray | None = None   # (T,) uint32 AU-region bitmask per triangle
    metallic: float = 0.0
    alpha: float = 1.0                      # < 1: see-through (lenses); < 0.5 is not an occluder
    double_sided: bool = False
    instance: int = 0                       # occluder instance (1-based), 0 = not an occluder
    occluder_class: int = 0                 # synth.occluders.OCCLUDER_CLASSES value


SEG_CLASSES = {"background": 0, "face": 1, "eyes": 2, "mouth": 3, "head": 4, "neck": 5, "occluder": 6}


@dataclass
class IdentityGeometry:
    """Per-identity static data derived from shape coefficients (cached by the caller)."""

    base: np.ndarray                 # (Vf, 3) fine vertices, neutral expression
    eye_centers: np.ndarray          # (2, 3) right, left
    hair: np.ndarray                 # (Vf,) hair coverage in [0, 1] (loft vertices)
    arches: tuple[parts.Arch, parts.Arch]
    interior: dict = field(default_factory=dict)   # name -> (verts, tris, shade, jaw weight, normals)


class HeadRig:
    """Face + skull mesh with subdivided AU fields, and the parts that go with it."""

    def __init__(self, basis: FaceBasis | None = None, subdivisions: int = 1,
                 eyeball_fit: str = "behind_lids", wrinkles: float = 1.0,
                 wrinkle_aus: tuple[str, ...] | None = None, au_gain: dict[str, float] | None = None):
        if eyeball_fit not in EYEBALL_FITS:
            raise ValueError(f"eyeball_fit must be one of {EYEBALL_FITS}, not {eyeball_fit!r}")
        if not 0 <= wrinkles <= 3:
            raise ValueError(f"wrinkles must be in [0, 3], not {wrinkles!r}")
        self.eyeball_fit = eyeball_fit
        self.wrinkles = float(wrinkles)  # scale of the per-AU wrinkle maps (synth.identity.wrinkles)
        self.wrinkle_aus = check_wrinkle_aus(wrinkle_aus)  # which AUs' maps are painted (None: all)
        # per-AU displacement factors (identity.au_gain) go into the basis itself, so everything
        # posed from rig.basis (the photo backdrop's warp too) moves the same way as the skin
        self.basis = _with_gain(basis or load_basis(), check_au_gain(au_gain))
        b = self.basis
        self.loft = build_loft(b.neutral)
        coarse = np.concatenate([b.neutral, self.loft.vertices])
        face_tris = orient_outward(b.triangles, coarse, per_triangle=False)
        self.n_face_tris_coarse = len(face_tris)
        tris = np.concatenate([face_tris, self.loft.triangles])
        self.subdiv = loop_subdivision(tris, len(coarse), subdivisions)
        s = self.subdiv.matrix
        ext = self.loft.extend
        self.neutral = np.asarray(s @ coarse, dtype=np.float64)
        self.au_fields = np.stack([s @ (ext @ f) for f in b.au_fields]).astype(np.float32)
        self.shape_fields = np.stack([s @ (ext @ f) for f in b.shape_fields]).astype(np.float32)
        self.triangles = self.subdiv.triangles.astype(np.int64)
        parent = np.arange(len(self.triangles)) % len(tris)
        self.is_face_tri = parent < len(face_tris)
        self.jaw_weight = np.asarray(s @ np.concatenate([b.jaw_weight, np.zeros(len(self.loft.vertices))]))
        loft_w = np.zeros(len(coarse))
        loft_w[478:] = 1.0
        self.loft_weight = np.asarray(s @ loft_w)
        self.loft_dir = np.asarray(s @ np.concatenate([np.zeros((478, 3)), self.loft.direction]))
        self.loft_t = np.asarray(s @ np.concatenate([np.zeros(478), self.loft.t]))
        canon = np.concatenate([b.neutral[:, :2], np.zeros((len(self.loft.vertices), 2))])
        self.face_uv = np.asarray(s @ canon)
        self.face_uv = (self.face_uv - [-8.5, -10.0]) / [17.0, 19.0]
        self._incidence = _incidence(self.triangles, len(self.neutral))
        # skin that may slide over the teeth: face vertices within 4 cm of the mouth centre
        mouth = self.neutral[[13, 14]].mean(0)
        self._lip_zone = np.flatnonzero((np.linalg.norm(self.neutral - mouth, axis=1) < 4.0)
                                        & (self.loft_weight < 0.5))
        # triangles touching each hole's rim (eyes, mouth): the hole's contents inherit their AU bits
        self.rim_triangles = {name: np.isin(self.triangles, np.array(ring)).any(axis=1) for name, ring in (
            ("eye_r", lmk.R_UPPER_LID + lmk.R_LOWER_LID), ("eye_l", lmk.L_UPPER_LID + lmk.L_LOWER_LID),
            ("mouth", lmk.INNER_UPPER_LIP + lmk.INNER_LOWER_LIP))}
        self._eye_tpl = parts.eyeball()
        self._neck = parts.neck()
        self.neck_normals = mesh_normals(self._neck[0], self._neck[1])

    # ------------------------------------------------------------------ identity
    def prepare(self, shape: np.ndarray, hair_thickness: float = 0.0,
                hair: np.ndarray | None = None) -> IdentityGeometry:
        """Static fine geometry for shape coefficients (and hair volume on the skull)."""
        base = self.neutral + np.tensordot(np.asarray(shape, np.float32), self.shape_fields, axes=1)
        hair = np.zeros(len(base)) if hair is None else hair
        if hair_thickness > 0:
            base = base + (hair_thickness * hair)[:, None] * self.loft_dir
        centers = self.eye_centers(base)
        lip_y, front_z = float(base[[13, 14], 1].mean()), float(base[[13, 14], 2].mean())
        arches = parts.arches(lip_y, front_z)
        width = float(abs(base[78, 0] - base[308, 0]))
        return IdentityGeometry(base=base, eye_centers=centers, hair=hair, arches=arches,
                                interior=_interior(arches, lip_y, front_z, width))

    def eye_centers(self, base: np.ndarray) -> np.ndarray:
        """(2, 3) eyeball centres (right, left) for an identity's neutral fine vertices."""
        behind = self.eyeball_fit == "behind_lids"
        return np.stack([_fit_eye_center(base, lmk.R_UPPER_LID + lmk.R_LOWER_LID[1:-1], behind),
                         _fit_eye_center(base, lmk.L_UPPER_LID + lmk.L_LOWER_LID[1:-1], behind)])

    # ------------------------------------------------------------------ posing
    def deform(self, ident: IdentityGeometry, aus: np.ndarray) -> np.ndarray:
        """Fine skin vertices ``(Vf, 3)`` for rig AU intensities (FACS 0-5)."""
        aus32 = np.asarray(aus, np.float32)
        active = np.flatnonzero(aus32 > 0)
        v = ident.base.copy()
        if len(active):
            v += np.tensordot(aus32[active], self.au_fields[active], axes=1)
        v = _eyelid_collision(v, ident.eye_centers, self.loft_weight)
        return _lip_collision(v, ident.arches, self.basis.jaw_transform(np.asarray(aus, np.float64)),
                              self.jaw_weight, self._lip_zone)

    def normals(self, vertices: np.ndarray) -> np.ndarray:
        v = vertices[self.triangles]
        fn = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
        n = self._incidence @ fn
        return (n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)).astype(np.float32)

    def region_bits(self, aus: np.ndarray) -> np.ndarray:
        """(T,) uint32: bit k set on triangles that ``RIG_AUS[k]`` moves by > 0.5 mm."""
        aus = np.asarray(aus, np.float32)
        bits = np.zeros(len(self.neutral), np.uint32)
        for k in np.flatnonzero(aus > 0):
            moved = np.linalg.norm(self.au_fields[k], axis=1) * aus[k] > MOVE_THRESHOLD_CM
            bits[moved] |= np.uint32(1 << int(k))
        t = self.triangles
        return bits[t[:, 0]] | bits[t[:, 1]] | bits[t[:, 2]]

    def eyes(self, ident: IdentityGeometry, gaze_deg: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
        """Eyeball vertices (2, N, 3) and the 10 iris landmarks (10, 3) for a gaze.

        ``gaze_deg`` = (yaw, pitch): positive yaw looks towards +x, positive pitch up.
        Iris landmark order per eye: centre, then +x, +y, -x, -y rim points.
        """
        unit, _, _ = self._eye_tpl
        rot = _rot_y(np.radians(gaze_deg[0])) @ _rot_x(-np.radians(gaze_deg[1]))
        eye_v, iris = [], []
        rim = np.radians(np.degrees(np.arcsin(parts.IRIS_RADIUS / parts.EYE_RADIUS)))
        pts = np.array([[0, 0, 1], [np.sin(rim), 0, np.cos(rim)], [0, np.sin(rim), np.cos(rim)],
                        [-np.sin(rim), 0, np.cos(rim)], [0, -np.sin(rim), np.cos(rim)]])
        for c in ident.eye_centers:
            eye_v.append(c + parts.EYE_RADIUS * unit @ rot.T)
            iris.append(c + parts.EYE_RADIUS * pts @ rot.T)
        return np.stack(eye_v), np.concatenate(iris)

    def landmarks(self, skin: np.ndarray, iris: np.ndarray) -> np.ndarray:
        """The 478 landmarks (cm, head frame): subdivided surface points + iris points."""
        out = skin[:478].copy()
        out[lmk.N_FACE:] = iris
        return out


def _with_gain(basis: FaceBasis, gain: dict[str, float]) -> FaceBasis:
    """``basis`` with each AU field in ``gain`` scaled by its factor (the same basis if none)."""
    if not gain:
        return basis
    fields = basis.au_fields.copy()
    for name, factor in gain.items():
        fields[basis.au_names.index(name)] *= factor
    return dataclasses.replace(basis, au_fields=fields)


def _incidence(triangles: np.ndarray, n: int) -> sp.csr_matrix:
    rows = triangles.ravel()
    cols = np.repeat(np.arange(len(triangles)), 3)
    return sp.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, len(triangles))).tocsr()


def _fit_eye_center(v: np.ndarray, contour: tuple[int, ...], behind_lids: bool = True) -> np.ndarray:
    """Eyeball centre: the sphere through the lid margin, set back (``behind_lids``) until
    every margin point lies at least one eyelid thickness outside the eyeball.

    Why set back: :func:`_eyelid_collision` keeps skin that far out, and a margin fitted onto
    the eyeball (``behind_lids=False``, the rig before 2026-11-24) was pushed out at rest,
    which opened every neutral eye by ~16% (the photo identities' lid gap 0.31 -> 0.36 of the
    eye width): real neutral eyes then looked half closed next to any render.
    """
    pts = v[list(contour)]
    start = pts.mean(0) - np.array([0.0, 0.0, parts.EYE_RADIUS * 0.8])
    c = least_squares(lambda c: np.linalg.norm(pts - c, axis=1) - parts.EYE_RADIUS, start).x
    if not behind_lids:
        return c - np.array([0.0, 0.0, 0.03])
    # smallest move back along -z putting each point at >= shell: |p - c + t z| = shell
    shell, d = parts.EYE_RADIUS + EYELID_CM, pts - c
    t = -d[:, 2] + np.sqrt(np.maximum(d[:, 2] ** 2 - (d ** 2).sum(1) + shell ** 2, 0.0))
    return c - np.array([0.0, 0.0, max(float(t.max()), 0.0) + 0.005])


def _eyelid_collision(v: np.ndarray, centers: np.ndarray, loft_weight: np.ndarray) -> np.ndarray:
    """Push skin vertices that sink into an eyeball back onto its surface (lids slide over)."""
    r = parts.EYE_RADIUS + EYELID_CM   # also covers chords of large triangles
    for c in centers:
        d = v - c
        dist = np.linalg.norm(d, axis=1)
        inside = (dist < r) & (loft_weight < 0.5)
        if inside.any():
            v[inside] = c + d[inside] * (r / np.maximum(dist[inside], 1e-6))[:, None]
    return v


def _interior(arches, lip_y: float, front_z: float, width: float) -> dict:
    """Mouth interior meshes (teeth, tongue, cavity) with per-vertex jaw weights."""
    upper, lower = arches
    uv_, ut, us = parts.teeth(upper)
    lv, lt, ls = parts.teeth(lower)
    # both stay behind the arches (front at front_z - 0.8 / - 0.9) so they never poke through
    cav_v, cav_t = parts.ellipsoid([0, lip_y - 0.4, front_z - 2.6], [width * 0.5, 1.9, 1.8], inward=True)
    tg_v, tg_t = parts.ellipsoid([0, lip_y - 1.2, front_z - 2.5], [width * 0.38, 0.55, 1.6])
    items = {"upper_teeth": (uv_, ut, us, np.zeros(len(uv_))),
             "lower_teeth": (lv, lt, ls, np.ones(len(lv))),
             "cavity": (cav_v, cav_t, np.ones(len(cav_v)), np.clip((lip_y - 0.3 - cav_v[:, 1]) / 1.0, 0, 1)),
             "tongue": (tg_v, tg_t, np.ones(len(tg_v)), np.ones(len(tg_v)))}
    # rest-pose normals, computed once; posing rotates them with the jaw (see scene.py)
    return {k: (v, t, sh, w, mesh_normals(v, t)) for k, (v, t, sh, w) in items.items()}


def mesh_normals(v: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals (float32) of a small mesh."""
    fn = np.cross(v[t[:, 1]] - v[t[:, 0]], v[t[:, 2]] - v[t[:, 0]])
    n = np.zeros_like(v)
    for k in range(3):
        np.add.at(n, t[:, k], fn)
    return (n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def _lip_collision(v: np.ndarray, arches, jaw: np.ndarray, jaw_weight: np.ndarray,
                   zone: np.ndarray, margin: float = 0.12) -> np.ndarray:
    """Keep lip skin in front of the dental arches: lips slide over the teeth.

    Upper-face skin is tested against the upper arch (fixed to the skull); mandible skin
    (jaw weight >= 0.5) against the lower arch, in the jaw's rest frame.
    """
    upper, lower = arches
    pts = v[zone]
    on_jaw = jaw_weight[zone] >= 0.5
    inv = np.linalg.inv(jaw)
    rest = np.where(on_jaw[:, None], pts @ inv[:3, :3].T + inv[:3, 3], pts)
    for arch, sel in ((upper, ~on_jaw), (lower, on_jaw)):
        x, y, z = rest[:, 0], rest[:, 1], rest[:, 2]
        band = sel & (np.abs(x) < arch.half_width) & (y < arch.y_top) & (y > arch.y_bottom)
        front = arch.z(x) + margin
        push = band & (z < front) & (z > front - 1.0)
        rest[push, 2] = front[push]
    fixed = np.where(on_jaw[:, None], rest @ jaw[:3, :3].T + jaw[:3, 3], rest)
    v[zone] = fixed
    return v


def _rot_x(t: float) -> np.ndarray:
    c, s = np.cos(t), np.sin(t)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _rot_y(t: float) -> np.ndarray:
    c, s = np.cos(t), np.sin(t)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
