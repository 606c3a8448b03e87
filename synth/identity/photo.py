"""Photo-reconstructed identities: one real photo -> a re-posable, re-expressible face.

:func:`reconstruct` turns a photo and its 478 MediaPipe landmarks into a
:class:`PhotoIdentity`, stored as one ``.npz`` file (:func:`save` / :func:`load`), so
rendering never runs detection. Method (details and measured limits in
``docs/photo_identities.md``):

1. **Crop.** A square of ``CROP_FACTOR`` x the LM68 landmark box around the face, at the
   photo's own resolution (at most ``CROP_MAX`` px): the *backdrop* (hair, ears, neck,
   background) and the source of the face texture.
2. **Fit** (:func:`aukit.fitting.fit_landmarks`): pose, identity shape and the source's AU
   vector (bounded to [0, 5]); the per-vertex residual ("detail") keeps the mesh on the
   landmarks. The *identity mesh* is the fitted mesh minus the fields of the AUs' excess
   over :func:`aukit.fitting.neutral_allowance` (what neutral photos fit anyway: below
   it, a fitted AU is as likely the person's eye aperture or lip shape as expression),
   with the lips closed: the source expression is removed, and the renderer adds exactly
   the target AUs. ``expression="keep"`` skips the removal, for sources known to be neutral.
3. **Texture.** Each surface point's photo position is the fitted source-posed mesh
   projected into the crop (``photo_xy``; the fit is a similarity, so projection commutes
   with the rig's subdivision and is exact on the fine mesh). The photo is resampled
   through these positions into a fixed cylindrical UV layout of the rig's face
   (:mod:`synth.identity.photo_uv`, ``TEXTURE_SIZE`` px): surfaces hidden in the photo then never share
   texels with the surface in front of them, and the rig's per-AU wrinkle maps can be
   mapped onto it once per rig.
4. **Visibility** per vertex: facing the camera (normal's z, smoothstep) and not hidden
   (z-buffer). Where the photo sees the surface poorly (the far side of a turned face,
   what the nose hides) the texture is filled from the mirror side (the canonical layout
   is symmetric about u = 0.5), blended by visibility, with the mirrored side's brightness
   matched where the two meet; ``confidence`` = how well the texture is known per vertex.
   The eyes and the mouth interior are not taken from the photo: the rig's eyeballs
   (iris and sclera colours sampled from the photo) and teeth/tongue/cavity are rendered;
   eyelid skin comes from the photo's lids (stretched when eyes close).
5. **Backdrop**: the crop with the inner face (where the re-posed face is always opaque)
   and anything outside the photo inpainted; ``backdrop_state`` says which pixels are
   real (0), inpainted face (1) or outside the photo (2), for hole checks.
6. **Lighting**: a first-order spherical-harmonics light (ambient + direction) fitted to
   the skin's luminance against the fitted normals. The renderer multiplies the texture by
   ``S(n_target) / S(n_source)``, so expressions and head turns change the shading while
   the neutral re-render reproduces the photo.
7. **Pose limits**: the yaw and pitch ranges (rig frame) over which less than
   ``HOLE_LIMIT`` of the visible face has a poorly known texture.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import cv2
import numpy as np

from aukit import landmarks as lmk
from aukit.aus import RIG_AUS
from aukit.basis import FaceBasis
from aukit.fitting import fit_landmarks, inter_ocular, neutral_allowance
from aukit.meshops import geodesic_from, laplacian, smooth_fill, vertex_normals
from synth.head import orient_outward
from synth.identity.photo_file import (FORMAT, FORMAT_VERSION, PhotoIdentity, load,  # noqa: F401
                                       read_meta, save)
from synth.identity.photo_light import eye_colours, fit_light
from synth.identity.photo_uv import TEXTURE_SIZE, texture_layout
from synth.identity.raster import depth_visible, interpolate, rasterize

if TYPE_CHECKING:
    from synth.rig import HeadRig

CROP_FACTOR = 2.4          # crop side / LM68 box side
CROP_LIFT = 0.06           # crop centre above the box centre (fraction of the crop side)
CROP_MAX = 512             # px: backdrop resolution cap (the photo's own resolution below it)
CROP_MIN = 64              # px (smaller faces are upsampled to this)
FEATHER_CM = 0.9           # the re-posed face fades into the backdrop over this band (cm)
MARGIN_CM = 2.0            # ... and over this wider band on the sides (see opacity())
VISIBLE_COS = (0.0, 0.4)    # normal . view: 0 visibility below, full above
CONF_MIN = 0.35            # texture confidence below this counts as a hole
HOLE_LIMIT = 0.02          # pose limits: at most this fraction of the visible face is holes
POSE_GRID = np.arange(-45, 46, 5.0)



#: what :func:`reconstruct` does with the source photo's fitted expression
EXPRESSION_MODES = ("remove", "keep")


class ReconstructionError(ValueError):
    """A face that cannot be reconstructed; ``reason`` is short and machine-readable."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


# ---------------------------------------------------------------------------- reconstruction
def reconstruct(image: np.ndarray, landmarks: np.ndarray, *, source: str = "", source_sha1: str = "",
                face_index: int = 0, n_faces: int = 1, person: str | None = None,
                loaded_scale: float = 1.0, rig: "HeadRig | None" = None,
                expression: str = "remove") -> PhotoIdentity:
    """Reconstruct the face with MediaPipe ``landmarks`` (478, 3 pixels) of uint8 RGB ``image``.

    ``expression``: ``"remove"`` (default) subtracts the fitted AUs' excess over the neutral
    allowance; ``"keep"`` keeps the whole fitted face (lips still closed), for sources known to
    be neutral, whose fitted AUs are then the person's resting face, not an expression.
    """
    if expression not in EXPRESSION_MODES:
        raise ValueError(f"expression must be one of {EXPRESSION_MODES}, not {expression!r}")
    rig = rig or default_rig()
    b = rig.basis
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected uint8 (H, W, 3) RGB, got {image.dtype} {image.shape}")
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (lmk.N_MESH, 3) or not np.isfinite(lm).all():
        raise ReconstructionError("bad-landmarks", f"expected finite (478, 3) landmarks, got {lm.shape}")
    pts = lm[list(lmk.LM68), :2]
    box_side = float(np.max(pts.max(0) - pts.min(0)))
    if box_side < 8:
        raise ReconstructionError("tiny-face", f"landmark box of {box_side:.1f} px")
    side = CROP_FACTOR * box_side
    cx, cy = (pts.min(0) + pts.max(0)) / 2
    cy -= CROP_LIFT * side
    size = int(np.clip(round(side), CROP_MIN, CROP_MAX))
    k = size / side
    crop, valid = _crop(image, cx - side / 2, cy - side / 2, k, size)
    lm_tex = lm.copy()
    lm_tex[:, :2] = (lm[:, :2] - [cx - side / 2, cy - side / 2]) * k
    lm_tex[:, 2] *= k

    fit = fit_landmarks(lm_tex, b)
    v_src = fit.model(b)
    # remove the source expression: the fitted AUs beyond what neutral photos fit anyway
    removed = np.maximum(fit.aus - neutral_allowance(), 0.0) if expression == "remove" else np.zeros_like(fit.aus)
    v_id = close_lips(fit.model(b, aus=fit.aus - removed), b)
    tris = face_triangles(b)
    q_src = fit.to_image(v_src)
    xy = np.stack([q_src[:, 0], -q_src[:, 1]], 1)

    # visibility in the photo: facing the camera, not hidden (z-buffer), inside the photo
    normals = vertex_normals(v_src, tris).astype(np.float64) @ fit.rotation.T
    vis = _smoothstep((normals[:, 2] - VISIBLE_COS[0]) / (VISIBLE_COS[1] - VISIBLE_COS[0]))
    vis = vis * depth_visible(xy, q_src[:, 2], tris, (size, size), tolerance=0.3 * fit.scale)
    pix = np.clip(xy.astype(int), 0, size - 1)
    vis = vis * valid[pix[:, 1], pix[:, 0]]
    vis[lmk.N_FACE:] = 0.0
    confidence = vis + (1 - vis) * vis[b.mirror]

    gray = _is_grayscale(crop)
    fine_xy = _project(rig.subdiv.matrix @ combined(rig, v_src), fit.scale, fit.rotation, fit.translation)
    fine_vis = rig.subdiv.matrix @ np.concatenate([vis, np.zeros(len(rig.loft.vertices))])
    texture = _unwrap(crop, rig, fine_xy, fine_vis)
    light, skin_lum = fit_light(crop, xy, normals, vis)
    iris, sclera = eye_colours(crop, lm_tex)
    backdrop, state = _backdrop(crop, valid, xy, v_id, vis, tris, b)
    limits = _pose_limits(v_id, tris, confidence, opacity(v_id, vis, b))
    out_frac = _outside_fraction(valid, lm_tex)
    meta = {
        "format": FORMAT, "version": FORMAT_VERSION, "source": str(source), "source_sha1": source_sha1,
        "face_index": int(face_index), "n_faces": int(n_faces),
        "person": person if person is not None else source_sha1,
        "image_size": [int(image.shape[1]), int(image.shape[0])], "loaded_scale": float(loaded_scale),
        "grayscale": bool(gray),
        "crop": {"x0": float(cx - side / 2), "y0": float(cy - side / 2), "side": float(side), "size": size},
        "fit": {"residual": round(fit.residual, 5), "pose": {k2: round(v, 3) for k2, v in fit.pose.items()},
                "aus": {a: round(float(v), 4) for a, v in zip(RIG_AUS, fit.aus)},
                "removed_aus": {a: round(float(v), 4) for a, v in zip(RIG_AUS, removed) if v > 0},
                "expression": expression,
                "inter_ocular_px": round(float(inter_ocular(lm)), 3)},
        "light": [round(float(x), 5) for x in light], "skin_luminance": round(float(skin_lum), 5),
        "eyes": {"iris": [round(float(x), 5) for x in iris], "sclera": [round(float(x), 5) for x in sclera]},
        "pose_limits": limits, "outside_fraction": round(float(out_frac), 4),
        "visible_fraction": round(float(vis[:lmk.N_FACE].mean()), 4),
    }
    return PhotoIdentity(meta=meta, vertices=v_id.astype(np.float32), shape=fit.shape.astype(np.float32),
                         source_aus=fit.aus.astype(np.float32), removed_aus=removed.astype(np.float32),
                         scale=float(fit.scale),
                         rotation=fit.rotation.astype(np.float64), translation=fit.translation.astype(np.float64),
                         source_vertices=v_src.astype(np.float32), photo_xy=xy.astype(np.float32),
                         visibility=vis.astype(np.float32), confidence=confidence.astype(np.float32),
                         texture=texture, photo=crop, backdrop=backdrop, backdrop_state=state)


@functools.lru_cache(maxsize=1)
def default_rig() -> "HeadRig":
    """The rig identities are built with (one subdivision, like the renderer's default)."""
    from synth.rig import HeadRig

    return HeadRig()


def combined(rig: "HeadRig", v478: np.ndarray) -> np.ndarray:
    """Coarse face + skull-loft vertices for face vertices ``v478`` (loft follows the face
    oval, as in :meth:`synth.rig.HeadRig.prepare`)."""
    b = rig.basis
    coarse = np.concatenate([b.neutral, rig.loft.vertices])
    return coarse + rig.loft.extend @ (np.asarray(v478, np.float64) - b.neutral)


def _project(v: np.ndarray, scale: float, rot: np.ndarray, trans: np.ndarray) -> np.ndarray:
    q = scale * np.asarray(v) @ rot.T + trans
    return np.stack([q[:, 0], -q[:, 1]], 1)


def _unwrap(crop: np.ndarray, rig: "HeadRig", fine_xy: np.ndarray, fine_vis: np.ndarray,
            size: int = TEXTURE_SIZE) -> np.ndarray:
    """The photo resampled into the rig's UV layout, poorly seen parts filled by symmetry."""
    _, ids, bary = texture_layout(rig, size)
    tris = rig.triangles[rig.is_face_tri]
    m = ids >= 0
    pxy = interpolate(ids, bary, tris, fine_xy)
    w_own = np.clip(interpolate(ids, bary, tris, fine_vis), 0, 1)
    mapx = np.where(m, pxy[..., 0] - 0.5, -1).astype(np.float32)
    mapy = np.where(m, pxy[..., 1] - 0.5, -1).astype(np.float32)
    own = cv2.remap(crop, mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).astype(np.float64)
    w_mir = w_own[:, ::-1]
    mirrored = own[:, ::-1]
    m_mir = m[:, ::-1]
    w_mir = np.where(m_mir, w_mir, 0.0)
    denom = w_own + (1 - w_own) * w_mir
    alpha = np.where(denom > 1e-3, w_own / np.maximum(denom, 1e-3), 1.0)
    # keep the photo's own low-frequency shading on the filled side (it is lit differently):
    # the mirrored detail is scaled by the ratio of the two sides' blurred brightness, the
    # own side's blur weighted by how well the photo sees it
    sigma = size / 24.0
    w = (w_own * m).astype(np.float32)
    low_own = cv2.GaussianBlur((own * w[..., None]).astype(np.float32), (0, 0), sigma) \
        / np.maximum(cv2.GaussianBlur(w, (0, 0), sigma), 1e-3)[..., None]
    wm = m_mir.astype(np.float32)
    low_mir = cv2.GaussianBlur((mirrored * wm[..., None]).astype(np.float32), (0, 0), sigma) \
        / np.maximum(cv2.GaussianBlur(wm, (0, 0), sigma), 1e-3)[..., None]
    gain = np.clip(low_own.mean(2) / np.maximum(low_mir.mean(2), 1.0), 0.4, 2.5)
    mirrored = mirrored * gain[..., None]
    out = alpha[..., None] * own + (1 - alpha[..., None]) * mirrored
    out = _extend(out, m)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _extend(img: np.ndarray, mask: np.ndarray, levels: int = 6) -> np.ndarray:
    """Fill pixels outside ``mask`` smoothly from inside (pull-push), so texture filtering at
    the face border never reads unrelated texels."""
    if mask.all():
        return img
    w = mask.astype(np.float64)
    pyr = [(img * w[..., None], w)]
    for _ in range(levels):
        c, ww = pyr[-1]
        h, wd = ww.shape
        if min(h, wd) < 4:
            break
        pyr.append((cv2.resize(c, (wd // 2, h // 2), interpolation=cv2.INTER_AREA),
                    cv2.resize(ww, (wd // 2, h // 2), interpolation=cv2.INTER_AREA)))
    c, ww = pyr[-1]
    filled = c / np.maximum(ww, 1e-6)[..., None]
    for c, ww in reversed(pyr[:-1]):
        up = cv2.resize(filled, (ww.shape[1], ww.shape[0]), interpolation=cv2.INTER_LINEAR)
        filled = np.where(ww[..., None] > 1e-6, c / np.maximum(ww, 1e-6)[..., None], up)
    return np.where(mask[..., None], img, filled)


def close_lips(v: np.ndarray, basis: FaceBasis, support: float = 2.0) -> np.ndarray:
    """The identity mesh with its inner lip margins meeting midway (the rig's neutral has
    closed lips; a residual opening the AU fit left would show teeth at "neutral")."""
    up = np.array(lmk.INNER_UPPER_LIP[1:-1])
    lo = np.array(lmk.INNER_LOWER_LIP[1:-1])
    mid = 0.5 * (v[up] + v[lo])
    ids = np.concatenate([up, lo])
    moves = np.concatenate([mid - v[up], mid - v[lo]])
    n = lmk.N_FACE
    dist = geodesic_from(v[:n], basis.triangles, ids)
    zero = np.setdiff1d(np.union1d(np.array(lmk.FACE_OVAL), np.flatnonzero(dist > support)), ids)
    lap = laplacian(v[:n], basis.triangles)
    field = smooth_fill(lap, np.concatenate([ids, zero]),
                        np.concatenate([moves, np.zeros((len(zero), 3))]))
    out = np.asarray(v, np.float64).copy()
    out[:n] += field
    return out


def face_triangles(basis: FaceBasis) -> np.ndarray:
    """The basis' skin triangles wound outwards (normals point out of the face)."""
    return orient_outward(basis.triangles, basis.neutral, per_triangle=False)


def _crop(image: np.ndarray, x0: float, y0: float, k: float, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The square ``[x0, x0 + size / k]`` of ``image`` at ``size`` px, and where it is inside."""
    img = image
    if k < 0.75:  # prefilter a large downscale: resize first (area), then translate only
        img = cv2.resize(image, (max(1, round(image.shape[1] * k)), max(1, round(image.shape[0] * k))),
                         interpolation=cv2.INTER_AREA)
        kx, ky = img.shape[1] / image.shape[1], img.shape[0] / image.shape[0]
        m = np.array([[1.0, 0, -x0 * kx + 0.5 * (k / kx - 1)], [0, 1.0, -y0 * ky + 0.5 * (k / ky - 1)]])
        m[0, 0], m[1, 1] = k / kx, k / ky
    else:
        m = np.array([[k, 0, -k * x0 + 0.5 * (k - 1)], [0, k, -k * y0 + 0.5 * (k - 1)]])
    crop = cv2.warpAffine(img, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    ones = np.full(img.shape[:2], 255, np.uint8)
    valid = cv2.warpAffine(ones, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                           borderValue=0) > 127
    if not valid.all():
        # outside the photo: its reflection, fading into a blur away from the edge
        dist = cv2.distanceTransform((~valid).astype(np.uint8), cv2.DIST_L2, 3)
        blur = cv2.GaussianBlur(crop, (0, 0), max(2.0, 0.04 * size))
        t = np.clip(dist / max(2.0, 0.06 * size), 0, 1)[..., None]
        filled = (1 - t) * crop + t * blur
        crop = np.where(valid[..., None], crop, np.clip(np.rint(filled), 0, 255)).astype(np.uint8)
    return crop, valid


def _is_grayscale(img: np.ndarray) -> bool:
    c = img.astype(np.int16)
    return bool(np.abs(c[..., 0] - c[..., 1]).max() <= 3 and np.abs(c[..., 1] - c[..., 2]).max() <= 3)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def feather_weights(vertices: np.ndarray, basis: FaceBasis, width: float = FEATHER_CM) -> np.ndarray:
    """(478,) in [0, 1]: 0 on the face contour, 1 beyond ``width`` cm inside it (geodesic)."""
    d = geodesic_from(vertices[:lmk.N_FACE], basis.triangles, np.array(lmk.FACE_OVAL))
    out = np.ones(lmk.N_MESH)
    out[:lmk.N_FACE] = _smoothstep(d / width)
    return out


def opacity(vertices: np.ndarray, visibility: np.ndarray, basis: FaceBasis) -> np.ndarray:
    """(478,) opacity of the re-posed face over the backdrop: 0 on the contour, 1 inside.

    Along the sides of the face (temples, cheeks) the ramp is ``MARGIN_CM`` wide instead of
    ``FEATHER_CM``: there MediaPipe's contour often lies outside the true cheek silhouette,
    so the texture holds the silhouette itself, and any misregistration with the warped
    backdrop would show it twice; the backdrop shows it once. Forehead, chin and jaw keep
    the narrow ramp (the chin moves with the jaw AUs; the backdrop must not show the
    photo's mouth or chin there). ``visibility`` is not used: a surface the photo saw
    poorly may face the camera in the target view, where the backdrop would show the
    photo's face a second time. (Edge-on surface in the *target* view fades per frame,
    ``synth.identity.photo_scene``.)"""
    del visibility
    narrow = feather_weights(vertices, basis)
    wide = feather_weights(vertices, basis, MARGIN_CM)
    n = basis.neutral
    lateral = _smoothstep((np.abs(n[:, 0]) - 4.0) / 2.0) * _smoothstep((n[:, 1] + 4.5) / 2.0)
    return narrow * (1.0 - (1.0 - wide) * lateral)


def _backdrop(crop: np.ndarray, valid: np.ndarray, xy: np.ndarray, v_id: np.ndarray, vis: np.ndarray,
              tris: np.ndarray, b: FaceBasis) -> tuple[np.ndarray, np.ndarray]:
    """Photo crop with the inner face (always covered by the re-posed face) and the area
    outside the photo inpainted; and the state map (0 photo, 1 inner face, 2 outside)."""
    size = crop.shape[0]
    f = opacity(v_id, vis, b)
    ids, bary = rasterize(xy, tris, (size, size))
    inner = interpolate(ids, bary, tris, f) > 0.98
    holes = np.zeros((size, size), np.uint8)
    for ring in ((*lmk.R_UPPER_LID, *lmk.R_LOWER_LID[::-1][1:-1]), (*lmk.L_UPPER_LID, *lmk.L_LOWER_LID[::-1][1:-1]),
                 (*lmk.INNER_UPPER_LIP, *lmk.INNER_LOWER_LIP[::-1][1:-1])):
        cv2.fillPoly(holes, [np.round(xy[list(ring)] * 4).astype(np.int32)], 1, shift=2)
    inner = inner | holes.astype(bool)
    inner = cv2.erode(inner.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    state = np.zeros((size, size), np.uint8)
    state[inner] = 1
    state[~valid] = 2
    if not inner.any():
        return crop.copy(), state
    out = cv2.inpaint(crop, inner.astype(np.uint8), 3, cv2.INPAINT_TELEA)
    return out, state


def _pose_limits(v_id: np.ndarray, tris: np.ndarray, confidence: np.ndarray,
                 feather: np.ndarray) -> dict[str, list[float]]:
    """Yaw and pitch ranges (deg, rig frame) where at most HOLE_LIMIT of the visible face
    (weighted by its opacity over the backdrop) has a texture confidence below CONF_MIN
    (pure geometry, orthographic, no self-occlusion: conservative)."""
    from synth.camera import rotation

    conf_t = confidence[tris].mean(1)
    weight = feather[tris].mean(1)
    low = conf_t < CONF_MIN
    out = {}
    for axis in ("yaw", "pitch"):
        ok = []
        for ang in POSE_GRID:
            rot = rotation(ang if axis == "yaw" else 0.0, ang if axis == "pitch" else 0.0, 0.0)
            p = v_id @ rot.T
            a, bb, c = p[tris[:, 0]], p[tris[:, 1]], p[tris[:, 2]]
            z = np.cross(bb - a, c - a)[:, 2] * 0.5 * weight   # projected area (front > 0) x opacity
            front = z > 0
            total = z[front].sum()
            ok.append(total > 0 and z[front & low].sum() / total <= HOLE_LIMIT)
        ok = np.array(ok)
        zero = int(np.argmin(np.abs(POSE_GRID)))
        lo = hi = zero
        if ok[zero]:
            while lo > 0 and ok[lo - 1]:
                lo -= 1
            while hi < len(ok) - 1 and ok[hi + 1]:
                hi += 1
            out[axis] = [float(POSE_GRID[lo]), float(POSE_GRID[hi])]
        else:
            out[axis] = [0.0, 0.0]
    return out


def _outside_fraction(valid: np.ndarray, lm_tex: np.ndarray) -> float:
    """Fraction of the crop-rule box (what a rendered sample shows) outside the photo."""
    from aukit.crop import crop_box

    box = crop_box(lm_tex[:, :2])
    x0, y0 = int(np.floor(box.x0)), int(np.floor(box.y0))
    side = int(np.ceil(box.side))
    pad = np.pad(valid, side, constant_values=False)
    win = pad[y0 + side:y0 + 2 * side, x0 + side:x0 + 2 * side]
    return float(1.0 - win.mean()) if win.size else 1.0
