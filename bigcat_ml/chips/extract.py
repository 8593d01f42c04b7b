"""Spark wiring of :func:`bigcat_ml.chips.crop.crop_image_boxes`: images in, one row per box out.

The input has one row per source image with all its boxes in an array column, so each
image is decoded once however many boxes it has. An image file is read here, by the task
that crops it, one image at a time (:func:`bigcat_ml.oid.images.image_bytes`). Bytes from a
Parquet of bytes come in the rows: ``mapInArrow`` hands them over in Arrow batches of
``spark.sql.execution.arrow.maxRecordsPerBatch`` *rows*, so keep that small (tens of
images) or a Python worker holds a whole batch of full-size images in memory.

``mapInArrow`` rather than ``mapInPandas``: the rows are built in Python either way, and
skipping pandas (nested box structs to dicts, nullable integer columns) is faster
(measurements in docs/decisions.md).
"""
from __future__ import annotations

import dataclasses
import logging
from functools import partial
from typing import Any, Dict, Iterator, List, Tuple

import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.types import StringType, StructField, StructType

from bigcat_ml.chips.crop import ChipResult, crop_image_boxes
from bigcat_ml.chips.schema import ChipSchema
from bigcat_ml.oid.images import PATH, image_bytes
from bigcat_ml.oid.schemas import BOX_COORDINATES, BOX_FLAGS, DATA, IMAGE_ID, LABEL_NAME, SOURCE, SUBSET
from bigcat_ml.oid.rejects import REJECTS_SCHEMA
from bigcat_ml.runtime.spark import ARROW_BATCH_ROWS_KEY
from bigcat_ml.runtime.workers import spare_the_collector

log = logging.getLogger(__name__)

INPUT_COLUMNS = (IMAGE_ID, SUBSET, PATH, DATA, "boxes")
BOX_TEXT_COLUMNS = (SOURCE, LABEL_NAME, "LabelText")

# Chip columns may be null on a reject row; `reason` is null exactly on chip rows.
EXTRACTION_SCHEMA = StructType(
    [StructField(f.name, f.dataType, True) for f in ChipSchema.as_spark_schema().fields]
    + [StructField("reason", StringType(), True), StructField("detail", StringType(), True)]
)
_ARROW_SCHEMA = to_arrow_schema(EXTRACTION_SCHEMA)
_BOX_FIELDS = (*BOX_TEXT_COLUMNS, *BOX_COORDINATES, *BOX_FLAGS)
_RESULT_FIELDS = tuple(f.name for f in dataclasses.fields(ChipResult))

# Above this many images per Arrow batch a Python worker may hold gigabytes of image bytes.
ARROW_BATCH_ROWS_ADVICE = 256


def extract_chips(images_with_boxes: DataFrame, preprocess_cfg: Any) -> DataFrame:
    """Crop every box of every image; exactly one output row per input box.

    ``images_with_boxes``: ``ImageID``, ``Subset``, ``path`` and ``Data`` (the image's
    file, or its bytes; both null when the image is missing) and ``boxes`` (array of structs with the OID box columns,
    coordinates as fractions). Returns :data:`EXTRACTION_SCHEMA`: the ChipSchema columns
    plus ``reason``/``detail``; split it with :func:`split_chips_and_rejects`. The result
    is expensive to recompute: persist it if it is used more than once.
    """
    missing = [c for c in INPUT_COLUMNS if c not in images_with_boxes.columns]
    if missing:
        raise ValueError(
            f"extract_chips needs columns {list(INPUT_COLUMNS)}; missing {missing} "
            f"(got {images_with_boxes.columns})"
        )
    _advise_on_arrow_batch_size(images_with_boxes)
    crop = partial(_extract_partition, **crop_settings(preprocess_cfg))
    return images_with_boxes.select(*INPUT_COLUMNS).mapInArrow(crop, schema=EXTRACTION_SCHEMA)


def crop_settings(preprocess_cfg: Any) -> Dict[str, Any]:
    """The keyword arguments of :func:`bigcat_ml.chips.crop.crop_image_boxes` that come from
    the ``preprocess`` config."""
    return {
        "padding": float(preprocess_cfg.padding),
        "min_chip_side": int(preprocess_cfg.min_chip_side),
        "jpeg_quality": int(preprocess_cfg.jpeg_quality),
        "max_image_pixels": int(preprocess_cfg.max_image_pixels),
    }


def split_chips_and_rejects(extracted: DataFrame) -> Tuple[DataFrame, DataFrame]:
    """Split :func:`extract_chips` output into (ChipSchema columns, REJECTS_SCHEMA columns)."""
    is_reject = F.col("reason").isNotNull()
    chips = extracted.filter(~is_reject).select(*ChipSchema.fields)
    rejects = extracted.filter(is_reject).select(*REJECTS_SCHEMA.fieldNames())
    return chips, rejects


def _advise_on_arrow_batch_size(df: DataFrame) -> None:
    rows = int(df.sparkSession.conf.get(ARROW_BATCH_ROWS_KEY, "10000"))
    if rows > ARROW_BATCH_ROWS_ADVICE:
        log.warning(
            "%s=%d images per Arrow batch: each Python worker may hold that many full images "
            "in memory; set it to at most %d (e.g. spark.conf.%s=64)",
            ARROW_BATCH_ROWS_KEY, rows, ARROW_BATCH_ROWS_ADVICE, ARROW_BATCH_ROWS_KEY,
        )


def _extract_partition(batches: Iterator[pa.RecordBatch], **crop_args: Any) -> Iterator[pa.RecordBatch]:
    spare_the_collector()
    for images in batches:
        yield _extract_batch(images, **crop_args)


def _extract_batch(images: pa.RecordBatch, **crop_args: Any) -> pa.RecordBatch:
    columns: Dict[str, List[Any]] = {name: [] for name in _ARROW_SCHEMA.names}
    expected = 0
    for image_id, subset, path, data, boxes in zip(*(images.column(name).to_pylist() for name in INPUT_COLUMNS)):
        boxes = boxes or []
        expected += len(boxes)
        for box, result in zip(boxes, crop_image_boxes(image_bytes(data, path), boxes, **crop_args)):
            columns["ImageID"].append(image_id)
            columns["Subset"].append(subset)
            for name in _BOX_FIELDS:
                columns[name].append(box.get(name))
            for name in _RESULT_FIELDS:
                columns[name].append(getattr(result, name))
    rows = len(columns["ImageID"])
    if rows != expected:  # crop_image_boxes promises one result per box
        raise RuntimeError(f"chip extraction produced {rows} rows for {expected} boxes")
    return pa.RecordBatch.from_pydict(columns, schema=_ARROW_SCHEMA)
