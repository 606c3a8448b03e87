"""Robust photo loading: any common file -> ``uint8 (H, W, 3)`` RGB, or a clear ``ImageError``.

Rules (documented in docs/faces.md):

* **Modes.** Grayscale (``L``, ``I;16``, ``I``, ``F``), palette, CMYK, YCbCr, LAB and
  16-bit RGB(A) all become 8-bit RGB. 16-bit integer data is scaled by ``1/257``; 32-bit
  integer data is treated as 16-bit when its maximum exceeds 255 (else as 8-bit); float
  data is read as ``[0, 1]`` when its maximum is <= 1, else as ``[0, 255]``, and clipped.
  Embedded ICC profiles are ignored (values are taken as sRGB).
* **Alpha** (RGBA, LA, palette transparency) is composited on **white**: transparent
  cut-outs of faces then look like a studio background rather than black.
* **EXIF orientation** is applied, so the result is upright; sizes and scales below refer
  to the upright image.
* **Huge images.** JPEGs are decoded at a reduced DCT scale (``draft``) close to
  ``max_side``, so a 10k x 10k JPEG never exists at full size in memory. Other formats are
  decoded in full only if they hold at most ``max_pixels`` pixels (default 120 M, i.e.
  ~360 MB as RGB); larger ones are refused. The result is downscaled to at most
  ``max_side`` pixels on its longer side; :func:`load_image_info` reports the scale.
* **Bad files** (missing, empty, truncated, corrupt, not an image, too large) raise
  :class:`ImageError` with a short machine-readable ``reason`` and a readable message.
  Multi-frame files (GIF, TIFF) give their first frame.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

DEFAULT_MAX_SIDE = 4096
DEFAULT_MAX_PIXELS = 120_000_000
WHITE = (255, 255, 255)


class ImageError(ValueError):
    """A file that cannot be used as a photo. ``reason`` is one of ``missing``, ``empty``,
    ``not-an-image``, ``truncated``, ``corrupt``, ``too-large``, ``unsupported``."""

    def __init__(self, path: str | Path, reason: str, detail: str):
        super().__init__(f"{path}: {reason}: {detail}")
        self.path = str(path)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class LoadedImage:
    """A decoded photo.

    ``pixels``: uint8 (H, W, 3) RGB, upright. ``original_size``: (width, height) of the
    upright file image in pixels. ``scale``: output pixels per original pixel (<= 1), so
    ``xy_original = xy_output / scale``.
    """

    pixels: np.ndarray
    original_size: tuple[int, int]
    scale: float


def load_image(path: str | Path, max_side: int = DEFAULT_MAX_SIDE,
               max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode ``path`` into uint8 (H, W, 3) RGB with ``max(H, W) <= max_side``.

    Raises :class:`ImageError` for anything that is not a usable image.
    """
    return load_image_info(path, max_side, max_pixels).pixels


def load_image_info(path: str | Path, max_side: int = DEFAULT_MAX_SIDE,
                    max_pixels: int = DEFAULT_MAX_PIXELS) -> LoadedImage:
    """Like :func:`load_image`, also returning the original size and the scale applied."""
    if max_side < 1:
        raise ValueError(f"max_side must be >= 1, got {max_side}")
    path = Path(path)
    if not path.is_file():
        raise ImageError(path, "missing", "no such file")
    if path.stat().st_size == 0:
        raise ImageError(path, "empty", "file has zero bytes")
    try:
        with warnings.catch_warnings():
            # We enforce our own pixel limit below; PIL's warning would only add noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                return _decode(im, path, max_side, max_pixels)
    except ImageError:
        raise
    except UnidentifiedImageError as exc:
        if _has_image_magic(path):  # starts like an image but PIL cannot parse it
            raise ImageError(path, "corrupt", "image header is damaged") from exc
        raise ImageError(path, "not-an-image", "not a recognised image format") from exc
    except Image.DecompressionBombError as exc:
        raise ImageError(path, "too-large", str(exc)) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        # PIL signals truncation and corrupt data with OSError/SyntaxError/ValueError.
        reason = "truncated" if "truncated" in str(exc).lower() else "corrupt"
        raise ImageError(path, reason, str(exc) or type(exc).__name__) from exc
    except MemoryError as exc:
        raise ImageError(path, "too-large", "out of memory while decoding") from exc


def _decode(im: Image.Image, path: Path, max_side: int, max_pixels: int) -> LoadedImage:
    """Decode an opened image under the memory rules of the module docstring."""
    orientation = _exif_orientation(im)
    width, height = im.size
    upright = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
    if im.format == "JPEG":
        # DCT-domain downscale (1/2, 1/4, 1/8) to no less than max_side: cheap and exact enough.
        ratio = max_side / max(width, height)
        if ratio < 1:
            im.draft(im.mode if im.mode in ("RGB", "L") else None,
                     (max(1, int(width * ratio)), max(1, int(height * ratio))))
    if im.size[0] * im.size[1] > max_pixels:
        raise ImageError(path, "too-large",
                         f"{width}x{height} = {width * height / 1e6:.0f} M pixels exceeds the "
                         f"limit of {max_pixels / 1e6:.0f} M for this format")
    im.load()  # the first frame of multi-frame files
    im = ImageOps.exif_transpose(im)
    rgb = _to_rgb(im, path)
    rgb = _fit(rgb, max_side)
    scale = rgb.size[0] / upright[0]
    return LoadedImage(np.asarray(rgb, dtype=np.uint8).copy(), upright, float(scale))


_MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"BM", b"II*\x00", b"MM\x00*", b"RIFF")


def _has_image_magic(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(8).startswith(_MAGIC)


def _exif_orientation(im: Image.Image) -> int:
    try:
        return int(im.getexif().get(0x0112, 1))
    except Exception:  # malformed EXIF must not make a good image unreadable
        return 1


def _to_rgb(im: Image.Image, path: Path) -> Image.Image:
    """8-bit RGB from any PIL mode; alpha composited on white."""
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return Image.fromarray(_high_depth_to_u8(np.asarray(im), mode)).convert("RGB")
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif mode == "PA":
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "La", "RGBa"):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, WHITE + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if im.mode in ("RGB", "L", "1", "CMYK", "YCbCr", "LAB", "HSV", "RGBX"):
        return im.convert("RGB")
    raise ImageError(path, "unsupported", f"image mode {im.mode!r} is not supported")


def _high_depth_to_u8(arr: np.ndarray, mode: str) -> np.ndarray:
    """uint8 from 16/32-bit integer or float single-channel data (rules in module doc)."""
    a = arr.astype(np.float64)
    peak = float(a.max()) if a.size else 0.0
    if mode == "F":
        a = a * 255.0 if peak <= 1.0 else a
    elif mode.startswith("I;16") or peak > 255:
        a = a / 257.0
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def _fit(im: Image.Image, max_side: int) -> Image.Image:
    """Downscale so the longer side is at most ``max_side`` (never upscales)."""
    w, h = im.size
    if max(w, h) <= max_side:
        return im
    ratio = max_side / max(w, h)
    size = (max(1, round(w * ratio)), max(1, round(h * ratio)))
    return im.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
