"""From the big Open Images tables to one row per image holding its bytes and its boxes.

The order of work keeps real scale (14.6 M boxes, 9 M images) affordable:

1. each annotation file is scanned once, joined against the small set of selected
   classes (broadcast) and cut down to their rows (plus any malformed row, which fails
   the run with the file and row named), then persisted;
2. images are chosen by image-level labels (a human-verified positive by default);
3. the needed images are looked up by ImageID (file paths built from it, or the row
   groups of a Parquet of bytes that hold it) and only those are read
   (:mod:`bigcat_ml.oid.images`).

Every box row of a selected class ends up kept, or as an ``image_label_filter`` or
``duplicate_box`` reject (:func:`load_selected_boxes` checks that sum), and every kept
box either in an image's ``boxes`` or as a ``missing_image`` reject
(:func:`attach_images` checks that one).
"""
from __future__ import annotations

import logging
from contextlib import ExitStack, contextmanager
from functools import reduce
from typing import Callable, Dict, Iterator, NamedTuple, Optional, Sequence, Tuple

import pandas as pd
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from bigcat_ml.config.schema import DataConfig, PreprocessConfig
from bigcat_ml.oid.classes import DISPLAY_NAME, LABEL_NAME
from bigcat_ml.oid.readers import (
    CORRUPT_COLUMN,
    IMAGE_ID,
    RAW_IMAGE_ID,
    SUBSET_COLUMN,
    bad_row,
    check_rows,
    normalize_image_id,
    read_subsets,
    subset_files,
)
from bigcat_ml.oid import images
from bigcat_ml.oid.csv_cache import read_subsets_cached
from bigcat_ml.oid.schemas import BOX_COORDINATES, BOX_FLAGS, BOXES_SCHEMA, CONFIDENCE, DATA, IMAGE_LABELS_SCHEMA, SOURCE
from bigcat_ml.oid.rejects import DUPLICATE_BOX, IMAGE_LABEL_FILTER, MISSING_IMAGE, REJECTS_SCHEMA

log = logging.getLogger(__name__)

LABEL_TEXT = "LabelText"  # the display name of LabelName, carried next to it
BOXES = "boxes"
KEYS = [SUBSET_COLUMN, IMAGE_ID]
# Fields of each element of ``boxes``; coordinates are fractions of the image size.
BOX_FIELDS = (SOURCE, LABEL_NAME, LABEL_TEXT, CONFIDENCE, *BOX_COORDINATES, *BOX_FLAGS)
SELECTED_BOX_COLUMNS = (IMAGE_ID, SUBSET_COLUMN, *BOX_FIELDS)
# Each image's bytes are in Data (Parquet of bytes) or in the file at path (read when cropped).
IMAGE_COLUMNS = (IMAGE_ID, SUBSET_COLUMN, images.PATH, DATA, BOXES)
_SELECTED = "_selected"
# label_counts' column of images whose label of the class has no usable Confidence.
INVALID_CONFIDENCE = "invalid_confidence"


def _classes_frame(spark: SparkSession, selected: pd.DataFrame) -> DataFrame:
    rows = list(zip(selected[LABEL_NAME], selected[DISPLAY_NAME]))
    schema = StructType([StructField(LABEL_NAME, StringType(), False), StructField(LABEL_TEXT, StringType(), False)])
    return spark.createDataFrame(rows, schema).withColumn(_SELECTED, F.lit(True))


def _scan_selected(
    spark: SparkSession, files: Dict[str, str], schema: StructType, selected: pd.DataFrame, cache_dir: Optional[str]
) -> DataFrame:
    """The rows of the selected classes in ``files`` (every subset), with LabelText and the
    ImageID's spelling in the file (``RAW_IMAGE_ID``); persisted.

    With ``cache_dir`` (``data.csv_cache``) the files are read from their checked Parquet
    copies (:mod:`bigcat_ml.oid.csv_cache`), filtered on LabelName where the scan can skip
    row groups. Without, one scan per CSV: rows are kept if their class is selected
    (broadcast join) OR they are malformed, the small result is cached and checked, then
    the selected rows are cached on their own.
    """
    classes = F.broadcast(_classes_frame(spark, selected))
    if cache_dir:
        # Rows are known good: one cached frame, checked and counted from the cache in one
        # job (each extra cached copy or pass is a few Spark jobs, the bulk of a selection's time).
        source = read_subsets_cached(spark, files, schema, cache_dir).filter(F.col(LABEL_NAME).isin(list(selected[LABEL_NAME])))
        rows = source.join(classes, LABEL_NAME).drop(_SELECTED).persist()
        try:
            n_rows, n_merged = _totals((rows, _rows()), (_merged_image_ids(rows), _rows()))
            _check_image_ids_distinct(rows, files, n_merged)
        except ValueError:
            rows.unpersist()
            raise
        log.info("%d rows of the selected classes in %s (Parquet copies)", n_rows, ", ".join(files.values()))
        return rows
    kept = (
        read_subsets(spark, files, schema)
        .join(classes, LABEL_NAME, "left")
        .filter(F.col(_SELECTED).isNotNull() | bad_row(schema))
        .persist()
    )
    try:
        chosen = kept.filter(F.col(_SELECTED))
        # One job fills the cache and counts both kinds of bad rows; the rows are named only if there are any.
        n_bad, n_merged = _totals((kept, F.count_if(bad_row(schema))), (_merged_image_ids(chosen), _rows()))
        check_rows(kept, schema, files, total=n_bad)
        _check_image_ids_distinct(chosen, files, n_merged)
        rows = chosen.drop(_SELECTED, CORRUPT_COLUMN).persist()
        log.info("%d rows of the selected classes in %s", rows.count(), ", ".join(files.values()))
    finally:
        kept.unpersist()
    return rows


def _merged_image_ids(rows: DataFrame) -> DataFrame:
    """(Subset, ImageID, spellings) of the ImageIDs that two or more spellings in the file
    become by normalisation (``AB01``/``ab01``)."""
    spellings = F.array_sort(F.collect_set(RAW_IMAGE_ID))
    return rows.groupBy(*KEYS).agg(spellings.alias("spellings")).filter(F.size("spellings") > 1)


def _check_image_ids_distinct(rows: DataFrame, files: Dict[str, str], merged: int) -> None:
    """Fail if two ImageIDs of one subset become one only by normalisation (``merged`` of
    them, :func:`_merged_image_ids` counted): their rows would be merged onto one image
    without anyone noticing."""
    if not merged:
        return
    collisions = _merged_image_ids(rows).limit(5).collect()
    shown = "; ".join(f"{files[r[SUBSET_COLUMN]]}: {' and '.join(map(repr, r['spellings']))}" for r in collisions)
    raise ValueError(
        f"ImageIDs that differ only in letter case are one image to this project (ImageIDs compare "
        f"lower-case, as image file names may be upper-case): {shown}. Fix the ImageIDs in the file."
    )


def read_selected_labels(spark: SparkSession, data_cfg: DataConfig, selected: pd.DataFrame) -> DataFrame:
    """Image-level labels of the selected classes, every Source and Confidence; persisted.

    Columns: ImageID (normalised), Source, LabelName, LabelText, Confidence, Subset, and
    ``RAW_IMAGE_ID`` (the ImageID as the file spells it).
    ``selected`` is :func:`bigcat_ml.oid.classes.select_classes`' table.
    """
    files = subset_files(data_cfg.image_labels, data_cfg.subsets, "image_labels")
    return _scan_selected(spark, files, IMAGE_LABELS_SCHEMA, selected, data_cfg.csv_cache)


def _has_confidence() -> Column:
    """True for an image-level label whose Confidence is a number in [0, 1].

    Spark parses ``NaN`` and ``Infinity`` as doubles and orders NaN above every number, so
    without this a ``NaN`` label would pass any ``min_confidence``. Such a label says
    nothing: it is neither positive nor verified absent, and :func:`label_counts` counts
    it as ``invalid_confidence``.
    """
    return F.col("Confidence").between(0.0, 1.0)


def _is_positive(preprocess_cfg: PreprocessConfig) -> Column:
    """The image-level filter: a valid Confidence >= min_confidence, from the listed Sources
    (all if none).

    ``sources`` are image-label sources (``verification``, ``crowdsource-verification``),
    not box sources, so they apply here only.
    """
    positive = _has_confidence() & (F.col("Confidence") >= F.lit(float(preprocess_cfg.min_confidence)))
    if preprocess_cfg.sources:
        positive = positive & F.col("Source").isin(list(preprocess_cfg.sources))
    return positive


def positive_images(labels: DataFrame, preprocess_cfg: PreprocessConfig) -> DataFrame:
    """Distinct (Subset, ImageID) with a positive image-level label of a selected class."""
    return labels.filter(_is_positive(preprocess_cfg)).select(*KEYS).distinct()


class BoxSelection(NamedTuple):
    """What :func:`load_selected_boxes` returns; ``box_rows = boxes + dropped``."""

    boxes: DataFrame  # :data:`SELECTED_BOX_COLUMNS`, one row per distinct kept box; persisted
    dropped: DataFrame  # REJECTS_SCHEMA rows: ``image_label_filter`` and ``duplicate_box``; persisted
    box_rows: int  # box rows of the selected classes in the files, before any filter


def _label_states(labels: DataFrame, preprocess_cfg: PreprocessConfig) -> Tuple[DataFrame, DataFrame]:
    """(images with a positive label of a selected class; (image, class) pairs verified absent).

    A pair is verified absent when its class has a label on the image within the
    configured Sources but none of them passes the filter (Confidence 0 in OID).
    """
    in_sources = F.col("Source").isin(list(preprocess_cfg.sources)) if preprocess_cfg.sources else F.lit(True)
    pair = [*KEYS, LABEL_NAME]
    by_pair = labels.filter(in_sources & _has_confidence()).groupBy(*pair).agg(F.max(_is_positive(preprocess_cfg).cast("int")).alias("_pos"))
    absent = by_pair.filter(F.col("_pos") == 0).select(*pair)
    return positive_images(labels, preprocess_cfg), absent


def _as_rejects(boxes: DataFrame, reason: str, detail: Column) -> DataFrame:
    extra = {"reason": F.lit(reason), "detail": detail}
    return boxes.select(
        *[(extra[f.name] if f.name in extra else F.col(f.name)).cast(f.dataType).alias(f.name) for f in REJECTS_SCHEMA]
    )


def load_selected_boxes(
    spark: SparkSession,
    data_cfg: DataConfig,
    preprocess_cfg: PreprocessConfig,
    selected: pd.DataFrame,
    labels: DataFrame,
) -> BoxSelection:
    """Boxes of the selected classes that pass the image-level filter, each once.

    A box is kept when its image has a positive label of a selected class
    (:func:`positive_images`) and its own class is not verified absent there: a Tiger
    box on an image whose Tiger label has Confidence 0 is not kept because a Jaguar is
    positive on it. The others are ``image_label_filter`` rejects. A box listed more than
    once (same subset, image, class and coordinates, whatever its Source) is kept once,
    its other rows are ``duplicate_box`` rejects. ``labels`` is
    :func:`read_selected_labels`' frame. Kept columns: :data:`SELECTED_BOX_COLUMNS`
    (coordinates are fractions of the image size; flags 1/0, -1 = unknown).
    """
    files = subset_files(data_cfg.boxes, data_cfg.subsets, "boxes")
    all_boxes = _scan_selected(spark, files, BOXES_SCHEMA, selected, data_cfg.csv_cache)
    positive, absent = _label_states(labels, preprocess_cfg)
    filters = f"min_confidence={preprocess_cfg.min_confidence}, sources={list(preprocess_cfg.sources) or 'all'}"
    marked = (
        all_boxes.join(positive.withColumn("_image_ok", F.lit(True)), KEYS, "left")
        .join(absent.withColumn("_class_absent", F.lit(True)), [*KEYS, LABEL_NAME], "left")
        .withColumn(
            "_filtered",
            F.when(F.col("_image_ok").isNull(), F.lit(f"no positive image-level label of a selected class on this image ({filters})"))
            .when(F.col("_class_absent").isNotNull(), F.concat(F.lit("its class "), F.col(LABEL_NAME), F.lit(f" is verified absent on this image ({filters})"))),
        )
    )
    # Copies are ranked among the boxes the filter keeps (the filtered ones form their
    # own windows); the ranked frame is cached once so that the kept boxes and both
    # kinds of rejects are cut from it without running the joins again.
    kept_by_filter = F.col("_filtered").isNull()
    same_box = Window.partitionBy(*KEYS, LABEL_NAME, *BOX_COORDINATES, kept_by_filter).orderBy(*BOX_FIELDS)
    ranked = marked.withColumn("_copy", F.row_number().over(same_box)).persist()
    try:
        boxes = ranked.filter(kept_by_filter & (F.col("_copy") == 1)).select(*SELECTED_BOX_COLUMNS).persist()
        dropped = (
            _as_rejects(ranked.filter(~kept_by_filter), IMAGE_LABEL_FILTER, F.col("_filtered"))
            .unionByName(
                _as_rejects(
                    ranked.filter(kept_by_filter & (F.col("_copy") > 1)),
                    DUPLICATE_BOX,
                    F.concat(F.lit("the same class and coordinates are listed more than once for this image (this row's Source: "), F.col("Source"), F.lit(")")),
                )
            )
            .persist()
        )
        box_rows, kept, rejected = _totals((all_boxes, _rows()), (boxes, _rows()), (dropped, _rows()))
        log.info(
            "%d box rows of the selected classes: %d kept, %d rejected by the image-level filter (%s) or as duplicates",
            box_rows, kept, rejected, filters,
        )
        if kept + rejected != box_rows:
            raise RuntimeError(f"{box_rows} box rows of the selected classes but {kept} kept + {rejected} rejected: report this bug")
    finally:
        all_boxes.unpersist()
        ranked.unpersist()
    return BoxSelection(boxes, dropped, box_rows)


# --------------------------------------------------------------------------- images


# (index of the needed images found: Subset, ImageID + where; adds path and Data to an index-joined
# frame, in the number of partitions given)
_ImageSource = Tuple[DataFrame, Callable[[DataFrame, int], DataFrame]]


def _dir_images(spark: SparkSession, data_cfg: DataConfig, needed: DataFrame) -> _ImageSource:
    """The needed images' paths, looked for in ``data.images_dirs`` (no folder is listed)."""
    index = images.find_image_files(spark, list(data_cfg.images_dirs), needed).persist()
    return index, images.with_paths_only


def _parquet_images(spark: SparkSession, images_path: str, needed: DataFrame) -> _ImageSource:
    """The needed images' rows in a Parquet of (ImageID, Data[, Subset]), matched by
    (Subset, ImageID), or by ImageID alone when the Parquet has no Subset column; only
    the row groups holding them are read."""
    rows, keys = images.parquet_row_index(spark, images_path)
    rows = rows.withColumn(IMAGE_ID, normalize_image_id(F.col(IMAGE_ID)))
    index = rows.join(needed, keys).select(*KEYS, images.FILE, images.ROW_GROUP, images.ROW).persist()
    return index, images.with_parquet_bytes


def _repeated_images(index: DataFrame) -> DataFrame:
    """(Subset, ImageID) found more than once in the image source's ``index``."""
    return index.groupBy(*KEYS).count().filter(F.col("count") > 1)


def _check_unique(index: DataFrame, images_path: str, repeated: int) -> None:
    """Fail if the image source holds an image more than once (``repeated`` of them,
    :func:`_repeated_images` counted): its boxes would be cut twice."""
    if not repeated:
        return
    shown = ", ".join(f"{r[SUBSET_COLUMN]}/{r[IMAGE_ID]}" for r in _repeated_images(index).limit(5).collect())
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
    return _as_rejects(boxes.join(index.select(*KEYS), KEYS, "left_anti"), MISSING_IMAGE, detail)


@contextmanager
def attach_images(
    spark: SparkSession, boxes: DataFrame, data_cfg: DataConfig, images_per_task: int
) -> Iterator[Tuple[DataFrame, DataFrame]]:
    """Join the selected boxes to where their image bytes are, one row per image, for the block.

    Yields ``(images, rejects)``. ``images``: :data:`IMAGE_COLUMNS` = ImageID, Subset,
    path (of the image file; null for a Parquet of bytes), Data (the bytes from a Parquet
    of bytes; null for files, which the cropping task reads: see
    :func:`bigcat_ml.oid.images.image_bytes`), boxes (array of structs of
    :data:`BOX_FIELDS`); lazy, the Parquet's bytes are read when it is consumed.
    ``rejects``: ``REJECTS_SCHEMA`` rows, reason ``missing_image``, one per box whose image
    is absent. Raises if boxes in images plus rejects differ from the boxes given.
    ``images`` comes in :func:`images.image_tasks` partitions (about ``images_per_task``
    images at most, by where the image is), the tasks that crop them and write their chips.
    The small frames cached on the way are released when the block exits, so consume both
    inside it.

    ``data_cfg.images_format``: ``dir`` looks for ``<ImageID>.jpg`` in ``images_dirs``
    (nothing listed, only the needed files opened); ``parquet`` reads a Parquet of
    (ImageID, Data[, Subset]) at ``images_path`` (only row groups with needed images).
    See :mod:`bigcat_ml.oid.images`.
    """
    needed = boxes.select(*KEYS).distinct()
    if data_cfg.images_format == "dir":
        index, add_bytes = _dir_images(spark, data_cfg, needed)
    elif data_cfg.images_format == "parquet":
        index, add_bytes = _parquet_images(spark, data_cfg.images_path, needed)
    else:
        raise ValueError(f"data.images_format={data_cfg.images_format!r}: expected 'dir' or 'parquet'")
    with_boxes = _group_boxes(boxes).join(index, KEYS).persist()
    rejects = _missing_rejects(boxes, index, data_cfg).persist()
    try:
        found = _reconcile(boxes, with_boxes, rejects, index, data_cfg.images_path)
        tasks = images.image_tasks(found, spark.sparkContext.defaultParallelism, images_per_task)
        yield add_bytes(with_boxes, tasks).select(*IMAGE_COLUMNS), rejects
    finally:
        for frame in (rejects, with_boxes, index):
            frame.unpersist()


class Selection(NamedTuple):
    """What :func:`select_images` yields."""

    labels: DataFrame  # :func:`read_selected_labels`
    boxes: DataFrame  # :func:`load_selected_boxes`: the kept boxes
    images: DataFrame  # :func:`attach_images`: one row per found image with its boxes
    missing: DataFrame  # :func:`attach_images`: a ``missing_image`` reject per box without its image
    dropped: DataFrame  # :func:`load_selected_boxes`: ``image_label_filter`` and ``duplicate_box`` rejects
    box_rows: int  # box rows of the selected classes = kept boxes + dropped


@contextmanager
def select_images(
    spark: SparkSession, data_cfg: DataConfig, preprocess_cfg: PreprocessConfig, selected: pd.DataFrame
) -> Iterator[Selection]:
    """The selected classes' labels, boxes and images, for the block: every frame cached
    on the way is released when it exits, so consume them inside it."""
    with ExitStack() as release:
        labels = read_selected_labels(spark, data_cfg, selected)
        release.callback(labels.unpersist)
        chosen = load_selected_boxes(spark, data_cfg, preprocess_cfg, selected, labels)
        release.callback(chosen.boxes.unpersist)
        release.callback(chosen.dropped.unpersist)
        images, missing = release.enter_context(attach_images(spark, chosen.boxes, data_cfg, preprocess_cfg.images_per_task))
        yield Selection(labels, chosen.boxes, images, missing, chosen.dropped, chosen.box_rows)


def _rows() -> Column:
    return F.count(F.lit(1))


def _totals(*measures: Tuple[DataFrame, Column]) -> Tuple[int, ...]:
    """Each (frame, aggregate) pair's value, from one Spark job: one action per count
    would pay a job's fixed cost each time, and a preprocess call's fixed cost is mostly
    such small jobs."""
    parts = [frame.agg(F.lit(i).alias("i"), value.cast("long").alias("n")) for i, (frame, value) in enumerate(measures)]
    return tuple(int(row["n"]) for row in sorted(reduce(DataFrame.unionByName, parts).collect(), key=lambda row: row["i"]))


def _reconcile(boxes: DataFrame, with_boxes: DataFrame, rejects: DataFrame, index: DataFrame, images_path: str) -> int:
    """Every selected box is in an image's ``boxes`` or is a reject, exactly once, and no
    image is in the ``index`` of the image source twice (checked first: a repeated image
    would place its boxes twice); returns the number of images found."""
    placed_boxes = F.coalesce(F.sum(F.size(BOXES)), F.lit(0))
    repeated, given, rejected, images_found, placed = _totals(
        (_repeated_images(index), _rows()), (boxes, _rows()), (rejects, _rows()), (with_boxes, _rows()), (with_boxes, placed_boxes)
    )
    _check_unique(index, images_path, repeated)
    log.info("%d selected boxes: %d on %d images found, %d with a missing image", given, placed, images_found, rejected)
    if placed + rejected != given:
        raise RuntimeError(f"{given} selected boxes but {placed} on found images + {rejected} rejects: report this bug")
    return images_found


# --------------------------------------------------------------------------- counts


def label_counts(labels: DataFrame, preprocess_cfg: PreprocessConfig, selected: pd.DataFrame) -> pd.DataFrame:
    """Images per selected class with a positive, a negative and an invalid image-level label.

    Index: LabelText (every selected class, 0 when absent); columns ``positive`` (passes
    the image-level filter), ``negative`` (Confidence below min_confidence) and
    ``invalid_confidence`` (not a number in [0, 1], see :func:`_has_confidence`), counting
    distinct (Subset, ImageID) within the configured Sources.
    """
    kind = (
        F.when(~_has_confidence(), INVALID_CONFIDENCE)
        .when(_is_positive(preprocess_cfg), "positive")
        .otherwise("negative")
    )
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
    table = table.reindex(index=names, columns=["positive", "negative", INVALID_CONFIDENCE]).fillna(0).astype(int)
    invalid = int(table[INVALID_CONFIDENCE].sum())
    if invalid:
        log.warning(
            "%d image(s) carry an image-level label of a selected class whose Confidence is not a number in "
            "[0, 1]; those labels count as neither positive nor negative (%s in tables/image_labels_by_class)",
            invalid, INVALID_CONFIDENCE,
        )
    return table.rename_axis(columns=None)


def box_table(boxes: DataFrame) -> pd.DataFrame:
    """One row per selected box (small: the boxes of the chosen classes): LabelText, Subset
    and the OID box flags, collected once for :func:`box_counts` and the flag rates."""
    return boxes.select(LABEL_TEXT, SUBSET_COLUMN, *BOX_FLAGS).toPandas()


def box_counts(boxes: pd.DataFrame, selected: pd.DataFrame, subsets: Sequence[str]) -> pd.DataFrame:
    """Boxes per selected class (index LabelText) and subset (one column each), 0 when
    absent; ``boxes`` is :func:`box_table`'s."""
    table = pd.crosstab(boxes[LABEL_TEXT], boxes[SUBSET_COLUMN])
    names = pd.Index(sorted(selected[DISPLAY_NAME]), name=LABEL_TEXT)
    return table.reindex(index=names, columns=list(subsets)).fillna(0).astype(int).rename_axis(columns=None)
