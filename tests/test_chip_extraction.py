"""extract_chips on Spark: one output row per input box, split into chips and rejects."""
from __future__ import annotations

from collections import Counter
from typing import Dict, List

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import (
    ArrayType,
    BinaryType,
    StringType,
    StructField,
    StructType,
)
from helpers.images import BLUE, GREEN, assert_colour, blocks_image, box, centre, decoded, encode

from bigcat_ml.chips.extract import extract_chips, split_chips_and_rejects
from bigcat_ml.chips.schema import ChipSchema
from bigcat_ml.oid.schemas import BOXES_SCHEMA
from bigcat_ml.oid.rejects import BAD_BOX, DECODE_ERROR, MISSING_IMAGE, REJECTS_SCHEMA, TOO_LARGE, TOO_SMALL

pytestmark = pytest.mark.spark

BOX_STRUCT = StructType(
    [f for f in BOXES_SCHEMA.fields if f.name != "ImageID"] + [StructField("LabelText", StringType(), True)]
)
IMAGES_SCHEMA = StructType(
    [
        StructField("ImageID", StringType(), False),
        StructField("Subset", StringType(), True),
        StructField("path", StringType(), True),
        StructField("Data", BinaryType(), True),
        StructField("boxes", ArrayType(BOX_STRUCT), True),
    ]
)


def oid_box(xmin: float, xmax: float, ymin: float, ymax: float, label: str = "/m/0cd4d") -> Dict:
    flags = {"IsOccluded": 0, "IsTruncated": 1, "IsGroupOf": 0, "IsDepiction": 0, "IsInside": -1}
    return {
        **box(xmin, xmax, ymin, ymax, label),
        "Source": "xclick",
        "LabelText": "Cheetah",
        "Confidence": 1.0,
        **flags,
    }


def images_frame(spark: SparkSession, images: List[tuple]) -> DataFrame:
    """Images whose bytes are in the rows, as a Parquet of bytes gives them."""
    return spark.createDataFrame([(image_id, subset, None, *rest) for image_id, subset, *rest in images], IMAGES_SCHEMA)


def mixed_images(spark: SparkSession) -> DataFrame:
    good = encode(blocks_image())
    big = encode(blocks_image(400, 300), "JPEG", quality=80)
    green_inverted_tiny = [oid_box(0.5, 1.0, 0.0, 0.5), oid_box(0.6, 0.4, 0.0, 0.5), oid_box(0.0, 0.05, 0.0, 0.05)]
    return images_frame(
        spark,
        [
            ("good", "train", good, green_inverted_tiny),
            ("png_blue", "validation", good, [oid_box(0.0, 0.5, 0.5, 1.0)]),
            ("corrupt", "train", good[:40], [oid_box(0.1, 0.9, 0.1, 0.9), oid_box(0.2, 0.8, 0.2, 0.8)]),
            ("missing", "test", None, [oid_box(0.1, 0.9, 0.1, 0.9)]),
            ("big", "train", big, [oid_box(0.1, 0.9, 0.1, 0.9)]),
            ("no_boxes", "train", good, []),
        ],
    )


@pytest.fixture
def preprocess_cfg(make_cfg):
    # 120 x 80 = 9600 pixels pass, 400 x 300 do not; 0.05 of 120 x 80 is below 8 px.
    return make_cfg(["preprocess.max_image_pixels=100000", "preprocess.min_chip_side=8"]).preprocess


@pytest.fixture
def small_arrow_batches(spark):
    """Two images per Arrow batch, so a partition is processed in several batches."""
    key = "spark.sql.execution.arrow.maxRecordsPerBatch"
    saved = spark.conf.get(key, None)
    spark.conf.set(key, "2")
    yield
    if saved is None:
        spark.conf.unset(key)
    else:
        spark.conf.set(key, saved)


def test_one_output_row_per_input_box_with_every_reason(spark, preprocess_cfg, small_arrow_batches):
    images = mixed_images(spark).repartition(2)
    extracted = extract_chips(images, preprocess_cfg).collect()

    assert len(extracted) == 8  # 3 + 1 + 2 + 1 + 1 + 0 boxes
    assert Counter(r.reason for r in extracted) == {
        None: 2,
        BAD_BOX: 1,
        TOO_SMALL: 1,
        DECODE_ERROR: 2,
        MISSING_IMAGE: 1,
        TOO_LARGE: 1,
    }


def test_split_gives_chip_schema_rows_and_reject_rows_that_add_up(spark, preprocess_cfg):
    chips, rejects = split_chips_and_rejects(extract_chips(mixed_images(spark), preprocess_cfg))

    assert chips.columns == list(ChipSchema.fields)
    assert rejects.columns == REJECTS_SCHEMA.fieldNames()
    chip_rows = {r.ImageID: r for r in chips.collect()}
    reject_rows = rejects.collect()
    assert len(chip_rows) + len(reject_rows) == 8
    assert_colour(centre(decoded(chip_rows["good"].chip)), GREEN)
    assert_colour(centre(decoded(chip_rows["png_blue"].chip)), BLUE)
    corrupt = [r for r in reject_rows if r.ImageID == "corrupt"]
    assert [(r.reason, r.XMin) for r in corrupt] == [(DECODE_ERROR, 0.1), (DECODE_ERROR, 0.2)]
    assert {r.LabelName for r in corrupt} == {"/m/0cd4d"}
    assert all(r.detail for r in reject_rows)


def test_chip_rows_carry_the_box_attributes_and_sizes(spark, preprocess_cfg):
    chips, _ = split_chips_and_rejects(extract_chips(mixed_images(spark), preprocess_cfg))
    good = chips.filter("ImageID = 'good'").first()

    assert (good.Subset, good.Source, good.LabelName) == ("train", "xclick", "/m/0cd4d")
    assert good.LabelText == "Cheetah"
    assert (good.XMin, good.XMax, good.YMin, good.YMax) == (0.5, 1.0, 0.0, 0.5)
    assert (good.IsOccluded, good.IsTruncated, good.IsInside) == (0, 1, -1)
    assert (good.image_width, good.image_height, good.chip_width, good.chip_height) == (120, 80, 60, 40)


def test_an_image_file_is_read_by_the_cropping_task_and_cut_as_its_bytes_are(spark, preprocess_cfg, tmp_path):
    good = encode(blocks_image())
    (tmp_path / "good.jpg").write_bytes(good)
    boxes = [oid_box(0.5, 1.0, 0.0, 0.5)]
    images = spark.createDataFrame(
        [("from_file", "train", str(tmp_path / "good.jpg"), None, boxes), ("from_bytes", "train", None, good, boxes)], IMAGES_SCHEMA
    )

    chips, rejects = split_chips_and_rejects(extract_chips(images, preprocess_cfg))

    cut = {r.ImageID: r.chip for r in chips.collect()}
    assert rejects.count() == 0
    assert cut["from_file"] == cut["from_bytes"]
    assert_colour(centre(decoded(cut["from_file"])), GREEN)


def test_input_without_the_boxes_column_is_refused_naming_it(spark, preprocess_cfg):
    with pytest.raises(ValueError, match="missing \\['boxes'\\]"):
        extract_chips(mixed_images(spark).drop("boxes"), preprocess_cfg)
