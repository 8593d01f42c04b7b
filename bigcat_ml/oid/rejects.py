"""Reject reasons and the rejects table: every row the pipeline does not pass on.

Defined once so that the preprocess and evaluate steps, their reconciliation checks and
their tests all speak of the same reasons.
"""
from __future__ import annotations

from pyspark.sql.types import DoubleType, StringType, StructField, StructType

from bigcat_ml.oid.schemas import BOX_COORDINATES, IMAGE_ID, LABEL_NAME, SUBSET

IMAGE_LABEL_FILTER = "image_label_filter"  # image-level filter: no positive label, or the box's class verified absent
DUPLICATE_BOX = "duplicate_box"  # the same box (subset, image, class, coordinates) listed again
MISSING_IMAGE = "missing_image"  # the box's ImageID has no image file / Parquet row
BAD_BOX = "bad_box"  # not 0 <= min < max <= 1
TOO_SMALL = "too_small"  # chip side below preprocess.min_chip_side pixels
DECODE_ERROR = "decode_error"  # image (or chip) bytes Pillow cannot decode
TOO_LARGE = "too_large"  # over Pillow's decompression-bomb limit (max_image_pixels)
ENCODE_ERROR = "encode_error"  # the chip cannot be written as JPEG (e.g. a side over 65500 px)
PREDICT_ERROR = "predict_error"  # the model failed on the chip

PREPROCESS_REASONS = (IMAGE_LABEL_FILTER, DUPLICATE_BOX, MISSING_IMAGE, BAD_BOX, TOO_SMALL, DECODE_ERROR, TOO_LARGE, ENCODE_ERROR)
EVALUATE_REASONS = (DECODE_ERROR, PREDICT_ERROR)

REJECTS_SCHEMA = StructType(
    [
        StructField(IMAGE_ID, StringType(), False),
        StructField(SUBSET, StringType(), True),
        StructField(LABEL_NAME, StringType(), True),
        *[StructField(c, DoubleType(), True) for c in BOX_COORDINATES],
        StructField("reason", StringType(), False),
        StructField("detail", StringType(), True),
    ]
)


def fails_the_task(error: BaseException) -> bool:
    """True for errors that are the machine's, not the row's: they must never become rejects.

    Out of memory (Python's ``MemoryError``, TensorFlow's ``ResourceExhaustedError``)
    says nothing about the image or chip at hand; counting it as a reject would drop
    good rows for good. Raised instead, it fails the task, which Spark retries. The
    TensorFlow class is matched by name so that preprocessing never imports TensorFlow.
    """
    return isinstance(error, MemoryError) or any(
        cls.__name__ == "ResourceExhaustedError" for cls in type(error).__mro__
    )
