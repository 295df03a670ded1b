"""Reading and checking one image file: every decoder quirk in one place.

Whoever decodes an image in brainlab (the loader in :mod:`brainlab.data`, the audit in
:mod:`brainlab.audit`, ``brainlab doctor``) goes through :func:`decode`, so they all see the same
pixels and give the same reasons for a file they cannot read:

- any file name: a PNG named ``.jpg`` is read as a PNG (Pillow looks at the content);
- EXIF orientation: a photo taken sideways is turned upright, and its size is the upright size;
- any mode: palette, CMYK, transparency (transparent pixels become black, the MRI background),
  16-bit and 32-bit integer and float images (stretched from their own minimum and maximum to 0..255);
- JPEGs asked for at a small size are decoded at 1/2, 1/4 or 1/8 scale (much faster);
- ``crop="head"`` cuts the frame to the head (:func:`head_crop`), so that heads framed tightly
  by one source and loosely by another fill the image alike;
- empty, truncated, corrupt or enormous files raise :class:`UnreadableImageError`, whose ``reason``
  says which in words a person can act on.
"""
from __future__ import annotations

import io
import os
import struct
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from brainlab.errors import BrainlabError

__all__ = ["BOX_QUANTILE", "CROPS", "HEAD_MARGIN", "IMAGE_SUFFIXES", "UnreadableImageError",
           "check_image", "content_box", "decode", "head_crop", "otsu_threshold", "read_image", "to_8bit"]

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".gif", ".webp"}
# Modes with more than 8 bits per pixel: integer (16 and 32 bits, any byte order) and float.
_WIDE_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")
CROPS = ("none", "head")  # what read_image's ``crop`` accepts
BOX_QUANTILE = 0.02  # the head box leaves out this share of foreground pixels on each side
HEAD_MARGIN = 0.05  # head_crop keeps this share of the head's size as a border on each side
# What Pillow raises for a file it cannot decode: unknown format and cut-off files (OSError),
# broken structures (SyntaxError, ValueError, struct.error, EOFError) and decompression bombs.
_DECODER_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error, Image.DecompressionBombError)


class UnreadableImageError(BrainlabError, OSError):
    """A file that does not decode as an image; ``reason`` says why, ``path`` which file."""

    def __init__(self, reason: str, path=None):
        self.reason, self.path = reason, path
        super().__init__(f"{path}: {reason}" if path is not None else reason)


def _reason(exc: BaseException) -> str:
    """A short reason a person can act on, for what Pillow raised."""
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, UnidentifiedImageError):
        return "not an image (the file's content is not a known image format)"
    if isinstance(exc, Image.DecompressionBombError):
        return f"image too large to decode safely ({exc})"
    if "truncated" in str(exc).lower():
        return f"truncated file: the end of the image is missing ({exc})"
    return f"cannot decode: corrupt or unsupported file ({type(exc).__name__}: {exc})"


def to_8bit(im: Image.Image) -> Image.Image:
    """Bring any Pillow mode to one that converts faithfully to ``L`` or ``RGB``.

    Images with more than 8 bits (:data:`_WIDE_MODES`) are stretched from their minimum to their
    maximum onto 0..255 (rounded), so a 12-bit scan uses the whole gray range; a flat image
    becomes black. Palette images with transparency and images with an alpha channel are laid
    on black. Other modes are returned as they are.
    """
    if im.mode in _WIDE_MODES:
        arr = np.asarray(im, dtype=np.float32)
        lo, hi = float(arr.min()), float(arr.max())
        scaled = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
        return Image.fromarray(scaled.round().astype(np.uint8), mode="L")
    if im.mode == "P":
        im = im.convert("RGBA") if "transparency" in im.info else im.convert("RGB")
    if im.mode in ("RGBA", "LA", "PA"):
        im = im.convert("RGBA")
        background = Image.new("RGBA", im.size, (0, 0, 0, 255))
        return Image.alpha_composite(background, im).convert("RGB")
    return im


def decode(source, mode: str | None = None, min_size: int | None = None,
           jpeg_gray: bool = False) -> tuple[Image.Image, tuple[int, int]]:
    """Decode an image file (a path or its bytes) upright and in 8 bits.

    Returns ``(image, (width, height))``: the image in ``mode`` (``"L"`` or ``"RGB"``; ``None``
    keeps the 8-bit mode :func:`to_8bit` gives) and the size of the whole upright image.
    With ``min_size``, a JPEG is decoded at the smallest scale (1/2, 1/4 or 1/8) at which both
    sides stay at least ``min_size``: the returned image may then be smaller than the file.
    ``jpeg_gray=True`` lets that decoder produce grayscale directly (the audit's thumbnails;
    slightly different rounding from decoding in color and converting).
    Raises :class:`UnreadableImageError` for a file that does not decode.
    """
    if mode not in (None, "L", "RGB"):
        raise ValueError(f"mode must be 'L', 'RGB' or None, not {mode!r}")
    is_bytes = isinstance(source, (bytes, bytearray, memoryview))
    where = None if is_bytes else Path(source)
    try:
        if (len(source) if is_bytes else os.path.getsize(source)) == 0:
            raise UnreadableImageError("empty file (0 bytes)", where)
        with Image.open(io.BytesIO(source) if is_bytes else source) as im:
            width, height = im.size
            if im.getexif().get(0x0112, 1) in (5, 6, 7, 8):  # EXIF says: rotate by 90 degrees
                width, height = height, width
            if min_size and im.format == "JPEG":
                im.draft("L" if jpeg_gray else None, (min_size, min_size))
            im.load()
            im = to_8bit(ImageOps.exif_transpose(im))
            if mode:
                im = im.convert(mode)
    except UnreadableImageError:
        raise
    except _DECODER_ERRORS as exc:
        raise UnreadableImageError(_reason(exc), where) from exc
    return im, (width, height)


def otsu_threshold(gray: np.ndarray) -> int:
    """The gray level that best splits ``gray`` into two classes (Otsu's method): head vs background."""
    p = np.bincount(gray.ravel(), minlength=256) / gray.size
    weight = np.cumsum(p)  # share of pixels at or below each level
    mean = np.cumsum(p * np.arange(256))
    between = (mean[-1] * weight - mean) ** 2 / np.maximum(weight * (1 - weight), 1e-12)
    return int(np.argmax(between))


def content_box(thumb: np.ndarray) -> tuple[float, float, float, float]:
    """Fractions to cut (left, top, right, bottom) so that the frame fits the head.

    The head is the pixels above the Otsu threshold. Each side leaves out :data:`BOX_QUANTILE`
    of those pixels, so a stray bright speck or a thin frame line does not move the box.
    """
    mask = thumb > otsu_threshold(thumb)
    if mask.sum() < 16:
        return (0.0, 0.0, 0.0, 0.0)

    def cuts(profile):
        share = np.cumsum(profile) / profile.sum()
        first = np.searchsorted(share, BOX_QUANTILE)
        last = np.searchsorted(share, 1 - BOX_QUANTILE) + 1
        return first / len(profile), 1 - last / len(profile)

    left, right = cuts(mask.sum(0))
    top, bottom = cuts(mask.sum(1))
    return (left, top, right, bottom)


def head_crop(im: Image.Image, margin: float = HEAD_MARGIN) -> Image.Image:
    """The square around the head (:func:`content_box`) with a ``margin`` border; black where it leaves the frame.

    The box is found on a 128x128 grayscale thumbnail; an image with no clear head is returned as it is.
    """
    thumb = np.asarray(im.convert("L").resize((128, 128), Image.Resampling.BILINEAR))
    left, top, right, bottom = content_box(thumb)
    if (left, top, right, bottom) == (0.0, 0.0, 0.0, 0.0):
        return im
    w, h = im.size
    x0, x1, y0, y1 = left * w, (1 - right) * w, top * h, (1 - bottom) * h
    side = round(max(x1 - x0, y1 - y0) * (1 + 2 * margin))
    left, top = round((x0 + x1 - side) / 2), round((y0 + y1 - side) / 2)
    return im.crop((left, top, left + side, top + side))  # Pillow fills what lies outside the image with black


def read_image(path, image_size: int | None = None, channels: int = 3, crop: str = "none") -> np.ndarray:
    """Decode one image file to a ``uint8`` array of shape (H, W, channels).

    Works for what people really have (see :func:`decode`): grayscale, RGB, RGBA, palette,
    CMYK and 16-bit images, PNGs named ``.jpg``, photos with an EXIF rotation. With
    ``image_size``, the image is resized to a square of that side (bilinear, like
    ``keras.utils.image_dataset_from_directory``). ``crop="head"`` first cuts the square around
    the head (:func:`head_crop`). Raises :class:`UnreadableImageError` (an ``OSError``) with the
    reason for a file that is not a readable image.
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, not {channels}")
    if crop not in CROPS:
        raise ValueError(f"crop must be one of {', '.join(CROPS)}, not {crop!r}")
    cropping = crop == "head"
    im, _ = decode(path, "L" if channels == 1 else "RGB", min_size=image_size and image_size * (2 if cropping else 1))
    if cropping:
        im = head_crop(im)
    if image_size:
        im = im.resize((image_size, image_size), Image.Resampling.BILINEAR)
    arr = np.asarray(im, dtype=np.uint8)
    return arr[..., None] if channels == 1 else arr


def check_image(path) -> str | None:
    """``None`` when ``path`` decodes as the loader decodes it, else a short reason a person can act on."""
    try:
        decode(path, "RGB", min_size=8)
    except UnreadableImageError as exc:
        return exc.reason
    return None
