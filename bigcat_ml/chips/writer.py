"""Write a chip dataset folder all or nothing: chips (Petastorm), rejects, summary, manifest.

A preprocess output folder holds ``chips/`` (the Petastorm dataset), ``rejects/``
(Parquet, :data:`bigcat_ml.oid.rejects.REJECTS_SCHEMA`), ``summary.json`` (counts,
selected classes, content digest) and ``manifest.json`` (the hash of every other file),
and nothing else (:mod:`bigcat_ml.chips.layout`). It is a local path or a URI: Spark
writes the tables, :mod:`bigcat_ml.storage.fs` everything else.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Mapping, Optional

import pandas as pd
from petastorm.etl.dataset_metadata import materialize_dataset
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from bigcat_ml.chips import digest
from bigcat_ml.chips.layout import (
    MANIFEST_FILE, REJECTS_DIR, SUMMARY_CHIPS, SUMMARY_CONTENT_DIGEST, SUMMARY_FILE, SUMMARY_MANIFEST_SHA256,
    SUMMARY_REJECTS, SUMMARY_REJECTS_BY_REASON, dataset_url,
)
from bigcat_ml.chips.manifest import build_manifest
from bigcat_ml.chips.schema import CHIP_KEY, ChipSchema
from bigcat_ml.oid.schemas import SUBSET
from bigcat_ml.storage import fs, publish

log = logging.getLogger(__name__)

# Rejects are small rows (keys, coordinates, a reason): they go in files this big, not
# in one file per partition of the union they come from (dozens of tiny files, each a
# task's fixed cost, on a small dataset).
REJECT_ROWS_PER_FILE = 1_000_000


@dataclass(frozen=True)
class Tally:
    """Chips and rejects counted by ``LabelName`` and ``reason`` (None on chips), with the
    chips' content digest: what ``summary.json`` records, from one aggregation."""

    by_label: pd.DataFrame  # LabelName, reason (None: chip), count
    content_digest: str

    def summary(self) -> Dict[str, Any]:
        """The counts and digest that go in ``summary.json``."""
        rejected = self.by_label[self.by_label["reason"].notna()]
        by_reason = {str(reason): int(n) for reason, n in rejected.groupby("reason")["count"].sum().items()}
        return {
            SUMMARY_CHIPS: int(self.by_label.loc[self.by_label["reason"].isna(), "count"].sum()),
            SUMMARY_REJECTS: sum(by_reason.values()),
            SUMMARY_REJECTS_BY_REASON: dict(sorted(by_reason.items())),
            SUMMARY_CONTENT_DIGEST: self.content_digest,
        }


def tally(chips: DataFrame, rejects: DataFrame) -> Tally:
    """Count ``chips`` and ``rejects`` by class and reason and take the chips' digest, in one
    Spark job (:mod:`bigcat_ml.chips.digest`: the digest adds up over the groups)."""
    sums = digest.chunk_sums()
    no_sums = [F.lit(None).cast("decimal(38,0)").alias(name) for name in digest.CHUNK_COLUMNS]
    chip_hashes = chips.groupBy("LabelName").agg(F.count(F.lit(1)).alias("count"), *sums)
    reject_counts = rejects.groupBy("LabelName", "reason").agg(F.count(F.lit(1)).alias("count"), *no_sums)
    rows = chip_hashes.select("LabelName", F.lit(None).cast("string").alias("reason"), "count", *digest.CHUNK_COLUMNS)
    collected = rows.unionByName(reject_counts).collect()
    chip_rows = [row for row in collected if row["reason"] is None]
    digest_sums = [sum(int(row[name] or 0) for row in chip_rows) for name in digest.CHUNK_COLUMNS]
    by_label = pd.DataFrame([(row["LabelName"], row["reason"], int(row["count"])) for row in collected],
                            columns=["LabelName", "reason", "count"])
    return Tally(by_label, digest.combine(sum(row["count"] for row in chip_rows), digest_sums))


def stored_counts(folder: str) -> Dict[str, int]:
    """Chips and rejects the written files in ``folder`` hold, from their footers: the first
    look at a staged dataset, which fault tests hook to act once the parts are written."""
    return {
        SUMMARY_CHIPS: fs.parquet_rows(dataset_url(folder)),
        SUMMARY_REJECTS: fs.parquet_rows(fs.to_url(fs.join(folder, REJECTS_DIR))),
    }


def _read_back(spark: SparkSession, folder: str) -> Tally:
    """:func:`tally` of the written files: every chip read again (full verification only)."""
    return tally(spark.read.parquet(dataset_url(folder)), spark.read.parquet(fs.to_url(fs.join(folder, REJECTS_DIR))))


def _check_written(spark: SparkSession, folder: str, counted: Tally, read_back: bool) -> None:
    """Raise unless the written files hold what was counted while writing (the files' row
    counts; with ``read_back``, also every count by class and reason and the digest)."""
    expected = counted.summary()
    stored = stored_counts(folder)
    if stored != {key: expected[key] for key in stored}:
        raise RuntimeError(f"{folder}: the files hold {stored} but {expected} were counted while writing; this is a bug, please report it")
    if read_back:
        again = _read_back(spark, folder).summary()
        if again != expected:
            raise RuntimeError(f"{folder}: read back, the files hold {again} but {expected} were counted while writing")


def _write_parts(
    spark: SparkSession,
    chips: DataFrame,
    rejects: DataFrame,
    folder: str,
    rows_per_file: int,
    row_group_size_mb: int,
    reject_rows: int,
) -> None:
    chips_url = dataset_url(folder)
    # The chip column already holds JPEG bytes in CompressedImageCodec's format, so the
    # rows are written as they are; materialize_dataset adds the Unischema metadata. Each
    # task writes its chips in key order: the order within a file is then a property of the
    # chips, not of the query plan that cut them, and a seeded training that reads the
    # files in order sees the same sequence whatever the plan.
    with materialize_dataset(spark, chips_url, ChipSchema, row_group_size_mb):
        in_order = chips.select(*ChipSchema.fields).sortWithinPartitions(SUBSET, *CHIP_KEY)
        in_order.write.option("maxRecordsPerFile", rows_per_file).parquet(chips_url)
    reject_files = max(1, math.ceil(reject_rows / REJECT_ROWS_PER_FILE))
    rejects.coalesce(reject_files).write.parquet(fs.to_url(fs.join(folder, REJECTS_DIR)))


def _cancel_jobs(spark: SparkSession, wait_seconds: float = 60.0) -> None:
    """Cancel the session's jobs and wait for them to end, so that no task writes into a
    staging folder after it is deleted."""
    context = spark.sparkContext
    context.cancelAllJobs()
    tracker = context.statusTracker()
    deadline = time.monotonic() + wait_seconds
    while (tracker.getActiveJobsIds() or tracker.getActiveStageIds()) and time.monotonic() < deadline:
        time.sleep(0.05)


def check_output(output: str, overwrite: bool) -> None:
    """Refuse an existing ``output`` unless ``overwrite``; cheap, so callers check first.

    Leftovers of other runs next to ``output`` are reported, and removed when their run
    is provably dead (:func:`bigcat_ml.storage.publish.sweep_leftovers`). The move into
    place checks again, atomically.
    """
    publish.sweep_leftovers(output)
    if fs.exists(output) and not overwrite:
        raise FileExistsError(
            f"chip dataset {output} already exists; set preprocess.overwrite=true to replace it "
            "or choose another preprocess.output"
        )


def write_chip_dataset(
    spark: SparkSession,
    chips: DataFrame,
    rejects: DataFrame,
    output: str,
    *,
    overwrite: bool = False,
    summary: Optional[Mapping[str, Any]] = None,
    rows_per_file: int = 2000,
    row_group_size_mb: int = 32,
    verify: Optional[Callable[[Dict[str, Any]], None]] = None,
    lock_wait_s: float = 0.0,
    counted: Optional[Tally] = None,
    read_back: bool = False,
) -> Dict[str, Any]:
    """Write ``<output>/chips`` (Petastorm), ``rejects`` (Parquet), ``summary.json`` and ``manifest.json``.

    All or nothing: everything goes to a staging folder that is published at ``output``
    once complete and checked (:func:`bigcat_ml.storage.publish.staged`), so the previous
    dataset (or none) stays at ``output`` until the new one replaces it in one step.
    ``verify`` is called with the measured summary before that move: raise in it to
    abandon the dataset (the counts are reconciled there). An existing ``output`` is
    refused unless ``overwrite``, also when another run publishes it while this one
    writes, and replaced only once no run reads it (waiting up to ``lock_wait_s``
    seconds, :func:`bigcat_ml.storage.publish.reading`). ``chips`` has the ChipSchema columns, ``rejects`` the REJECTS_SCHEMA ones;
    ``summary`` (plain JSON values) is stored with the measured ``chips``, ``rejects``,
    ``rejects_by_reason`` and ``content_digest``; the manifest, written last, hashes every
    file, ``summary.json`` included (:func:`build_manifest`). Returned: the summary with
    ``manifest_sha256`` (of ``manifest.json``), which a run records to pin the whole folder.
    Each partition of ``chips`` becomes a file in key order (split at ``rows_per_file``
    rows): the chips are not shuffled again, so which file holds a chip is decided by the
    partitions that cut it (:func:`bigcat_ml.oid.images.with_paths_only` hashes images).

    The counts and the digest come from one aggregation of ``chips`` and ``rejects``
    (:func:`tally`; pass it as ``counted`` when the caller computed it for its own use),
    and are checked against the row counts in the written files' footers; nothing
    written is read again unless ``read_back`` (every count and the digest recomputed
    from the files). ``chips`` and ``rejects`` are each computed twice (counted, then
    written): persist their common parent if it is expensive.
    """
    check_output(output, overwrite)
    with publish.staged(output, overwrite, "preprocess.output", "preprocess.overwrite", lock_wait_s) as staging:
        log.info("writing the chip dataset to %s, moved to %s once complete", staging, output)
        try:
            counted = counted or tally(chips, rejects)
            _write_parts(spark, chips, rejects, staging, rows_per_file, row_group_size_mb, counted.summary()[SUMMARY_REJECTS])
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM (runtime.signals): no task may write on
            _cancel_jobs(spark)
            raise
        _check_written(spark, staging, counted, read_back)
        written = {**(summary or {}), **counted.summary()}
        if verify is not None:
            verify(written)
        fs.write_text(fs.join(staging, SUMMARY_FILE), json.dumps(written, indent=2, sort_keys=True))
        manifest = json.dumps(build_manifest(staging), indent=1, sort_keys=True)
        fs.write_text(fs.join(staging, MANIFEST_FILE), manifest)
        written[SUMMARY_MANIFEST_SHA256] = hashlib.sha256(manifest.encode("utf-8")).hexdigest()
    log.info("wrote %d chips and %d rejects to %s", written[SUMMARY_CHIPS], written[SUMMARY_REJECTS], output)
    return written
