"""From the big Open Images tables to one row per image holding its bytes and its boxes.

The order of work keeps real scale (14.6 M boxes, 9 M images) affordable:

1. each annotation file is scanned once, joined against the small set of selected
   classes (broadcast) and cut down to their rows (plus any malformed row, which fails
   the run with the file and row named), then persisted;
2. images are chosen by image-level labels (a human-verified positive by default);
3. the needed images are looked up by ImageID (file paths built from it, or the row
   groups of a Parquet of bytes that hold it) and only those are read
   (:mod:`bigcat_ml.oid.images`).

Every selected box ends up either in an image's ``boxes`` or as a ``missing_image``
reject; :func:`attach_images` checks that sum.
"""
from __future__ import annotations

import logging
from contextlib import ExitStack, contextmanager
from typing import Callable, Dict, Iterator, NamedTuple, Optional, Sequence, Tuple

import pandas as pd
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from bigcat_ml.config.schema import DataConfig, PreprocessConfig
from bigcat_ml.oid.classes import DISPLAY_NAME, LABEL_NAME
from bigcat_ml.oid.readers import (
    CORRUPT_COLUMN,
    IMAGE_ID,
    SUBSET_COLUMN,
    bad_row,
    check_rows,
    normalize_image_id,
    read_subsets,
    subset_files,
)
from bigcat_ml.oid import images
from bigcat_ml.oid.csv_cache import read_subsets_cached
from bigcat_ml.oid.schemas import BOX_COORDINATES, BOX_FLAGS, BOXES_SCHEMA, IMAGE_LABELS_SCHEMA
from bigcat_ml.chips.rejects import MISSING_IMAGE, REJECTS_SCHEMA

log = logging.getLogger(__name__)

LABEL_TEXT = "LabelText"  # the display name of LabelName, carried next to it
DATA = "Data"  # raw image file bytes
BOXES = "boxes"
KEYS = [SUBSET_COLUMN, IMAGE_ID]
# Fields of each element of ``boxes``; coordinates are fractions of the image size.
BOX_FIELDS = ("Source", LABEL_NAME, LABEL_TEXT, "Confidence", *BOX_COORDINATES, *BOX_FLAGS)
SELECTED_BOX_COLUMNS = (IMAGE_ID, SUBSET_COLUMN, *BOX_FIELDS)
IMAGE_COLUMNS = (IMAGE_ID, SUBSET_COLUMN, DATA, BOXES)
_SELECTED = "_selected"


def _classes_frame(spark: SparkSession, selected: pd.DataFrame) -> DataFrame:
    rows = list(zip(selected[LABEL_NAME], selected[DISPLAY_NAME]))
    schema = StructType([StructField(LABEL_NAME, StringType(), False), StructField(LABEL_TEXT, StringType(), False)])
    return spark.createDataFrame(rows, schema).withColumn(_SELECTED, F.lit(True))


def _scan_selected(
    spark: SparkSession, files: Dict[str, str], schema: StructType, selected: pd.DataFrame, cache_dir: Optional[str]
) -> DataFrame:
    """The rows of the selected classes in ``files`` (every subset), with LabelText; persisted.

    With ``cache_dir`` (``data.csv_cache``) the files are read from their checked Parquet
    copies (:mod:`bigcat_ml.oid.csv_cache`), filtered on LabelName where the scan can skip
    row groups. Without, one scan per CSV: rows are kept if their class is selected
    (broadcast join) OR they are malformed, the small result is cached and checked, then
    the selected rows are cached on their own.
    """
    classes = F.broadcast(_classes_frame(spark, selected))
    if cache_dir:
        source = read_subsets_cached(spark, files, schema, cache_dir).filter(F.col(LABEL_NAME).isin(list(selected[LABEL_NAME])))
        rows = source.join(classes, LABEL_NAME).drop(_SELECTED).persist()
        log.info("%d rows of the selected classes in %s (Parquet copies)", rows.count(), ", ".join(files.values()))
        return rows
    kept = (
        read_subsets(spark, files, schema)
        .join(classes, LABEL_NAME, "left")
        .filter(F.col(_SELECTED).isNotNull() | bad_row(schema))
        .persist()
    )
    try:
        check_rows(kept, schema, files)
        rows = kept.filter(F.col(_SELECTED)).drop(_SELECTED, CORRUPT_COLUMN).persist()
        log.info("%d rows of the selected classes in %s", rows.count(), ", ".join(files.values()))
    finally:
        kept.unpersist()
    return rows


def read_selected_labels(spark: SparkSession, data_cfg: DataConfig, selected: pd.DataFrame) -> DataFrame:
    """Image-level labels of the selected classes, every Source and Confidence; persisted.

    Columns: ImageID (normalised), Source, LabelName, LabelText, Confidence, Subset.
    ``selected`` is :func:`bigcat_ml.oid.classes.select_classes`' table.
    """
    files = subset_files(data_cfg.image_labels, data_cfg.subsets, "image_labels")
    return _scan_selected(spark, files, IMAGE_LABELS_SCHEMA, selected, data_cfg.csv_cache)


def _is_positive(preprocess_cfg: PreprocessConfig) -> Column:
    """The image-level filter: Confidence >= min_confidence, from the listed Sources (all if none).

    ``sources`` are image-label sources (``verification``, ``crowdsource-verification``),
    not box sources, so they apply here only.
    """
    positive = F.col("Confidence") >= F.lit(float(preprocess_cfg.min_confidence))
    if preprocess_cfg.sources:
        positive = positive & F.col("Source").isin(list(preprocess_cfg.sources))
    return positive


def positive_images(labels: DataFrame, preprocess_cfg: PreprocessConfig) -> DataFrame:
    """Distinct (Subset, ImageID) with a positive image-level label of a selected class."""
    return labels.filter(_is_positive(preprocess_cfg)).select(*KEYS).distinct()


def load_selected_boxes(
    spark: SparkSession,
    data_cfg: DataConfig,
    preprocess_cfg: PreprocessConfig,
    selected: pd.DataFrame,
    labels: DataFrame,
) -> DataFrame:
    """Boxes of the selected classes on images with a positive label (:func:`positive_images`).

    ``labels`` is :func:`read_selected_labels`' frame. Columns: :data:`SELECTED_BOX_COLUMNS`
    (coordinates are fractions of the image size; flags 1/0, -1 = unknown). Persisted.
    """
    files = subset_files(data_cfg.boxes, data_cfg.subsets, "boxes")
    all_boxes = _scan_selected(spark, files, BOXES_SCHEMA, selected, data_cfg.csv_cache)
    try:
        boxes = (
            all_boxes.join(positive_images(labels, preprocess_cfg), KEYS, "left_semi")
            .select(*SELECTED_BOX_COLUMNS)
            .persist()
        )
        log.info(
            "%d boxes of the selected classes on images with a positive image-level label (min_confidence=%s, sources=%s)",
            boxes.count(),
            preprocess_cfg.min_confidence,
            list(preprocess_cfg.sources) or "all",
        )
    finally:
        all_boxes.unpersist()
    return boxes


# --------------------------------------------------------------------------- images


# (index of the needed images found: Subset, ImageID + where; reads their bytes into an index-joined frame)
_ImageSource = Tuple[DataFrame, Callable[[DataFrame], DataFrame]]


def _dir_images(spark: SparkSession, data_cfg: DataConfig, needed: DataFrame) -> _ImageSource:
    """The needed images' paths, looked for in ``data.images_dirs`` (no folder is listed)."""
    index = images.find_image_files(spark, list(data_cfg.images_dirs), needed).persist()
    return index, images.with_file_bytes


def _parquet_images(spark: SparkSession, images_path: str, needed: DataFrame) -> _ImageSource:
    """The needed images' rows in a Parquet of (ImageID, Data[, Subset]), matched by
    (Subset, ImageID), or by ImageID alone when the Parquet has no Subset column; only
    the row groups holding them are read."""
    rows, keys = images.parquet_row_index(spark, images_path)
    rows = rows.withColumn(IMAGE_ID, normalize_image_id(F.col(IMAGE_ID)))
    index = rows.join(needed, keys).select(*KEYS, images.FILE, images.ROW_GROUP, images.ROW).persist()
    return index, images.with_parquet_bytes


def _check_unique(index: DataFrame, images_path: str) -> None:
    duplicates = index.groupBy(*KEYS).count().filter(F.col("count") > 1).limit(5).collect()
    if duplicates:
        shown = ", ".join(f"{r[SUBSET_COLUMN]}/{r[IMAGE_ID]}" for r in duplicates)
        raise ValueError(f"{images_path} holds the same image more than once (ImageIDs compare lower-case): {shown}")


def _group_boxes(boxes: DataFrame) -> DataFrame:
    """One row per image: (Subset, ImageID, boxes), boxes sorted for a stable order."""
    box = F.struct(*[F.col(c) for c in BOX_FIELDS])
    return boxes.groupBy(*KEYS).agg(F.array_sort(F.collect_list(box)).alias(BOXES))


def _missing_rejects(boxes: DataFrame, index: DataFrame, data_cfg: DataConfig) -> DataFrame:
    """One ``missing_image`` reject per selected box whose image is not in the image source."""
    if data_cfg.images_format == "dir":
        folders = ", ".join(data_cfg.images_dirs)
        detail = F.concat(F.lit("no image file "), F.col(IMAGE_ID), F.lit(f".jpg (any case) in data.images_dirs [{folders}] for subset "), F.col(SUBSET_COLUMN))
    else:
        detail = F.concat(F.lit(f"no row in {data_cfg.images_path} for ImageID "), F.col(IMAGE_ID))
    missing = boxes.join(index.select(*KEYS), KEYS, "left_anti")
    extra = {"reason": F.lit(MISSING_IMAGE), "detail": detail}
    return missing.select(
        *[(extra[f.name] if f.name in extra else F.col(f.name)).cast(f.dataType).alias(f.name) for f in REJECTS_SCHEMA]
    )


@contextmanager
def attach_images(spark: SparkSession, boxes: DataFrame, data_cfg: DataConfig) -> Iterator[Tuple[DataFrame, DataFrame]]:
    """Join the selected boxes to their image bytes, one row per image, for the block.

    Yields ``(images, rejects)``. ``images``: :data:`IMAGE_COLUMNS` = ImageID, Subset,
    Data (the file's bytes), boxes (array of structs of :data:`BOX_FIELDS`); lazy, the
    bytes are read when it is consumed. ``rejects``: ``REJECTS_SCHEMA`` rows, reason
    ``missing_image``, one per box whose image is absent. Raises if boxes in images plus
    rejects differ from the boxes given. The small frames cached on the way are released
    when the block exits, so consume both inside it.

    ``data_cfg.images_format``: ``dir`` looks for ``<ImageID>.jpg`` in ``images_dirs``
    (nothing listed, only the needed files opened); ``parquet`` reads a Parquet of
    (ImageID, Data[, Subset]) at ``images_path`` (only row groups with needed images).
    See :mod:`bigcat_ml.oid.images`.
    """
    needed = boxes.select(*KEYS).distinct()
    if data_cfg.images_format == "dir":
        index, read_bytes = _dir_images(spark, data_cfg, needed)
    elif data_cfg.images_format == "parquet":
        index, read_bytes = _parquet_images(spark, data_cfg.images_path, needed)
    else:
        raise ValueError(f"data.images_format={data_cfg.images_format!r}: expected 'dir' or 'parquet'")
    with_boxes = _group_boxes(boxes).join(index, KEYS).persist()
    rejects = _missing_rejects(boxes, index, data_cfg).persist()
    try:
        _check_unique(index, data_cfg.images_path)
        _reconcile(boxes, with_boxes, rejects)
        yield read_bytes(with_boxes).select(*IMAGE_COLUMNS), rejects
    finally:
        for frame in (rejects, with_boxes, index):
            frame.unpersist()


class Selection(NamedTuple):
    """What :func:`select_images` yields."""

    labels: DataFrame  # :func:`read_selected_labels`
    boxes: DataFrame  # :func:`load_selected_boxes`
    images: DataFrame  # :func:`attach_images`: one row per found image with its boxes
    missing: DataFrame  # :func:`attach_images`: a ``missing_image`` reject per box without its image


@contextmanager
def select_images(
    spark: SparkSession, data_cfg: DataConfig, preprocess_cfg: PreprocessConfig, selected: pd.DataFrame
) -> Iterator[Selection]:
    """The selected classes' labels, boxes and images, for the block: every frame cached
    on the way is released when it exits, so consume them inside it."""
    with ExitStack() as release:
        labels = read_selected_labels(spark, data_cfg, selected)
        release.callback(labels.unpersist)
        boxes = load_selected_boxes(spark, data_cfg, preprocess_cfg, selected, labels)
        release.callback(boxes.unpersist)
        images, missing = release.enter_context(attach_images(spark, boxes, data_cfg))
        yield Selection(labels, boxes, images, missing)


def _reconcile(boxes: DataFrame, with_boxes: DataFrame, rejects: DataFrame) -> None:
    """Every selected box is in an image's ``boxes`` or is a reject, exactly once."""
    given = boxes.count()
    placed = with_boxes.select(F.coalesce(F.sum(F.size(BOXES)), F.lit(0))).first()[0]
    rejected = rejects.count()
    log.info("%d selected boxes: %d on %d images found, %d with a missing image", given, placed, with_boxes.count(), rejected)
    if placed + rejected != given:
        raise RuntimeError(f"{given} selected boxes but {placed} on found images + {rejected} rejects: report this bug")


# --------------------------------------------------------------------------- counts


def label_counts(labels: DataFrame, preprocess_cfg: PreprocessConfig, selected: pd.DataFrame) -> pd.DataFrame:
    """Images per selected class with a positive and with a negative image-level label.

    Index: LabelText (every selected class, 0 when absent); columns ``positive`` (passes
    the image-level filter) and ``negative`` (Confidence below min_confidence), counting
    distinct (Subset, ImageID) within the configured Sources.
    """
    kind = F.when(_is_positive(preprocess_cfg), "positive").otherwise("negative")
    in_sources = F.col("Source").isin(list(preprocess_cfg.sources)) if preprocess_cfg.sources else F.lit(True)
    counts = (
        labels.filter(in_sources)
        .select(LABEL_TEXT, kind.alias("kind"), *KEYS)
        .distinct()
        .groupBy(LABEL_TEXT, "kind")
        .count()
        .toPandas()
    )
    table = counts.pivot_table(index=LABEL_TEXT, columns="kind", values="count", aggfunc="sum")
    names = pd.Index(sorted(selected[DISPLAY_NAME]), name=LABEL_TEXT)
    return table.reindex(index=names, columns=["positive", "negative"]).fillna(0).astype(int).rename_axis(columns=None)


def box_counts(boxes: DataFrame, selected: pd.DataFrame, subsets: Sequence[str]) -> pd.DataFrame:
    """Boxes per selected class (index LabelText) and subset (one column each), 0 when absent."""
    counts = boxes.groupBy(LABEL_TEXT, SUBSET_COLUMN).count().toPandas()
    table = counts.pivot_table(index=LABEL_TEXT, columns=SUBSET_COLUMN, values="count", aggfunc="sum")
    names = pd.Index(sorted(selected[DISPLAY_NAME]), name=LABEL_TEXT)
    return table.reindex(index=names, columns=list(subsets)).fillna(0).astype(int).rename_axis(columns=None)
