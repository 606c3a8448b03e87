"""aukit.crop: landmarks mapped into the crop frame the way every annotator receives them."""

from __future__ import annotations

import numpy as np

from aukit.crop import CropBox


def test_landmarks_to_crop_maps_xy_and_scales_z_alike():
    box = CropBox(cx=100.0, cy=60.0, side=80.0)                  # x0 = 60, y0 = 20
    lm = np.array([[60.0, 20.0, 8.0], [140.0, 100.0, -4.0], [100.0, 60.0, 0.0]])
    out = box.landmarks_to_crop(lm, 128)
    assert out.dtype == np.float32 and out.shape == (3, 3)
    np.testing.assert_allclose(out, [[0, 0, 12.8], [128, 128, -6.4], [64, 64, 0]], atol=1e-5)
    np.testing.assert_allclose(out[:, :2], box.to_crop(lm[:, :2], 128), atol=1e-5)
