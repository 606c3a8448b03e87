"""Head pose, camera placement and the crop-framed pinhole camera (shared by all backends).

World frame = the head's canonical frame at zero pose (cm). The head rotates about
:data:`NECK_PIVOT`; the camera sits on the +z axis looking down -z (OpenGL convention).
The image is the crop box of :func:`aukit.crop.crop_box` applied to the projected
landmarks, realised exactly by choosing the intrinsics (no resampling).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aukit.crop import CropBox, crop_box

NECK_PIVOT = np.array([0.0, -4.5, -5.5])   # cm: head rotates about the top of the spine
CAMERA_TARGET = np.array([0.0, 0.5, 0.0])  # cm: camera aims at the mid-face
F_REF = 1000.0                             # px: focal length of the uncropped reference image


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """3x3 head rotation for the pose convention of :mod:`aukit.schema` (degrees)."""
    y, p, r = np.radians([yaw, pitch, roll])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(-p), -np.sin(-p)], [0, np.sin(-p), np.cos(-p)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return rz @ rx @ ry


def head_matrix(pose: dict[str, float], fraction: float = 1.0) -> np.ndarray:
    """4x4 head-to-world transform; ``fraction`` scales the angles (the neck bends partly)."""
    rot = rotation(pose["yaw"] * fraction, pose["pitch"] * fraction, pose["roll"] * fraction)
    m = np.eye(4)
    m[:3, :3] = rot
    m[:3, 3] = NECK_PIVOT - rot @ NECK_PIVOT
    return m


@dataclass(frozen=True)
class Camera:
    """Pinhole camera: ``pose`` (4x4 camera-to-world), intrinsics in output pixels."""

    pose: np.ndarray
    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int
    crop: CropBox            # crop box in reference-image pixels

    def view(self, world: np.ndarray) -> np.ndarray:
        """World points (N, 3) -> camera coordinates (N, 3); in front of the camera z < 0."""
        inv = np.linalg.inv(self.pose)
        return world @ inv[:3, :3].T + inv[:3, 3]

    def project(self, world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates (N, 2) (x right, y down) and depth (N,) in cm."""
        c = self.view(world)
        depth = -c[:, 2]
        uv = np.stack([self.cx + self.fx * c[:, 0] / depth, self.cy - self.fy * c[:, 1] / depth], 1)
        return uv, depth

    def scaled(self, k: int) -> "Camera":
        """The same view rendered ``k`` times larger (for supersampling)."""
        return Camera(self.pose, self.fx * k, self.fy * k, self.cx * k, self.cy * k,
                      self.width * k, self.height * k, self.crop)

    @property
    def fov_deg(self) -> float:
        return float(np.degrees(2 * np.arctan(self.height / (2 * self.fy))))


def camera_pose(distance_cm: float) -> np.ndarray:
    m = np.eye(4)
    m[:3, 3] = CAMERA_TARGET + np.array([0.0, 0.0, distance_cm])
    return m


def framed_camera(landmarks_world: np.ndarray, distance_cm: float, size: int,
                  jitter: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> Camera:
    """Camera whose image is the crop box of the landmarks (478, 3 world), ``size`` px square.

    ``jitter`` = (dx, dy, dscale) as fractions of the box side, mimicking detector noise.
    """
    pose = camera_pose(distance_cm)
    ref = Camera(pose, F_REF, F_REF, 0.0, 0.0, 0, 0, CropBox(0, 0, 1))
    uv, _ = ref.project(landmarks_world)
    box = crop_box(uv)
    box = CropBox(box.cx + jitter[0] * box.side, box.cy + jitter[1] * box.side, box.side * (1 + jitter[2]))
    k = size / box.side
    return Camera(pose, F_REF * k, F_REF * k, (0.0 - box.x0) * k, (0.0 - box.y0) * k, size, size, box)
