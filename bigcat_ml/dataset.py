"""The chip dataset: its Petastorm Unischema, and where its parts live on disk.

A preprocess output folder holds ``chips/`` (the Petastorm dataset), ``rejects/``
(Parquet, :data:`bigcat_ml.rejects.REJECTS_SCHEMA`) and ``summary.json`` (counts,
selected classes, content digest).
"""
from __future__ import annotations

import numpy as np
from petastorm.codecs import CompressedImageCodec, ScalarCodec
from petastorm.unischema import Unischema, UnischemaField
from pyspark.sql.types import DoubleType, IntegerType, StringType

CHIPS_DIR = "chips"
REJECTS_DIR = "rejects"
SUMMARY_FILE = "summary.json"

# Columns that identify a chip and describe its box, in OID's own names and units
# (coordinates are fractions of the image size; flags are 1/0, -1 = unknown).
BOX_COLUMNS = ("XMin", "XMax", "YMin", "YMax")
ATTRIBUTE_COLUMNS = ("IsOccluded", "IsTruncated", "IsGroupOf", "IsDepiction", "IsInside")


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
        *[_double(c) for c in BOX_COLUMNS],
        *[_int(c) for c in ATTRIBUTE_COLUMNS],
        _int("image_width"),  # source image size in pixels, after EXIF orientation
        _int("image_height"),
        # RGB chip stored as JPEG bytes; petastorm decodes it to uint8 (h, w, 3).
        UnischemaField("chip", np.uint8, (None, None, 3), CompressedImageCodec("jpeg"), False),
        _int("chip_width"),
        _int("chip_height"),
    ],
)
