"""Procedural meshes for the parts the face mesh lacks: eyeballs, mouth interior, neck.

All in the canonical head frame (cm, +x subject's left, +y up, +z out of the face).
Each builder returns ``(vertices (N, 3) float64, triangles (T, 3) int64, extra)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EYE_RADIUS = 1.2          # cm, adult eyeball
IRIS_RADIUS = 0.58        # cm
PUPIL_RADIUS = 0.22       # cm
# Polar angles (deg from the gaze axis) of the eyeball's rings: dense at the iris edges so
# the pupil and limbus stay crisp without many triangles.
_EYE_RINGS = (0, 4, 8, 10.5, 12, 14, 18, 22, 26, 28, 29.5, 31, 33, 38, 48, 62, 80, 100, 130, 160, 180)


def eyeball(segments: int = 24) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit-radius sphere around +z with rings at :data:`_EYE_RINGS`.

    Returns vertices (unit sphere, gaze = +z), triangles, and each vertex's polar angle
    in degrees (the caller colours pupil / iris / sclera from it).
    """
    verts, angle = [], []
    for a in _EYE_RINGS:
        th = np.radians(a)
        n = 1 if a in (0, 180) else segments
        for k in range(n):
            ph = 2 * np.pi * k / segments
            verts.append([np.sin(th) * np.cos(ph), np.sin(th) * np.sin(ph), np.cos(th)])
            angle.append(a)
    tris = []
    start = [0]
    for a in _EYE_RINGS[:-1]:
        start.append(start[-1] + (1 if a in (0, 180) else segments))
    for r in range(len(_EYE_RINGS) - 1):
        s0, s1 = start[r], start[r + 1]
        for k in range(segments):
            k2 = (k + 1) % segments
            if r == 0:
                tris.append([0, s1 + k, s1 + k2])
            elif r == len(_EYE_RINGS) - 2:
                tris.append([s0 + k, s1, s0 + k2])
            else:
                tris += [[s0 + k, s1 + k, s0 + k2], [s0 + k2, s1 + k, s1 + k2]]
    return np.array(verts), np.array(tris, dtype=np.int64), np.array(angle, dtype=np.float64)


def eye_colors(angle_deg: np.ndarray, iris_rgb: np.ndarray, sclera_rgb: np.ndarray) -> np.ndarray:
    """Per-vertex linear RGB of an eyeball from the polar angle of each vertex."""
    pupil = np.degrees(np.arcsin(PUPIL_RADIUS / EYE_RADIUS))
    iris = np.degrees(np.arcsin(IRIS_RADIUS / EYE_RADIUS))
    out = np.tile(np.asarray(sclera_rgb, float), (len(angle_deg), 1))
    in_iris = angle_deg <= iris
    t = np.clip((angle_deg - pupil) / (iris - pupil), 0, 1)[:, None]
    # the iris darkens towards its rim (limbal ring)
    out[in_iris] = (iris_rgb * (1.15 - 0.55 * t ** 2))[in_iris]
    out[angle_deg <= pupil] = 0.015
    out[(angle_deg > iris) & (angle_deg < iris + 3)] = sclera_rgb * 0.55
    return np.clip(out, 0, 1)


def _strip(xs: np.ndarray, z_of_x, y_top: float, y_bot: float) -> tuple[np.ndarray, np.ndarray]:
    """A curved vertical band along an arch ``z(x)``, two rows of vertices."""
    top = np.stack([xs, np.full_like(xs, y_top), z_of_x(xs)], 1)
    bot = np.stack([xs, np.full_like(xs, y_bot), z_of_x(xs)], 1)
    verts = np.concatenate([top, bot])
    n = len(xs)
    tris = []
    for i in range(n - 1):
        tris += [[i, n + i, i + 1], [i + 1, n + i, n + i + 1]]
    return verts, np.array(tris, dtype=np.int64)


@dataclass(frozen=True)
class Arch:
    """A dental arch: front surface ``z(x) = z0 - curvature * x^2`` between ``y_bottom`` and
    ``y_top`` (cm, mouth rest frame), for ``|x| <= half_width``."""

    z0: float
    curvature: float
    y_top: float
    y_bottom: float
    half_width: float = 2.2

    def z(self, x: np.ndarray) -> np.ndarray:
        return self.z0 - self.curvature * np.asarray(x) ** 2


def arches(lip_y: float, front_z: float) -> tuple[Arch, Arch]:
    """Upper and lower arches behind closed lips meeting at ``lip_y`` with inner-lip depth ``front_z``."""
    return (Arch(front_z - 0.55, 0.32, lip_y + 1.0, lip_y - 0.25),
            Arch(front_z - 0.72, 0.32, lip_y - 0.18, lip_y - 1.0))


def teeth(arch: Arch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dental arch as a band with darker gaps between teeth.

    Returns vertices, triangles and a per-vertex brightness factor (gaps are darker).
    """
    edges = np.array([0.0, 0.43, 0.80, 1.12, 1.40, 1.66, 1.92, arch.half_width])
    xs = np.unique(np.concatenate([-edges, edges, -(edges[:-1] + edges[1:]) / 2, (edges[:-1] + edges[1:]) / 2]))
    verts, tris = _strip(xs, arch.z, arch.y_top, arch.y_bottom)
    is_gap = np.isin(np.round(np.abs(xs), 3), np.round(edges[1:], 3))
    shade = np.where(np.concatenate([is_gap, is_gap]), 0.85, 1.0)
    return verts, tris, shade


def ellipsoid(center, radii, rings: int = 10, segments: int = 16, inward: bool = False):
    """Closed ellipsoid mesh; ``inward`` flips normals (for the mouth cavity)."""
    verts = [[0, 0, 1]]
    for r in range(1, rings):
        th = np.pi * r / rings
        for k in range(segments):
            ph = 2 * np.pi * k / segments
            verts.append([np.sin(th) * np.cos(ph), np.sin(th) * np.sin(ph), np.cos(th)])
    verts.append([0, 0, -1])
    verts = np.array(verts) * np.asarray(radii) + np.asarray(center)
    tris = [[0, 1 + k, 1 + (k + 1) % segments] for k in range(segments)]
    for r in range(rings - 2):
        a, b = 1 + r * segments, 1 + (r + 1) * segments
        for k in range(segments):
            k2 = (k + 1) % segments
            tris += [[a + k, b + k, a + k2], [a + k2, b + k, b + k2]]
    last, end = 1 + (rings - 2) * segments, len(verts) - 1
    tris += [[last + k, end, last + (k + 1) % segments] for k in range(segments)]
    tris = np.array(tris, dtype=np.int64)
    return verts, (tris[:, [0, 2, 1]] if inward else tris)


def neck(segments: int = 20, rings: int = 8) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Open elliptical cylinder from inside the head down out of frame.

    Returns vertices, triangles and each vertex's bend weight (1 at the top, follows the
    head's rotation; 0 at the bottom, fixed to the torso).
    """
    ys = np.linspace(-2.0, -30.0, rings)
    verts, weight = [], []
    for y in ys:
        for k in range(segments):
            ph = 2 * np.pi * k / segments
            verts.append([5.3 * np.cos(ph), y, -4.6 + 5.5 * np.sin(ph) + 0.12 * (y + 2.0) * -0.3])
            weight.append(np.clip((y + 22.0) / 20.0, 0.0, 1.0))
    tris = []
    for r in range(rings - 1):
        a, b = r * segments, (r + 1) * segments
        for k in range(segments):
            k2 = (k + 1) % segments
            tris += [[a + k, a + k2, b + k], [a + k2, b + k2, b + k]]
    return np.array(verts), np.array(tris, dtype=np.int64), np.array(weight)
