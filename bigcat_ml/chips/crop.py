"""Crop one source image's bounding boxes into JPEG chips (pure: no Spark).

Box coordinates are fractions of the *displayed* image size, i.e. after the EXIF
orientation has been applied, as Open Images defines them. Each image is decoded once
for all its boxes; every box gets exactly one :class:`ChipResult` back, either a chip or
a reject reason from :mod:`bigcat_ml.oid.rejects`, so nothing is dropped silently.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from io import BytesIO
from typing import Any, Iterator, List, Mapping, Optional, Tuple

from PIL import ExifTags, Image, ImageMode, ImageOps, UnidentifiedImageError

from bigcat_ml.oid.rejects import BAD_BOX, DECODE_ERROR, ENCODE_ERROR, MISSING_IMAGE, TOO_LARGE, TOO_SMALL, fails_the_task

# Pillow keeps each pixel of a multi-band image (RGB, RGBA, LA, CMYK, ...) in one 32-bit word.
_WORD_BYTES = 4
# Pixel edges are rounded to this many decimals before floor/ceil, so that float noise
# such as 0.3 * 100 = 30.000000000000004 does not widen a chip by one pixel.
_EDGE_DECIMALS = 6


@dataclass(frozen=True)
class ChipResult:
    """The outcome for one box: a chip, or a reject reason with a human-readable detail.

    Sizes are in pixels; ``image_*`` are the source image size after EXIF orientation
    (``None`` when the image could not be decoded).
    """

    chip: Optional[bytes] = None
    chip_width: Optional[int] = None
    chip_height: Optional[int] = None
    image_width: Optional[int] = None
    image_height: Optional[int] = None
    reason: Optional[str] = None
    detail: Optional[str] = None


class ImageTooLargeError(ValueError):
    """The image header announces more pixels than ``max_image_pixels``, or a decode that
    would hold more bytes than an RGB image of that many pixels."""


@contextmanager
def _pillow_bomb_check_off() -> Iterator[None]:
    """Let our own per-call pixel limit replace Pillow's process-wide one, then restore it.

    Pillow checks ``Image.MAX_IMAGE_PIXELS`` (a module global) inside ``Image.open``; we
    check ``max_image_pixels`` from the header ourselves instead, so the limit is a
    per-call argument and the global is left as we found it. Spark Python workers run a
    UDF on one thread, so the brief change is not observed elsewhere.
    """
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def decoded_bytes(image: Image.Image) -> int:
    """Bytes an opened (not yet decoded) image takes at most while :func:`decode_rgb` makes
    it upright RGB: its pixels in its own mode, plus the RGB (or upright) copy made from
    them, unless it is an RGB JPEG whose EXIF says it is upright (read from the header:
    other formats, such as PNG, may carry their EXIF after the pixels)."""
    described = ImageMode.getmode(image.mode)
    own = _WORD_BYTES if len(described.bands) > 1 else int(described.typestr[-1])  # "|u1", "<u2", "<i4"...
    upright_jpeg = image.format == "JPEG" and image.getexif().get(ExifTags.Base.Orientation, 1) == 1
    copy = 0 if image.mode == "RGB" and upright_jpeg else _WORD_BYTES
    return image.width * image.height * (own + copy)


def _check_size(image: Image.Image, max_image_pixels: int) -> None:
    width, height = image.size
    if width * height > max_image_pixels:
        raise ImageTooLargeError(
            f"image is {width}x{height} = {width * height} pixels, over "
            f"preprocess.max_image_pixels={max_image_pixels}"
        )
    needed, budget = decoded_bytes(image), max_image_pixels * _WORD_BYTES
    if needed > budget:
        raise ImageTooLargeError(
            f"decoding the {width}x{height} {image.mode} image to upright RGB takes {needed} bytes, over the "
            f"{budget} an RGB image of preprocess.max_image_pixels={max_image_pixels} pixels takes"
        )


def decode_rgb(data: bytes, max_image_pixels: int) -> Image.Image:
    """Decode image bytes by content (any format Pillow reads) to an upright RGB image.

    Raises :class:`ImageTooLargeError` before decoding any pixel data when the header's
    width x height exceeds ``max_image_pixels``, or when the decode would hold more bytes
    than an RGB image of that many pixels (:func:`decoded_bytes`): a 343 kB RGBA PNG under
    the pixel limit would otherwise take a gigabyte. The image is turned and converted in
    place where it can be, so at most one copy is made. Any Pillow/OS error propagates for
    the caller to reject.
    """
    with _pillow_bomb_check_off(), Image.open(BytesIO(data)) as image:
        _check_size(image, max_image_pixels)
        ImageOps.exif_transpose(image, in_place=True)
        if image.mode != "RGB":
            return image.convert("RGB")
        image.load()  # the pixels, read before the with block lets go of the bytes
        return image


def _box_problem(box: Mapping[str, Any]) -> Optional[str]:
    """Why a box is unusable (a message naming its values), or ``None`` if it is valid."""
    values = {k: box.get(k) for k in ("XMin", "XMax", "YMin", "YMax")}
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values.values()):
        return f"non-numeric or non-finite coordinates {values}"
    for low, high in (("XMin", "XMax"), ("YMin", "YMax")):
        if not 0.0 <= values[low] < values[high] <= 1.0:
            return f"need 0 <= {low} < {high} <= 1, got {low}={values[low]} {high}={values[high]}"
    return None


def pixel_edges(low: float, high: float, padding: float, size: int) -> Tuple[int, int]:
    """Pixel edges ``[start, end)`` of a padded box side along an axis of ``size`` pixels.

    ``low``/``high`` are fractions of the image size; ``padding`` is a fraction of the
    box's own extent added on each side, then clipped to the image. The chip covers the
    whole box: ``start = floor(low * size)``, ``end = ceil(high * size)``.
    """
    pad = padding * (high - low)
    start = math.floor(round(max(0.0, low - pad) * size, _EDGE_DECIMALS))
    end = math.ceil(round(min(1.0, high + pad) * size, _EDGE_DECIMALS))
    return max(0, start), min(size, end)


def _encode_jpeg(image: Image.Image, quality: int) -> bytes:
    buffer = BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def _crop_box(
    image: Image.Image, box: Mapping[str, Any], padding: float, min_chip_side: int, jpeg_quality: int
) -> ChipResult:
    size = {"image_width": image.width, "image_height": image.height}
    problem = _box_problem(box)
    if problem:
        return ChipResult(reason=BAD_BOX, detail=problem, **size)
    left, right = pixel_edges(box["XMin"], box["XMax"], padding, image.width)
    top, bottom = pixel_edges(box["YMin"], box["YMax"], padding, image.height)
    width, height = right - left, bottom - top
    if min(width, height) < min_chip_side:
        detail = f"chip is {width}x{height} pixels, below preprocess.min_chip_side={min_chip_side}"
        return ChipResult(reason=TOO_SMALL, detail=detail, **size)
    try:
        chip = _encode_jpeg(image.crop((left, top, right, bottom)), jpeg_quality)
    except Exception as error:  # noqa: BLE001 - an unencodable chip is a counted reject
        if fails_the_task(error):
            raise
        where = ", ".join(f"{c}={box[c]}" for c in ("XMin", "XMax", "YMin", "YMax"))
        detail = f"cannot encode the {width}x{height} pixel chip of box {where} as JPEG: {type(error).__name__}: {error}"
        return ChipResult(reason=ENCODE_ERROR, detail=detail, **size)
    return ChipResult(chip=chip, chip_width=width, chip_height=height, **size)


def crop_image_boxes(
    data: Optional[bytes],
    boxes: List[Mapping[str, Any]],
    padding: float,
    min_chip_side: int,
    jpeg_quality: int,
    max_image_pixels: int,
) -> List[ChipResult]:
    """Crop every box of one image; one result per box, in the order of ``boxes``.

    ``boxes`` are mappings with ``XMin, XMax, YMin, YMax`` (fractions of the upright
    image). Missing bytes (``None``), an image that cannot be decoded, or one over
    ``max_image_pixels`` reject all its boxes (``missing_image`` / ``decode_error`` /
    ``too_large``).
    """
    if not boxes:
        return []
    if data is None:
        return [ChipResult(reason=MISSING_IMAGE, detail="no image bytes for this ImageID")] * len(boxes)
    try:
        image = decode_rgb(data, max_image_pixels)
    except ImageTooLargeError as error:
        return [ChipResult(reason=TOO_LARGE, detail=str(error))] * len(boxes)
    except UnidentifiedImageError:  # its message only names an in-memory buffer
        detail = f"not an image format Pillow reads ({len(data)} bytes starting {data[:8]!r})"
        return [ChipResult(reason=DECODE_ERROR, detail=detail)] * len(boxes)
    except Exception as error:  # noqa: BLE001 - any decoder failure is a counted reject...
        if fails_the_task(error):  # ...except running out of memory
            raise
        detail = f"{type(error).__name__}: {error}"
        return [ChipResult(reason=DECODE_ERROR, detail=detail)] * len(boxes)
    with image:
        return [_crop_box(image, box, padding, min_chip_side, jpeg_quality) for box in boxes]
