"""Finding and reading the needed image bytes without listing or scanning everything.

Open Images' train folder holds 1,743,042 JPEGs, of which a class selection needs a few
thousand. Both layouts are read by what is needed, not by what is stored:

- **files** (``data.images_format=dir``): the path of ``<ImageID>.jpg`` is built from the
  ImageID and looked for in each of ``data.images_dirs`` in order (``{subset}``; ``{shard}``
  is the ImageID's first character, as in the tar shards' ``train_0`` … ``train_f``), inside
  Spark tasks, through :mod:`bigcat_ml.storage.fs`. No folder is listed.
- **Parquet of bytes** (``data.images_format=parquet``, ``ImageID, Data[, Subset]``): the
  ImageID column is read first with the row group and row of each image; then only the
  row groups holding needed images are opened, and only their ``Data`` column.
"""
from __future__ import annotations

import logging
import math
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import BinaryType, IntegerType, StringType, StructField, StructType

from bigcat_ml.oid.readers import IMAGE_ID, SUBSET_COLUMN
from bigcat_ml.oid.schemas import DATA
from bigcat_ml.storage import fs

log = logging.getLogger(__name__)

PATH = "path"
FILE, ROW_GROUP, ROW = "_file", "_row_group", "_row"
# Name variants tried in each folder: OID writes lower-case ``.jpg``; hand-made copies vary.
EXTENSIONS = (".jpg", ".JPG", ".jpeg", ".JPEG")
TASKS_PER_CORE = 4

LOCATED_SCHEMA = StructType(
    [StructField(SUBSET_COLUMN, StringType()), StructField(IMAGE_ID, StringType()), StructField(PATH, StringType())]
)


def candidate_paths(folders: Sequence[str], subset: str, image_id: str) -> List[str]:
    """Every path ``<ImageID>.jpg`` may have, in the order they are tried."""
    shard = image_id[:1]
    names = dict.fromkeys(f"{stem}{ext}" for stem in (image_id, image_id.upper()) for ext in EXTENSIONS)
    return [fs.join(folder.format(subset=subset, shard=shard), name) for folder in folders for name in names]


def locate(folders: Sequence[str], subset: str, image_id: str) -> Optional[str]:
    """The first existing candidate path of the image, or None."""
    return fs.first_existing(candidate_paths(folders, subset, image_id))


def _locate_partition(batches: Iterator[pd.DataFrame], folders: Sequence[str]) -> Iterator[pd.DataFrame]:
    for batch in batches:
        paths = [locate(folders, s, i) for s, i in zip(batch[SUBSET_COLUMN], batch[IMAGE_ID])]
        yield batch.assign(**{PATH: paths})[[SUBSET_COLUMN, IMAGE_ID, PATH]]


def find_image_files(spark: SparkSession, folders: Sequence[str], needed: DataFrame) -> DataFrame:
    """(Subset, ImageID, path) of each needed image found in ``folders``; absent ones are left out.

    The look-ups run in a few Spark tasks per core, each a handful of ``stat`` calls per image.
    """
    if not folders:
        raise ValueError("data.images_dirs is empty: list the folders that hold <ImageID>.jpg")
    tasks = spark.sparkContext.defaultParallelism * TASKS_PER_CORE
    located = needed.select(SUBSET_COLUMN, IMAGE_ID).repartition(tasks).mapInPandas(
        lambda batches: _locate_partition(batches, list(folders)), schema=LOCATED_SCHEMA
    )
    return located.filter(F.col(PATH).isNotNull())


def image_tasks(images: int, slots: int, images_per_task: int) -> int:
    """How many tasks to cut ``images`` in: whole waves over the ``slots`` task slots, each
    task at most ``images_per_task`` images.

    Each Python task costs its core a fixed start-up whatever it holds, and a core that ends
    its last task early idles while another finishes, so a few tasks per slot beat the
    shuffle's partitions (measured in docs/decisions.md, 2026-12-04).
    """
    waves = max(1, math.ceil(images / (slots * images_per_task)))
    return slots * waves


def with_paths_only(frame: DataFrame, tasks: int) -> DataFrame:
    """``frame`` (with a ``path`` column) in ``tasks`` partitions by a hash of each image's
    (Subset, ImageID), plus a null ``Data``: each file is read by the task that crops it
    (:func:`image_bytes`), so its bytes never pass through the JVM.

    The hash makes which task (and so which chip file) holds an image a property of the
    images, not of the plan that found them: a seeded training that reads the files in
    order sees the same sequence after a change to the selection's plan.
    """
    return frame.repartition(tasks, SUBSET_COLUMN, IMAGE_ID).withColumn(DATA, F.lit(None).cast(BinaryType()))


def image_bytes(data: Optional[bytes], path: Optional[str]) -> Optional[bytes]:
    """An image's bytes: those its row carries (Parquet of bytes), else its file's, else None.

    Reading the file where it is cropped saves two Arrow copies of every image (Python to
    the JVM and back) over reading it in a stage of its own.
    """
    if data is not None or path is None:
        return data
    return fs.read_bytes(path)


# --------------------------------------------------------------------------- Parquet of bytes


def parquet_files(images_path: str) -> List[str]:
    """The Parquet files of ``images_path`` (one file or a folder of them, hidden files skipped)."""
    filesystem, inner = fs.resolve(images_path)
    if filesystem.isfile(inner):
        return [images_path]
    if not filesystem.exists(inner):
        raise FileNotFoundError(f"{images_path} does not exist: set data.images_path to the Parquet of image bytes")
    found = [
        p for p in sorted(filesystem.find(inner))
        if p.endswith(".parquet") and not any(part.startswith(("_", ".")) for part in p[len(inner):].split("/"))
    ]
    prefix = images_path[: len(images_path) - len(inner)] if fs.is_uri(images_path) else ""
    return [prefix + p if prefix and not p.startswith(prefix) else p for p in found]


def open_parquet(path: str) -> pq.ParquetFile:
    filesystem, inner = fs.pyarrow_filesystem(path)
    return pq.ParquetFile(filesystem.open_input_file(inner))


def row_index(path: str) -> pd.DataFrame:
    """(ImageID[, Subset], _file, _row_group, _row) of every row of one Parquet file;
    reads the ImageID (and Subset) columns only."""
    parquet = open_parquet(path)
    names = parquet.schema_arrow.names
    missing = [c for c in (IMAGE_ID, DATA) if c not in names]
    if missing:
        raise ValueError(
            f"{path}: missing column(s) {missing}; columns found: {names}. "
            "data.images_format=parquet expects (ImageID, Data[, Subset])"
        )
    columns = [c for c in (IMAGE_ID, SUBSET_COLUMN) if c in names]
    # One read of the ID columns, row groups placed from the footer's row counts: reading
    # them row group by row group cost ~30 ms each (80 s for 2,500 groups).
    counts = [parquet.metadata.row_group(g).num_rows for g in range(parquet.num_row_groups)]
    ids = parquet.read(columns=columns).to_pandas()
    return ids.assign(**{
        FILE: path,
        ROW_GROUP: np.repeat(np.arange(len(counts), dtype=np.int64), counts),
        ROW: np.concatenate([np.arange(n, dtype=np.int64) for n in counts]) if counts else np.zeros(0, np.int64),
    })


def has_subset_column(path: str) -> bool:
    return SUBSET_COLUMN in open_parquet(path).schema_arrow.names


def parquet_row_index(spark: SparkSession, images_path: str) -> Tuple[DataFrame, List[str]]:
    """Where each image of the Parquet is: (keys, _file, _row_group, _row); and the join keys
    (Subset and ImageID, or ImageID alone when the Parquet has no Subset column)."""
    paths = parquet_files(images_path)
    if not paths:
        raise FileNotFoundError(f"{images_path} holds no .parquet file: set data.images_path to the Parquet of image bytes")
    keys = [SUBSET_COLUMN, IMAGE_ID] if has_subset_column(paths[0]) else [IMAGE_ID]
    schema = StructType(
        [StructField(k, StringType()) for k in keys]
        + [StructField(FILE, StringType()), StructField(ROW_GROUP, IntegerType()), StructField(ROW, IntegerType())]
    )

    def index(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            for path in batch["value"]:
                yield row_index(path)[[f.name for f in schema.fields]]

    files = spark.createDataFrame([(p,) for p in paths], "value string").repartition(min(len(paths), spark.sparkContext.defaultParallelism * TASKS_PER_CORE))
    return files.mapInPandas(index, schema=schema), keys


def read_rows(parquet: pq.ParquetFile, row_group: int, rows: Sequence[int]) -> List[bytes]:
    """The ``Data`` values of ``rows`` in one row group: reads only that row group's Data chunk.

    ``parquet`` is opened once per file by the caller: opening parses the footer, whose
    size grows with the table's row groups (docs/decisions.md, Parquet of bytes).
    """
    data = parquet.read_row_group(row_group, columns=[DATA]).column(DATA)
    return [data[r].as_py() for r in rows]


def _read_parquet_rows(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    opened: Dict[str, pq.ParquetFile] = {}
    for batch in batches:
        table = batch.to_pydict()
        groups: Dict[Tuple[str, int], List[int]] = {}
        for i, key in enumerate(zip(table[FILE], table[ROW_GROUP])):
            groups.setdefault(key, []).append(i)
        data: List[Optional[bytes]] = [None] * batch.num_rows
        for (path, group), positions in groups.items():
            if path not in opened:
                opened[path] = open_parquet(path)
            for position, value in zip(positions, read_rows(opened[path], group, [table[ROW][p] for p in positions])):
                data[position] = value
        yield pa.RecordBatch.from_arrays([*batch.columns, pa.array(data, pa.binary())], names=[*batch.schema.names, DATA])


def with_parquet_bytes(frame: DataFrame, tasks: int) -> DataFrame:
    """``frame`` (with _file, _row_group, _row) plus ``Data``, read row group by row group,
    and a null ``path`` (the bytes are in the row).

    Rows of one row group are brought together first, in one of ``tasks`` partitions, so
    each needed row group is opened once per task (a row group whose rows span two Arrow
    batches is opened twice).
    """
    schema = StructType([*frame.schema.fields, StructField(DATA, BinaryType(), True)])
    grouped = frame.repartition(tasks, FILE, ROW_GROUP).sortWithinPartitions(FILE, ROW_GROUP)
    return grouped.mapInArrow(_read_parquet_rows, schema=schema).withColumn(PATH, F.lit(None).cast(StringType()))
