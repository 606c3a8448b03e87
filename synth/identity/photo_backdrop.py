"""The photo identity's backdrop (hair, ears, neck, the photo's background) warped with the head.

Part of :mod:`synth.identity.photo_scene` (see its docstring, "Head motion"): control points
on the face contour and the rig's skull loft move like the head (source pose and AUs ->
target pose and AUs), points on the neck move half as much, and points away from the head
stay on a background plane ``BACKGROUND_Z`` cm deep; a thin-plate spline interpolates the
displacement in between. Outputs are at the camera's size.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np
from scipy.interpolate import RBFInterpolator
from scipy.spatial import cKDTree

from aukit import landmarks as lmk
from synth.camera import NECK_PIVOT, Camera, head_matrix
from synth.identity import photo as photo_mod
from synth.identity.paint import srgb_to_linear
from synth.rig import HeadRig

if TYPE_CHECKING:
    from synth.identity.photo_scene import PhotoRecord

BACKGROUND_Z = -4.0              # cm: depth of the plane the static background is mapped on


def warp_backdrop(rec: PhotoRecord, rig: HeadRig, aus: np.ndarray, pose: dict, cam: Camera) -> dict:
    """The photo backdrop seen by ``cam`` with the head moved from its source pose and AUs
    to the target ones (module doc); output-size linear RGB and state map."""
    pid = rec.photo
    b = rig.basis
    size = cam.width
    src_pose = pid.source_pose
    scale, r0, t0 = pid.scale, pid.rotation, pid.translation
    c0 = t0 + scale * (r0 @ NECK_PIVOT - NECK_PIVOT)       # photo image frame of world points

    def world_to_photo(w: np.ndarray) -> np.ndarray:
        q = scale * w + c0
        return np.stack([q[:, 0], -q[:, 1]], 1)

    # head: the face contour and the skull loft's front (facing the camera in both views)
    tgt478 = pid.vertices.astype(np.float64) + np.tensordot(aus, b.au_fields, axes=1)
    tgt = photo_mod.combined(rig, tgt478)
    src = rec.source_coarse
    h_t = head_matrix(pose)
    loft_t = rig.loft.t
    dirs = np.concatenate([_coarse_normals(rig, tgt478), rig.loft.direction])
    facing_t = (dirs @ h_t[:3, :3].T)[:, 2]
    facing_s = (dirs @ r0.T)[:, 2]
    idx = np.arange(len(tgt))
    use = np.zeros(len(tgt), bool)
    use[list(lmk.FACE_OVAL)] = True
    loft = idx >= lmk.N_MESH
    lt = np.zeros(len(tgt))
    lt[lmk.N_MESH:] = loft_t
    use |= loft & (lt <= 0.5) & (facing_t > 0.05) & (facing_s > 0.05)
    p_tgt, _ = cam.project(tgt[use] @ h_t[:3, :3].T + h_t[:3, 3])
    q_src = pid.to_photo(src[use])
    # neck: moves with half the head rotation
    nv = rig._neck[0]
    n_s, n_t = head_matrix(src_pose, 0.5), head_matrix(pose, 0.5)
    nn = rig.neck_normals.astype(np.float64)
    front = ((nn @ n_t[:3, :3].T)[:, 2] > 0.2) & ((nn @ n_s[:3, :3].T)[:, 2] > 0.2) \
        & (nv[:, 1] < -11) & (nv[:, 1] > -22)          # below the chin: the neck top is inside the head
    pn_t, _ = cam.project(nv[front] @ n_t[:3, :3].T + n_t[:3, 3])
    qn_s = world_to_photo(nv[front] @ n_s[:3, :3].T + n_s[:3, 3])
    head_pts = np.concatenate([p_tgt, pn_t])
    head_q = np.concatenate([q_src, qn_s])
    # static background anchors away from the head (displacement 0)
    step = size / 5
    g = np.arange(-1.0 * size, 2.0 * size + 1, step)
    gx, gy = np.meshgrid(g, g)
    anchors = np.stack([gx.ravel(), gy.ravel()], 1)
    dist, _ = cKDTree(head_pts).query(anchors)
    anchors = anchors[dist > 0.35 * size]
    # smooth displacement from the static background mapping (thin-plate spline, evaluated on
    # a coarse grid and upsampled): no tears, and exact enough at the face contour
    disp = head_q - _static_map(cam, head_pts, world_to_photo)
    pts = np.concatenate([head_pts, anchors])
    vals = np.concatenate([disp, np.zeros((len(anchors), 2))])
    n_grid = 33
    lin = (np.arange(n_grid) + 0.5) * size / n_grid
    gx, gy = np.meshgrid(lin, lin)
    grid = np.stack([gx.ravel(), gy.ravel()], 1)
    rbf = RBFInterpolator(pts / size, vals, kernel="thin_plate_spline", smoothing=1e-3, degree=1)
    d = rbf(grid / size).reshape(n_grid, n_grid, 2).astype(np.float32)
    d = cv2.resize(d, (size, size), interpolation=cv2.INTER_LINEAR)
    ys, xs = np.mgrid[0:size, 0:size] + 0.5
    full = np.stack([xs.ravel(), ys.ravel()], 1)
    q = _static_map(cam, full, world_to_photo).reshape(size, size, 2) + d
    mapx = (q[..., 0] - 0.5).astype(np.float32)
    mapy = (q[..., 1] - 0.5).astype(np.float32)
    bd = _prefiltered_backdrop(rec, pid, cam)
    out = cv2.remap(bd, mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    state = cv2.remap(pid.backdrop_state, mapx, mapy, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT,
                      borderValue=2)
    return {"backdrop": out, "backdrop_state": state}


def _coarse_normals(rig: HeadRig, v478: np.ndarray) -> np.ndarray:
    from aukit.meshops import vertex_normals

    return vertex_normals(v478, photo_mod.face_triangles(rig.basis)).astype(np.float64)


def _static_map(cam: Camera, px: np.ndarray, world_to_photo) -> np.ndarray:
    """Photo pixels of what a static background plane shows at output pixels ``px``."""
    return world_to_photo(_unproject_plane(cam, px, z=BACKGROUND_Z))


def _unproject_plane(cam: Camera, px: np.ndarray, z: float) -> np.ndarray:
    """World points on the plane ``z`` seen at output pixels ``px`` (N, 2)."""
    x = (px[:, 0] - cam.cx) / cam.fx
    y = -(px[:, 1] - cam.cy) / cam.fy
    d_cam = np.stack([x, y, -np.ones(len(px))], 1)
    rot, origin = cam.pose[:3, :3], cam.pose[:3, 3]
    d = d_cam @ rot.T
    t = (z - origin[2]) / d[:, 2]
    return origin + d * t[:, None]


def _prefiltered_backdrop(rec: PhotoRecord, pid, cam: Camera) -> np.ndarray:
    """The backdrop in linear RGB, blurred for the output scale (cached per output size)."""
    # photo px per output px: the photo's scale (px/cm) over the camera's at the face
    ratio = pid.scale / (cam.fx / max(cam.pose[2, 3], 1.0))
    key = (cam.width, round(float(ratio), 1))
    hit = rec.backdrops.get(key)
    if hit is None:
        lin = srgb_to_linear(pid.backdrop.astype(np.float32) / 255.0).astype(np.float32)
        sigma = 0.45 * ratio
        if sigma > 0.6:
            lin = cv2.GaussianBlur(lin, (0, 0), sigma)
        if len(rec.backdrops) > 4:
            rec.backdrops.clear()
        hit = rec.backdrops[key] = lin
    return hit
