"""The Open Images V6 file formats, defined once for the writer and the readers.

Column names and order follow the public download files exactly. Coordinates are
fractions of the image width/height; the box flags are 1, 0, or -1 for "unknown".
"""
from __future__ import annotations

from typing import Tuple

from pyspark.sql.types import BinaryType, DataType, DoubleType, IntegerType, StringType, StructField, StructType

SUBSETS = ("train", "validation", "test")

# The columns of the OID files, by name; every schema and column tuple below is built from them.
IMAGE_ID = "ImageID"
SOURCE = "Source"
LABEL_NAME = "LabelName"
DISPLAY_NAME = "DisplayName"
CONFIDENCE = "Confidence"
SUBSET = "Subset"
DATA = "Data"  # raw image file bytes
BOX_COORDINATES = ("XMin", "XMax", "YMin", "YMax")
BOX_FLAGS = ("IsOccluded", "IsTruncated", "IsGroupOf", "IsDepiction", "IsInside")

UNKNOWN_FLAG = -1


def _schema(*columns: Tuple[str, DataType], required: Tuple[str, ...] = ()) -> StructType:
    """The StructType of ``(name, type)`` columns, nullable but for ``required``."""
    return StructType([StructField(name, kind, name not in required) for name, kind in columns])


# class-descriptions-boxable.csv has NO header row.
CLASS_DESCRIPTIONS_SCHEMA = _schema((LABEL_NAME, StringType()), (DISPLAY_NAME, StringType()))

_LABEL_FIELDS = ((IMAGE_ID, StringType()), (SOURCE, StringType()), (LABEL_NAME, StringType()), (CONFIDENCE, DoubleType()))
IMAGE_LABELS_SCHEMA = _schema(*_LABEL_FIELDS)
BOXES_SCHEMA = _schema(
    *_LABEL_FIELDS, *[(c, DoubleType()) for c in BOX_COORDINATES], *[(c, IntegerType()) for c in BOX_FLAGS]
)

# The Parquet of raw image bytes the original project read images from.
IMAGE_BYTES_SCHEMA = _schema((IMAGE_ID, StringType()), (SUBSET, StringType()), (DATA, BinaryType()), required=(IMAGE_ID,))

CLASS_DESCRIPTION_COLUMNS = tuple(CLASS_DESCRIPTIONS_SCHEMA.fieldNames())
IMAGE_LABEL_COLUMNS = tuple(IMAGE_LABELS_SCHEMA.fieldNames())
BOX_COLUMNS = tuple(BOXES_SCHEMA.fieldNames())
IMAGE_BYTES_COLUMNS = tuple(IMAGE_BYTES_SCHEMA.fieldNames())
