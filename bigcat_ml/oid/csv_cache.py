"""Parse each Open Images CSV once: a typed, checked Parquet copy that later selections read.

The V6 annotation CSVs are 3.3 GB; a sweep (other classes, another ``min_confidence``)
would otherwise parse them again on every run. The first read of a CSV converts it to
Parquet under ``data.csv_cache``: the typed columns of its schema, rows sorted by
LabelName within each file and written in small row groups, so a later selection of a
few classes reads only the row groups whose LabelName min/max can hold them (predicate
push-down) and only the columns it needs (column pruning). The copy is checked for
malformed rows once, when written; a CSV with any is refused then, as the direct read does.

An entry is keyed by the source's path, size and modification time and by the schema,
so a changed (or replaced) source gets a new entry; the old one is left for the user to
delete (see the README). An entry counts only once its ``_SUCCESS`` marker is written
after the check, so a conversion that was interrupted or failed is redone.
"""
from __future__ import annotations

import hashlib
import json
import logging
from functools import reduce
from typing import Mapping

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from bigcat_ml.oid.readers import IMAGE_ID, RAW_IMAGE_ID, SUBSET_COLUMN, bad_row, check_rows, read_csv
from bigcat_ml.storage import fs

log = logging.getLogger(__name__)

# Bump when the layout of a cache entry changes, so old entries are not read.
CACHE_FORMAT = 2
DONE_MARKER = "_bigcat_done.json"
SORT_COLUMN = "LabelName"
# Small row groups make the LabelName min/max statistics selective (parquet.block.size, bytes).
ROW_GROUP_BYTES = 8 * 1024 * 1024


def cache_key(path: str, schema: StructType) -> str:
    """Hex key of one source file's content version: path, size, mtime and the schema read."""
    size, mtime = fs.stat(path)
    identity = json.dumps([CACHE_FORMAT, path, size, mtime, schema.jsonValue()], sort_keys=True)
    return hashlib.sha256(identity.encode("utf-8")).hexdigest()[:20]


def entry_path(cache_dir: str, path: str, schema: StructType) -> str:
    """Where the Parquet copy of ``path`` lives (``<cache>/<file name>-<key>.parquet``)."""
    name = path.rstrip("/").rsplit("/", 1)[-1]
    return fs.join(cache_dir, f"{name}-{cache_key(path, schema)}.parquet")


def cached_csv(spark: SparkSession, path: str, schema: StructType, cache_dir: str) -> DataFrame:
    """``path`` as ``schema``'s typed columns, read from its checked Parquet copy (made if needed).

    Raises as :func:`bigcat_ml.oid.readers.check_rows` does when the CSV holds malformed
    rows; no entry is kept for it then.
    """
    entry = entry_path(cache_dir, path, schema)
    url = fs.to_url(entry)
    if not fs.exists(fs.join(entry, DONE_MARKER)):
        _convert(spark, path, schema, entry)
    else:
        log.info("%s: reading its Parquet copy %s", path, entry)
    # The ImageID's spelling in the file travels along, for the check of IDs that only
    # normalisation makes equal. The columns read are named up front: Spark then takes the
    # entry's schema from us, not from a job that reads a footer (one job per file and
    # selection, a third of a second each on 2 cores), and reads no other column.
    raw = [StructField(RAW_IMAGE_ID, StringType())] if IMAGE_ID in schema.fieldNames() else []
    return spark.read.schema(StructType([*schema.fields, *raw])).parquet(url)


def _convert(spark: SparkSession, path: str, schema: StructType, entry: str) -> None:
    log.info("%s: converting to Parquet in %s (once per source version)", path, entry)
    fs.delete(entry)
    url = fs.to_url(entry)
    (
        read_csv(spark, path, schema)
        .sortWithinPartitions(SORT_COLUMN)
        .write.option("parquet.block.size", ROW_GROUP_BYTES)
        .mode("overwrite")
        .parquet(url)
    )
    written = spark.read.parquet(url)
    try:
        check_rows(written.filter(bad_row(schema)), schema, path)
    except ValueError:
        fs.delete(entry)
        raise
    fs.write_text(fs.join(entry, DONE_MARKER), json.dumps({"source": path, "stat": list(fs.stat(path))}))


def read_subsets_cached(spark: SparkSession, files: Mapping[str, str], schema: StructType, cache_dir: str) -> DataFrame:
    """As :func:`bigcat_ml.oid.readers.read_subsets`, through the cache; rows are known good,
    so there is no corrupt-record column to check."""
    frames = [
        cached_csv(spark, path, schema, cache_dir).withColumn(SUBSET_COLUMN, F.lit(subset))
        for subset, path in files.items()
    ]
    return reduce(DataFrame.unionByName, frames)

