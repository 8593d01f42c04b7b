"""The chip rows: their Petastorm Unischema, what identifies a chip, how a chip decodes.

One definition that the extraction, the writer, the readers and the digest share.
"""
from __future__ import annotations

import numpy as np
from petastorm.codecs import CompressedImageCodec, ScalarCodec
from petastorm.unischema import Unischema, UnischemaField
from pyspark.sql.types import DoubleType, IntegerType, StringType

from bigcat_ml.oid.schemas import BOX_COORDINATES, BOX_FLAGS, IMAGE_ID, LABEL_NAME

# What identifies a chip: its image, its class and its box, in OID's own names and units
# (coordinates are fractions of the image size). Evaluation, tests and benchmarks join
# and sort chips on it.
CHIP_KEY = (IMAGE_ID, LABEL_NAME, *BOX_COORDINATES)


def _string(name: str) -> UnischemaField:
    return UnischemaField(name, np.str_, (), ScalarCodec(StringType()), False)


def _double(name: str) -> UnischemaField:
    return UnischemaField(name, np.float64, (), ScalarCodec(DoubleType()), False)


def _int(name: str) -> UnischemaField:
    return UnischemaField(name, np.int32, (), ScalarCodec(IntegerType()), False)


ChipSchema = Unischema(
    "ChipSchema",
    [
        _string("ImageID"),
        _string("Subset"),
        _string("Source"),
        _string("LabelName"),
        _string("LabelText"),
        *[_double(c) for c in BOX_COORDINATES],
        *[_int(c) for c in BOX_FLAGS],
        _int("image_width"),  # source image size in pixels, after EXIF orientation
        _int("image_height"),
        # RGB chip stored as JPEG bytes; petastorm decodes it to uint8 (h, w, 3).
        UnischemaField("chip", np.uint8, (None, None, 3), CompressedImageCodec("jpeg"), False),
        _int("chip_width"),
        _int("chip_height"),
    ],
)


def decode_chip(jpeg: bytes) -> np.ndarray:
    """JPEG chip bytes to a uint8 RGB array of shape (height, width, 3), as make_reader does."""
    field = ChipSchema.fields["chip"]
    return field.codec.decode(field, jpeg)
