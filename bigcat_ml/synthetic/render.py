"""Pixels of the sample: each image's displayed RGB canvas, its JPEG bytes, and corruption.

Boxes always refer to the *displayed* image, i.e. after the EXIF Orientation is applied
(``PIL.ImageOps.exif_transpose``), as in real OID: an EXIF-rotated file stores its pixels
rotated, so a reader that ignores the tag crops the wrong place.
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image

from bigcat_ml.synthetic.catalogue import BOX_CLASSES, render_pattern
from bigcat_ml.synthetic.plan import STORE_TRANSPOSE, PlannedImage

EXIF_ORIENTATION_TAG = 0x0112


def render_displayed(rng: np.random.Generator, image: PlannedImage) -> np.ndarray:
    """The displayed (EXIF-applied) RGB pixels: a muted gradient, then each box's pattern."""
    h, w = image.height, image.width
    y, x = np.mgrid[0:h, 0:w]
    t = (x / w * 0.6 + y / h * 0.4)[..., None]
    c0, c1 = rng.integers(70, 150, size=(2, 3))
    pixels = c0 * (1 - t) + c1 * t + rng.normal(0, 6, size=(h, w, 3))
    canvas = np.clip(pixels, 0, 255).astype(np.uint8)
    for box in image.boxes:
        canvas[box.y0 : box.y1, box.x0 : box.x1] = render_pattern(
            BOX_CLASSES[box.label].style, box.y1 - box.y0, box.x1 - box.x0
        )
    return canvas


def encode_jpeg(displayed: np.ndarray, mode: str, orientation: int, quality: int) -> bytes:
    """JPEG bytes in ``mode``; with an EXIF ``orientation``, the stored pixels are turned
    so that ``exif_transpose`` of the decoded file gives ``displayed`` back."""
    image = Image.fromarray(displayed, "RGB").convert(mode)
    out = io.BytesIO()
    if orientation in STORE_TRANSPOSE:
        exif = Image.Exif()
        exif[EXIF_ORIENTATION_TAG] = orientation
        image.transpose(STORE_TRANSPOSE[orientation]).save(out, "JPEG", quality=quality, exif=exif.tobytes())
    else:
        image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def corrupt(rng: np.random.Generator, data: bytes, nth: int) -> bytes:
    """Bytes no decoder accepts (Pillow and OpenCV alike): alternately the first 64 bytes of
    the JPEG (a header cut before any pixel data) and random garbage without a JPEG marker."""
    if nth % 2 == 0:
        return data[:64]
    return b"\x00" + rng.bytes(511)

