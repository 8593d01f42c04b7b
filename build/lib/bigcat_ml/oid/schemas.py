"""The Open Images V6 file formats, defined once for the writer and the readers.

Column names and order follow the public download files exactly. Coordinates are
fractions of the image width/height; the box flags are 1, 0, or -1 for "unknown".
"""
from __future__ import annotations

from pyspark.sql.types import (
    BinaryType,
    DoubleType,
    IntegerType,
    StringType,
    StructField,
    StructType,
)

SUBSETS = ("train", "validation", "test")

# class-descriptions-boxable.csv has NO header row.
CLASS_DESCRIPTION_COLUMNS = ("LabelName", "DisplayName")

IMAGE_LABEL_COLUMNS = ("ImageID", "Source", "LabelName", "Confidence")

BOX_COORDINATES = ("XMin", "XMax", "YMin", "YMax")
BOX_FLAGS = ("IsOccluded", "IsTruncated", "IsGroupOf", "IsDepiction", "IsInside")
BOX_COLUMNS = ("ImageID", "Source", "LabelName", "Confidence", *BOX_COORDINATES, *BOX_FLAGS)

# The Parquet of raw image bytes the original project read images from.
IMAGE_BYTES_COLUMNS = ("ImageID", "Subset", "Data")

UNKNOWN_FLAG = -1

CLASS_DESCRIPTIONS_SCHEMA = StructType(
    [StructField("LabelName", StringType(), True), StructField("DisplayName", StringType(), True)]
)

IMAGE_LABELS_SCHEMA = StructType(
    [
        StructField("ImageID", StringType(), True),
        StructField("Source", StringType(), True),
        StructField("LabelName", StringType(), True),
        StructField("Confidence", DoubleType(), True),
    ]
)

BOXES_SCHEMA = StructType(
    [
        StructField("ImageID", StringType(), True),
        StructField("Source", StringType(), True),
        StructField("LabelName", StringType(), True),
        StructField("Confidence", DoubleType(), True),
        *[StructField(c, DoubleType(), True) for c in BOX_COORDINATES],
        *[StructField(c, IntegerType(), True) for c in BOX_FLAGS],
    ]
)

IMAGE_BYTES_SCHEMA = StructType(
    [
        StructField("ImageID", StringType(), False),
        StructField("Subset", StringType(), True),
        StructField("Data", BinaryType(), True),
    ]
)
