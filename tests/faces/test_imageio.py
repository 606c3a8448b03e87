"""aukit.imageio: every input mode becomes uint8 RGB; bad files raise ImageError with a reason."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aukit.imageio import ImageError, load_image, load_image_info

REPO = Path(__file__).resolve().parents[2]


def save(img: Image.Image, path: Path, **kw) -> Path:
    img.save(path, **kw)
    return path


def test_grayscale_becomes_three_equal_channels(tmp_path):
    gray = np.tile(np.arange(0, 250, 10, dtype=np.uint8), (8, 1))
    out = load_image(save(Image.fromarray(gray, "L"), tmp_path / "g.png"))
    assert out.dtype == np.uint8 and out.shape == (8, 25, 3)
    assert np.array_equal(out[..., 0], gray) and np.array_equal(out[..., 0], out[..., 2])


def test_cmyk_jpeg_decodes_to_rgb(tmp_path):
    rgb = np.zeros((16, 16, 3), np.uint8)
    rgb[:, :8] = (200, 30, 30)
    rgb[:, 8:] = (30, 30, 200)
    path = save(Image.fromarray(rgb).convert("CMYK"), tmp_path / "c.jpg", quality=95)
    assert Image.open(path).mode == "CMYK"
    out = load_image(path)
    assert out.shape == (16, 16, 3)
    assert np.abs(out[4, 2].astype(int) - (200, 30, 30)).max() < 20
    assert np.abs(out[4, 13].astype(int) - (30, 30, 200)).max() < 20


def test_16bit_gray_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257 * 10, 257 * 128, 65535]], dtype=np.uint16)
    path = save(Image.fromarray(values), tmp_path / "g16.png")
    assert Image.open(path).mode.startswith("I")
    out = load_image(path)
    assert out[0, :, 0].tolist() == [0, 10, 128, 255]


def test_16bit_rgb_png(tmp_path):
    cv2 = pytest.importorskip("cv2")
    bgr = np.zeros((4, 4, 3), np.uint16)
    bgr[..., 2] = 65535          # red
    bgr[..., 1] = 257 * 100      # green
    cv2.imwrite(str(tmp_path / "c16.png"), bgr)
    out = load_image(tmp_path / "c16.png")
    assert out[0, 0].tolist() == [255, 100, 0]


def test_float_tiff_in_unit_range(tmp_path):
    arr = np.array([[0.0, 0.5, 1.0]], dtype=np.float32)
    out = load_image(save(Image.fromarray(arr, "F"), tmp_path / "f.tif"))
    assert out[0, :, 0].tolist() == [0, 128, 255]


def test_palette_transparency_is_composited_on_white(tmp_path):
    pal = Image.new("P", (4, 4), 0)
    pal.putpalette([255, 0, 0] + [0, 0, 255] + [0, 0, 0] * 254)
    pal.putpixel((0, 0), 1)
    path = save(pal, tmp_path / "p.png", transparency=0)
    out = load_image(path)
    assert out[0, 0].tolist() == [0, 0, 255]       # opaque palette entry
    assert out[2, 2].tolist() == [255, 255, 255]   # transparent entry -> white


def test_rgba_half_transparent_blends_with_white(tmp_path):
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = 128
    out = load_image(save(Image.fromarray(rgba, "RGBA"), tmp_path / "a.png"))
    expect = np.round(np.array([200, 0, 0]) * 128 / 255 + 255 * (1 - 128 / 255))
    assert np.abs(out[0, 0].astype(int) - expect).max() <= 1


def test_gray_with_alpha(tmp_path):
    la = Image.merge("LA", [Image.new("L", (2, 2), 0), Image.new("L", (2, 2), 0)])
    assert load_image(save(la, tmp_path / "la.png"))[0, 0].tolist() == [255, 255, 255]


@pytest.mark.parametrize("orientation,rot", [(6, -1), (8, 1), (3, 2)])
def test_exif_orientation_is_applied(tmp_path, orientation, rot):
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :20] = (255, 0, 0)   # left half red, so any rotation is visible
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = save(Image.fromarray(arr), tmp_path / "r.jpg", exif=exif, quality=98)
    info = load_image_info(path)
    expected = np.rot90(arr, k=rot)  # k=-1: 90 degrees clockwise (orientation 6)
    assert info.pixels.shape == expected.shape
    assert info.original_size == (expected.shape[1], expected.shape[0])
    assert np.abs(info.pixels.astype(int) - expected).mean() < 8


def test_multiframe_gif_gives_first_frame(tmp_path):
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 255, 0))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    assert load_image(path)[0, 0].tolist() == [255, 0, 0]


def test_downscale_and_scale(tmp_path):
    path = save(Image.new("RGB", (1000, 500), (10, 20, 30)), tmp_path / "big.png")
    info = load_image_info(path, max_side=200)
    assert info.pixels.shape == (100, 200, 3)
    assert info.original_size == (1000, 500) and info.scale == pytest.approx(0.2)
    assert load_image(path).shape == (500, 1000, 3)  # never upscaled, default max_side


def test_jpeg_draft_keeps_scale_exact(tmp_path):
    path = save(Image.new("RGB", (3001, 1999), (90, 90, 90)), tmp_path / "big.jpg")
    info = load_image_info(path, max_side=512)
    assert max(info.pixels.shape[:2]) == 512
    assert info.scale == pytest.approx(info.pixels.shape[1] / 3001)


@pytest.mark.parametrize("content,reason", [
    (b"", "empty"),
    (b"this is a text file, not a picture\n" * 10, "not-an-image"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 200, "corrupt"),
])
def test_bad_files_raise_with_reason(tmp_path, content, reason):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(ImageError) as err:
        load_image(path)
    assert err.value.reason == reason and str(path) in str(err.value)
    assert isinstance(err.value, ValueError)


def test_missing_file(tmp_path):
    with pytest.raises(ImageError, match="missing"):
        load_image(tmp_path / "nope.jpg")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_file(tmp_path, fmt):
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, format=fmt)
    path = tmp_path / f"t.{fmt.lower()}"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ImageError) as err:
        load_image(path)
    assert err.value.reason in ("truncated", "corrupt")


def test_non_jpeg_over_pixel_limit_is_refused(tmp_path):
    path = save(Image.new("L", (3000, 3000)), tmp_path / "big.png")
    with pytest.raises(ImageError) as err:
        load_image(path, max_pixels=4_000_000)
    assert err.value.reason == "too-large"


# VmHWM (peak RSS of this process image), not ru_maxrss: the latter survives fork+exec, so it
# would report the size of the pytest process that started us.
_HUGE = """
import json, sys
from aukit.imageio import load_image_info
info = load_image_info(sys.argv[1], max_side=1024)
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
print(json.dumps({"shape": list(info.pixels.shape), "scale": info.scale, "size": info.original_size,
                  "maxrss_mb": int(hwm) / 1024}))
"""


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="needs Linux /proc for peak RSS")
def test_10k_jpeg_loads_without_full_decode(tmp_path):
    """A 10k x 10k JPEG (300 MB as RGB) loads in a process that never exceeds ~200 MB."""
    path = tmp_path / "huge.jpg"
    subprocess.run([sys.executable, "-c", "import sys; from PIL import Image; "
                    "Image.new('L', (10000, 10000), 128).save(sys.argv[1], quality=50)", str(path)],
                   check=True)
    res = subprocess.run([sys.executable, "-c", _HUGE, str(path)], check=True, capture_output=True,
                         text=True, cwd=REPO)
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert got["shape"] == [1024, 1024, 3] and got["size"] == [10000, 10000]
    assert got["scale"] == pytest.approx(0.1024)
    assert got["maxrss_mb"] < 200, got
