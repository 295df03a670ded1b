"""brainlab.images: one decoder for the loader, the audit and `brainlab doctor`, and one set of reasons."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from brainlab import data, images
from brainlab.audit import thumbnails
from conftest import brain_like, make_dataset

SIDE = 48
# a 12-bit scan (0..4095) with a gradient: stretched to 0..255, most pixels land between two gray levels,
# so any difference in how the two readers stretch and round shows
DEEP = (np.linspace(0, 4095, SIDE * SIDE).reshape(SIDE, SIDE) + np.arange(SIDE)[None, :] * 7 % 13).astype(np.uint16)


def _deep_file(tmp_path, mode: str):
    """DEEP saved in a format that Pillow opens in ``mode``."""
    if mode == "I;16":
        im, fmt = Image.fromarray(DEEP), "PNG"
    elif mode == "I;16B":
        im, fmt = Image.frombytes("I;16B", (SIDE, SIDE), DEEP.astype(">u2").tobytes()), "TIFF"
    elif mode == "I":
        im, fmt = Image.fromarray(DEEP.astype(np.int32)), "TIFF"
    else:
        im, fmt = Image.fromarray(DEEP.astype(np.float32) / 4095.0), "TIFF"
    path = tmp_path / f"deep.{fmt.lower()}"
    im.save(path, fmt)
    with Image.open(path) as check:
        assert check.mode == mode
    return path


@pytest.mark.parametrize("mode", ["I;16", "I;16B", "I", "F"])
def test_loader_and_audit_read_a_deep_image_identically(tmp_path, mode):
    path = _deep_file(tmp_path, mode)
    loaded = images.read_image(path, channels=1)[..., 0]  # native size: no resize
    thumb, size, _ = thumbnails.read_thumbnail(path.read_bytes(), size=SIDE)  # same size: no resize either
    assert size == (SIDE, SIDE)
    np.testing.assert_array_equal(loaded, thumb)
    expected = np.round((DEEP - DEEP.min()) / float(DEEP.max() - DEEP.min()) * 255).astype(np.uint8)
    assert np.abs(loaded.astype(int) - expected).max() <= (0 if mode != "F" else 1)  # float: rounding of /4095


def test_every_sixteen_bit_byte_order_is_stretched_the_same():
    native = Image.frombytes("I;16N", (SIDE, SIDE), DEEP.astype("=u2").tobytes())
    big = Image.frombytes("I;16B", (SIDE, SIDE), DEEP.astype(">u2").tobytes())
    little = Image.fromarray(DEEP)
    arrays = [np.asarray(images.to_8bit(im)) for im in (native, big, little)]
    assert arrays[0].min() == 0 and arrays[0].max() == 255
    for other in arrays[1:]:
        np.testing.assert_array_equal(arrays[0], other)
    flat = Image.frombytes("I;16N", (4, 4), np.full(16, 700, "=u2").tobytes())
    assert np.asarray(images.to_8bit(flat)).max() == 0  # no range to stretch: black, not a division by zero


def test_decode_gives_the_upright_size_even_when_a_jpeg_is_decoded_small(tmp_path):
    wide = brain_like(3, 400).resize((400, 200))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to view"
    path = tmp_path / "rotated.jpg"
    wide.save(path, "JPEG", exif=exif, quality=95)
    im, size = images.decode(path, "L", min_size=50)
    assert size == (200, 400)  # upright
    assert im.size[1] > im.size[0] and max(im.size) < 400  # decoded at a reduced scale, upright too
    with pytest.raises(ValueError, match="mode"):
        images.decode(path, "CMYK")


def test_loader_audit_and_doctor_give_the_same_reason_for_a_bad_file(tmp_path):
    root = make_dataset(tmp_path / "data", per_class=2, size=32)
    folder = root / "Training" / "glioma_tumor"
    good = (folder / "img0.jpg").read_bytes()
    bad = {"truncated.jpg": good[: len(good) // 3], "empty.jpg": b"", "notes.png": b"this is not an image"}
    for name, content in bad.items():
        (folder / name).write_bytes(content)
    loaded = dict(data.load_split("Training", root, image_size=16, progress=False).skipped)
    inventoried = dict(thumbnails.inventory(root, progress=False).unreadable)
    checked = {f"Training/glioma_tumor/{name}": images.check_image(folder / name) for name in bad}
    assert loaded == inventoried == checked
    assert "truncated" in checked["Training/glioma_tumor/truncated.jpg"]
    assert checked["Training/glioma_tumor/empty.jpg"] == "empty file (0 bytes)"
    assert checked["Training/glioma_tumor/notes.png"].startswith("not an image")
    assert images.check_image(folder / "img1.jpg") is None
    with pytest.raises(images.UnreadableImageError, match="truncated.jpg: truncated"):
        images.read_image(folder / "truncated.jpg")  # one clear message, and still an OSError for old callers
    assert issubclass(images.UnreadableImageError, OSError)


def test_pixel_hash_sees_what_the_loader_sees(tmp_path):
    """A transparent PNG and the same pixels laid on black are the same image to the loader, so to the audit."""
    rgba = Image.new("RGBA", (20, 20), (200, 200, 200, 255))
    rgba.paste((255, 255, 255, 0), (0, 0, 10, 20))
    flat = Image.new("L", (20, 20), 200)
    flat.paste(0, (0, 0, 10, 20))
    encoded = []
    for im in (rgba, flat):
        buffer = io.BytesIO()
        im.save(buffer, "PNG")
        encoded.append(buffer.getvalue())
    hashes = [thumbnails.read_thumbnail(b, size=20, pixel_hash=True)[2] for b in encoded]
    assert hashes[0] == hashes[1]
