"""Backend-agnostic maths for the Blender backend (numpy only, no ``bpy``).

Kept apart from :mod:`synth.render.blender_backend` so it can be tested without the
``[blender]`` extra: camera intrinsics as Blender lens/sensor/shift, light orientations,
the Cycles seed of a sample, how parts map onto Blender meshes, and depth from an id image
(the same definition as pyrender's z-buffer depth).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synth.camera import Camera
from synth.render import compose

SENSOR_WIDTH_MM = 36.0


@dataclass(frozen=True)
class BlenderCamera:
    """A Blender perspective camera equivalent to a pinhole :class:`Camera`."""

    lens_mm: float
    sensor_width_mm: float
    shift_x: float
    shift_y: float


def blender_camera(cam: Camera) -> BlenderCamera:
    """Lens, sensor and shift reproducing ``cam``'s intrinsics exactly.

    Blender (sensor fit ``HORIZONTAL``) maps a camera-space direction ``(x, y, -d)`` to the
    continuous pixel position ``u = W/2 + f_px x/d - shift_x W`` (origin at the image's left
    edge) and ``v = H/2 - f_px y/d + shift_y W`` (v down), with ``f_px = lens / sensor * W``;
    shifts are in units of the larger image side, here the width. :meth:`Camera.project` uses
    ``u = cx + fx x/d``, ``v = cy - fy y/d`` in the same continuous pixel frame, hence the
    formulas below. Square pixels (``fx == fy``) and landscape or square images only.
    """
    w, h = cam.width, cam.height
    if h > w or abs(cam.fx - cam.fy) > 1e-9 * cam.fx:
        raise ValueError("the Blender camera needs fx == fy and width >= height")
    return BlenderCamera(lens_mm=float(cam.fx / w * SENSOR_WIDTH_MM), sensor_width_mm=SENSOR_WIDTH_MM,
                         shift_x=float((w / 2 - cam.cx) / w), shift_y=float((cam.cy - h / 2) / w))


def light_rotation(azimuth: float, elevation: float) -> np.ndarray:
    """3x3 world rotation whose -z axis points from the light to the subject.

    Blender's sun and spot lamps shine along their local -z, as pyrender's directional
    light does, so this is the same pose as the pyrender backend's.
    """
    z = compose.light_direction(azimuth, elevation)
    x = np.cross([0.0, 1.0, 0.0], z)
    x = x / np.linalg.norm(x) if np.linalg.norm(x) > 1e-6 else np.array([1.0, 0.0, 0.0])
    return np.stack([x, np.cross(z, x), z], 1)


def cycles_seed(spec) -> int:
    """Cycles seed of a sample: a hash of the run seed and the sample index.

    Derived per sample so that consecutive images do not share one noise pattern, and
    reproducible from the label alone.
    """
    ss = np.random.SeedSequence([int(spec.seed), 0xB1E, int(spec.index)])
    return int(ss.generate_state(1, dtype=np.uint32)[0] & 0x7FFFFFFF)


# ---------------------------------------------------------------------------- parts -> meshes
@dataclass(frozen=True)
class PartLayout:
    """How one :class:`synth.rig.Part` becomes Blender faces.

    ``primary``: indices of the part's triangles put in the shared (colour + id) mesh;
    ``back``: (triangle index, id index) pairs drawn reversed in an id-only mesh, so that a
    back-face-culled id pass sees what pyrender sees. A part given with each triangle twice
    (both windings, e.g. the teeth) keeps one winding for shading and its reversed copies
    in ``back`` with their own ids; a ``double_sided`` part is seen from behind with the
    ids of its front faces.
    """

    primary: np.ndarray
    back_tris: np.ndarray      # (B,) triangle indices (into part.triangles) drawn reversed
    back_ids: np.ndarray       # (B,) triangle indices whose id the reversed face carries


def part_layout(part) -> PartLayout:
    tris = np.asarray(part.triangles)
    keys = {}
    primary, dup_of = [], {}
    for i, t in enumerate(map(tuple, tris)):
        rot = _canonical(t)
        rev = _canonical((t[0], t[2], t[1]))
        if rev in keys:
            dup_of[keys[rev]] = i
        else:
            keys.setdefault(rot, i)
            primary.append(i)
    primary = np.asarray(primary, np.int64)
    back_tris, back_ids = [], []
    double = bool(getattr(part, "double_sided", False))
    for i in primary:
        if i in dup_of:
            back_tris.append(i)
            back_ids.append(dup_of[i])
        elif double:
            back_tris.append(i)
            back_ids.append(i)
    return PartLayout(primary, np.asarray(back_tris, np.int64), np.asarray(back_ids, np.int64))


def _canonical(t: tuple) -> tuple:
    """A triangle up to rotation of its vertex order (winding kept)."""
    k = int(np.argmin(t))
    return (t[k], t[(k + 1) % 3], t[(k + 2) % 3])


def signed_volume(part) -> float:
    """Signed volume (cm^3) enclosed by a part's triangles: negative for a closed shell whose
    faces point inwards (the mouth cavity, meant to be seen from inside)."""
    v = np.asarray(part.vertices, np.float64)[np.asarray(part.triangles)]
    return float(np.einsum("ij,ij->i", v[:, 0], np.cross(v[:, 1], v[:, 2])).sum() / 6.0)


def inside_out(part, layout: PartLayout) -> bool:
    """A single-sided closed shell facing inwards (encloses a negative volume)."""
    return not len(layout.back_tris) and signed_volume(part) < -1e-3


def mesh_groups(parts) -> list[list[int]]:
    """Indices of parts grouped by shared vertex arrays (face + head share the skin)."""
    groups: dict[int, list[int]] = {}
    for i, p in enumerate(parts):
        groups.setdefault(id(p.vertices), []).append(i)
    return list(groups.values())


def id_offsets(parts) -> list[int]:
    """Global id offset of each part: the id of its triangle ``j`` is ``offset + j + 1``."""
    out, acc = [], 0
    for p in parts:
        out.append(acc)
        acc += len(p.triangles)
    return out


def id_rgb(ids: np.ndarray) -> np.ndarray:
    """(N,) global ids -> (N, 3) float32 colours in [0, 1] (24-bit, as :func:`labels.id_colors`)."""
    ids = np.asarray(ids, np.int64)
    return (np.stack([ids & 255, (ids >> 8) & 255, (ids >> 16) & 255], 1) / 255.0).astype(np.float32)


# ---------------------------------------------------------------------------- depth
def world_triangles(geom) -> np.ndarray:
    """(T, 3, 3) every triangle of the scene in world space, in global id order."""
    out = []
    for p in geom.parts:
        m = geom.frames[p.node]
        out.append(p.vertices[p.triangles] @ m[:3, :3].T + m[:3, 3])
    return np.concatenate(out) if out else np.zeros((0, 3, 3))


def depth_from_ids(geom, ids: np.ndarray) -> np.ndarray:
    """Depth (cm along the view axis, 0 = background) of an id image.

    Intersects the ray through each pixel centre with the plane of the triangle seen there:
    the value a z-buffer interpolates at the pixel centre (pyrender's depth).
    """
    cam = geom.camera
    h, w = ids.shape
    depth = np.zeros((h, w), np.float32)
    rows, cols = np.nonzero(ids > 0)
    if not len(rows):
        return depth
    tris = world_triangles(geom)
    tid = ids[rows, cols] - 1
    ok = tid < len(tris)
    rows, cols, tid = rows[ok], cols[ok], tid[ok]
    inv = np.linalg.inv(cam.pose)
    a, b, c = (tris[tid, k] @ inv[:3, :3].T + inv[:3, 3] for k in range(3))
    n = np.cross(b - a, c - a)
    ray = np.stack([(cols + 0.5 - cam.cx) / cam.fx, -(rows + 0.5 - cam.cy) / cam.fy, -np.ones(len(rows))], 1)
    den = np.einsum("ij,ij->i", n, ray)
    num = np.einsum("ij,ij->i", n, a)
    fallback = -(a[:, 2] + b[:, 2] + c[:, 2]) / 3
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(np.abs(den) > 1e-12 * np.linalg.norm(n, axis=1), num / den, fallback)
    depth[rows, cols] = t
    return depth
