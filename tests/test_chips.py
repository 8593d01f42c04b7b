"""crop_image_boxes: exact pixel regions, EXIF, colour modes, and every reject reason."""
from __future__ import annotations

from collections import Counter
from typing import Dict, List

import numpy as np
import pytest
from PIL import Image

from helpers.images import BLUE, GREEN, RED, assert_colour, blocks_image, box, centre, decoded, encode

from bigcat_ml.chips.crop import crop_image_boxes, pixel_edges
from bigcat_ml.oid.rejects import BAD_BOX, DECODE_ERROR, MISSING_IMAGE, TOO_LARGE, TOO_SMALL

CROP_ARGS = dict(padding=0.0, min_chip_side=4, jpeg_quality=90, max_image_pixels=10_000_000)


TOP_RIGHT = box(0.5, 1.0, 0.0, 0.5)  # the green quadrant: pixels x 60..120, y 0..40


def test_box_yields_exactly_its_pixel_region():
    source = blocks_image()
    [result] = crop_image_boxes(encode(source), [TOP_RIGHT], **CROP_ARGS)

    expected = encode(source.crop((60, 0, 120, 40)), "JPEG", quality=CROP_ARGS["jpeg_quality"])
    assert result.reason is None
    assert result.chip == expected
    assert (result.chip_width, result.chip_height) == (60, 40)
    assert (result.image_width, result.image_height) == (120, 80)
    assert_colour(centre(decoded(result.chip)), GREEN)


def test_png_bytes_stored_under_a_jpg_name_are_decoded_by_content(tmp_path):
    path = tmp_path / "0001eeaf4aed83f9.jpg"
    path.write_bytes(encode(blocks_image(), "PNG"))

    [result] = crop_image_boxes(path.read_bytes(), [box(0.0, 0.5, 0.5, 1.0)], **CROP_ARGS)

    assert result.reason is None
    assert_colour(centre(decoded(result.chip)), BLUE)


@pytest.mark.parametrize(
    "low, high, padding, size, edges",
    [
        (0.101, 0.499, 0.0, 100, (10, 50)),  # floor the start, ceil the end: the box is covered
        (0.3, 0.7, 0.0, 100, (30, 70)),  # 0.7 * 100 = 70.00000000000001 is not widened
        (0.4, 0.6, 0.5, 100, (30, 70)),  # half the box width added on each side
        (0.0, 0.2, 0.5, 100, (0, 30)),  # padding clipped at the image edge
        (0.9, 1.0, 1.0, 50, (40, 50)),
    ],
)
def test_pixel_edges_cover_the_padded_box_within_the_image(low, high, padding, size, edges):
    assert pixel_edges(low, high, padding, size) == edges


def test_padding_enlarges_the_chip_and_is_clipped_to_the_image():
    boxes = [box(0.25, 0.75, 0.25, 0.75), box(0.5, 1.0, 0.0, 0.5)]
    results = crop_image_boxes(encode(blocks_image()), boxes, **{**CROP_ARGS, "padding": 0.25})

    # Centre box: 60x40 px plus 15 and 10 px each side. Corner box: only inward room.
    assert [(r.chip_width, r.chip_height) for r in results] == [(90, 60), (75, 50)]


@pytest.mark.parametrize(
    "orientation, stored_rotation", [(6, Image.Transpose.ROTATE_90), (8, Image.Transpose.ROTATE_270)]
)
def test_exif_orientation_is_applied_before_cropping(orientation, stored_rotation):
    upright = blocks_image()
    exif = Image.Exif()
    exif[0x0112] = orientation  # the camera stored the pixels rotated; viewers turn them back
    data = encode(upright.transpose(stored_rotation), "JPEG", quality=95, exif=exif.tobytes())

    [result] = crop_image_boxes(data, [TOP_RIGHT], **CROP_ARGS)

    assert (result.image_width, result.image_height) == (120, 80)
    assert (result.chip_width, result.chip_height) == (60, 40)
    assert_colour(centre(decoded(result.chip)), GREEN, tolerance=20)


@pytest.mark.parametrize(
    "source, fmt, expected",
    [
        pytest.param(Image.new("L", (40, 40), 128), "JPEG", (128, 128, 128), id="grayscale-L"),
        pytest.param(Image.new("RGB", (40, 40), RED).convert("CMYK"), "JPEG", RED, id="CMYK"),
        pytest.param(
            Image.new("RGB", (40, 40), RED).convert("P", palette=Image.Palette.ADAPTIVE),
            "PNG",
            RED,
            id="palette-P",
        ),
        pytest.param(Image.new("RGBA", (40, 40), (*RED, 255)), "PNG", RED, id="RGBA"),
        pytest.param(Image.new("I;16", (40, 40), 200), "PNG", (200, 200, 200), id="16-bit-gray"),
    ],
)
def test_any_colour_mode_becomes_a_three_channel_rgb_chip(source, fmt, expected):
    [result] = crop_image_boxes(encode(source, fmt), [box(0.0, 1.0, 0.0, 1.0)], **CROP_ARGS)

    assert result.reason is None, result.detail
    pixels = decoded(result.chip)
    assert pixels.shape == (40, 40, 3)
    assert_colour(centre(pixels), expected, tolerance=20)


@pytest.mark.parametrize(
    "coords, named",
    [
        ((-0.1, 0.5, 0.0, 0.5), "XMin=-0.1"),
        ((0.2, 1.2, 0.0, 0.5), "XMax=1.2"),
        ((0.6, 0.4, 0.0, 0.5), "XMin=0.6 XMax=0.4"),  # inverted
        ((0.2, 0.5, 0.3, 0.3), "YMin=0.3 YMax=0.3"),  # zero area
        ((float("nan"), 0.5, 0.0, 0.5), "nan"),
        ((None, 0.5, 0.0, 0.5), "None"),
    ],
)
def test_invalid_box_is_rejected_as_bad_box_naming_its_values(coords, named):
    [result] = crop_image_boxes(encode(blocks_image()), [box(*coords)], **CROP_ARGS)

    assert (result.reason, result.chip) == (BAD_BOX, None)
    assert named in result.detail
    assert (result.image_width, result.image_height) == (120, 80)


def test_chip_below_min_side_is_rejected_as_too_small_with_its_size():
    # 0.1 of 120 x 80 px = 12 x 8 px
    args = {**CROP_ARGS, "min_chip_side": 10}
    [result] = crop_image_boxes(encode(blocks_image()), [box(0.0, 0.1, 0.0, 0.1)], **args)

    assert result.reason == TOO_SMALL
    assert "12x8 pixels" in result.detail and "min_chip_side=10" in result.detail


def _jpeg() -> bytes:
    return encode(blocks_image(), "JPEG", quality=90)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(_jpeg()[:20] + bytes(range(256)) * 4, id="corrupt-header"),
        pytest.param(_jpeg()[: len(_jpeg()) // 2], id="truncated"),
        pytest.param(np.random.default_rng(0).bytes(2000), id="random-bytes"),
        pytest.param(b"", id="empty"),
    ],
)
def test_undecodable_bytes_reject_every_box_of_the_image(data):
    results = crop_image_boxes(data, [TOP_RIGHT, TOP_RIGHT, box(0.0, 0.5, 0.0, 0.5)], **CROP_ARGS)

    assert [r.reason for r in results] == [DECODE_ERROR] * 3
    assert all(r.detail and r.chip is None for r in results)
    assert "BytesIO" not in results[0].detail  # says what is wrong with the bytes instead


def test_image_over_the_pixel_limit_is_rejected_without_changing_pillow_globally():
    pillow_limit = Image.MAX_IMAGE_PIXELS
    args = {**CROP_ARGS, "max_image_pixels": 120 * 80 - 1}
    results = crop_image_boxes(_jpeg(), [TOP_RIGHT, TOP_RIGHT], **args)

    assert [r.reason for r in results] == [TOO_LARGE, TOO_LARGE]
    assert "120x80" in results[0].detail
    assert Image.MAX_IMAGE_PIXELS == pillow_limit


def test_image_exactly_at_the_pixel_limit_is_cropped():
    [result] = crop_image_boxes(_jpeg(), [TOP_RIGHT], **{**CROP_ARGS, "max_image_pixels": 120 * 80})
    assert result.reason is None


def test_missing_image_bytes_reject_every_box_as_missing_image():
    results = crop_image_boxes(None, [TOP_RIGHT, TOP_RIGHT], **CROP_ARGS)
    assert [r.reason for r in results] == [MISSING_IMAGE, MISSING_IMAGE]


def test_every_box_gets_one_result_in_order_and_reasons_are_counted():
    inverted, tiny, bottom_left = box(0.6, 0.4, 0.0, 0.5), box(0.0, 0.02, 0.0, 0.02), box(0.0, 0.5, 0.5, 1.0)
    boxes: List[Dict] = [TOP_RIGHT, inverted, tiny, bottom_left]
    results = crop_image_boxes(encode(blocks_image()), boxes, **{**CROP_ARGS, "min_chip_side": 8})

    assert [r.reason for r in results] == [None, BAD_BOX, TOO_SMALL, None]
    assert Counter(r.reason for r in results) == {None: 2, BAD_BOX: 1, TOO_SMALL: 1}
    assert_colour(centre(decoded(results[3].chip)), BLUE)
    assert crop_image_boxes(encode(blocks_image()), [], **CROP_ARGS) == []
