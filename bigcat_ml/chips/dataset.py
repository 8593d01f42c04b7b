"""The chip dataset: its Petastorm Unischema, its atomic writer, and its readers.

A preprocess output folder holds ``chips/`` (the Petastorm dataset), ``rejects/``
(Parquet, :data:`bigcat_ml.oid.rejects.REJECTS_SCHEMA`), ``summary.json`` (counts,
selected classes, content digest) and ``manifest.json`` (the hash of every other file),
and nothing else (:mod:`bigcat_ml.chips.layout`). It is a local path or a URI: Spark
writes the tables, :mod:`bigcat_ml.storage.fs` everything else. Every reader here checks
the folder first (:mod:`bigcat_ml.chips.trusted`).
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import time
import uuid
import warnings
from contextlib import contextmanager, redirect_stdout
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, Mapping, Optional

import numpy as np
from petastorm import make_batch_reader, make_reader
from petastorm.codecs import CompressedImageCodec, ScalarCodec
from petastorm.etl.dataset_metadata import materialize_dataset
from petastorm.reader import Reader
from petastorm.unischema import Unischema, UnischemaField
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, IntegerType, StringType

from bigcat_ml.chips import trusted
from bigcat_ml.chips.layout import CHIPS_DIR, MANIFEST_FILE, REJECTS_DIR, SUMMARY_FILE
from bigcat_ml.oid.schemas import BOX_COORDINATES, BOX_FLAGS
from bigcat_ml.storage import fs, publish

if TYPE_CHECKING:
    import tensorflow as tf

log = logging.getLogger(__name__)

# In a config family's folder, the link to the chip dataset written last.
LATEST_ALIAS = "latest"

# What identifies a chip: its image, its class and its box, in OID's own names and units
# (coordinates are fractions of the image size). Evaluation, tests and benchmarks join
# and sort chips on it.
CHIP_KEY = ("ImageID", "LabelName", *BOX_COORDINATES)


def _string(name: str) -> UnischemaField:
    return UnischemaField(name, np.str_, (), ScalarCodec(StringType()), False)


def _double(name: str) -> UnischemaField:
    return UnischemaField(name, np.float64, (), ScalarCodec(DoubleType()), False)


def _int(name: str) -> UnischemaField:
    return UnischemaField(name, np.int32, (), ScalarCodec(IntegerType()), False)


ChipSchema = Unischema(
    "ChipSchema",
    [
        _string("ImageID"),
        _string("Subset"),
        _string("Source"),
        _string("LabelName"),
        _string("LabelText"),
        *[_double(c) for c in BOX_COORDINATES],
        *[_int(c) for c in BOX_FLAGS],
        _int("image_width"),  # source image size in pixels, after EXIF orientation
        _int("image_height"),
        # RGB chip stored as JPEG bytes; petastorm decodes it to uint8 (h, w, 3).
        UnischemaField("chip", np.uint8, (None, None, 3), CompressedImageCodec("jpeg"), False),
        _int("chip_width"),
        _int("chip_height"),
    ],
)


# ---------------------------------------------------------------------------- locations


_join = fs.join
_to_url = fs.to_url


def dataset_url(output: str) -> str:
    """URL of the Petastorm chip dataset (``<output>/chips``) for petastorm and Spark."""
    return _to_url(_join(output, CHIPS_DIR))


# -------------------------------------------------------------------------------- write


def content_digest(chips: DataFrame) -> str:
    """sha256 hex digest of the chip rows (every column, chip bytes included).

    Independent of row order, partitioning and file names: each row is hashed with
    ``sha2``, its 256 bits are summed in four 64-bit chunks across rows (an additive
    multiset hash, computed by Spark without collecting rows), and the row count and
    the four sums are hashed once more. A content fingerprint, not a security seal.
    """
    identity = [
        F.coalesce(F.col(c).cast("string"), F.lit("<null>")) for c in ChipSchema.fields if c != "chip"
    ]
    row_hash = F.sha2(F.concat_ws("\x1f", *identity, F.sha2(F.col("chip"), 256)), 256)
    chunks = [
        F.sum(F.conv(F.substring(row_hash, 1 + 16 * i, 16), 16, 10).cast("decimal(38,0)"))
        for i in range(4)
    ]
    row = chips.agg(F.count(F.lit(1)), *chunks).first()
    combined = json.dumps([int(row[0]), *[str(v or 0) for v in row[1:]]])
    return hashlib.sha256(combined.encode("utf-8")).hexdigest()


def _measure(spark: SparkSession, folder: str) -> Dict[str, Any]:
    """Counts and digest read back from the written files (no recomputation upstream)."""
    chips = spark.read.parquet(dataset_url(folder))
    rejects = spark.read.parquet(_to_url(_join(folder, REJECTS_DIR)))
    by_reason = {r["reason"]: int(r["count"]) for r in rejects.groupBy("reason").count().collect()}
    return {
        "chips": chips.count(),
        "rejects": sum(by_reason.values()),
        "rejects_by_reason": dict(sorted(by_reason.items())),
        "content_digest": content_digest(chips),
    }


def _write_parts(
    spark: SparkSession,
    chips: DataFrame,
    rejects: DataFrame,
    folder: str,
    rows_per_file: int,
    row_group_size_mb: int,
) -> None:
    chips_url = dataset_url(folder)
    # The chip column already holds JPEG bytes in CompressedImageCodec's format, so the
    # rows are written as they are; materialize_dataset adds the Unischema metadata.
    with materialize_dataset(spark, chips_url, ChipSchema, row_group_size_mb):
        chips.select(*ChipSchema.fields).write.option("maxRecordsPerFile", rows_per_file).parquet(chips_url)
    rejects.write.parquet(_to_url(_join(folder, REJECTS_DIR)))


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
    ``chips`` and ``rejects`` are each computed once: persist their common parent if it
    is expensive.
    """
    check_output(output, overwrite)
    with publish.staged(output, overwrite, "preprocess.output", "preprocess.overwrite", lock_wait_s) as staging:
        log.info("writing the chip dataset to %s, moved to %s once complete", staging, output)
        try:
            _write_parts(spark, chips, rejects, staging, rows_per_file, row_group_size_mb)
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM (runtime.signals): no task may write on
            _cancel_jobs(spark)
            raise
        written = {**(summary or {}), **_measure(spark, staging)}
        if verify is not None:
            verify(written)
        fs.write_text(_join(staging, SUMMARY_FILE), json.dumps(written, indent=2, sort_keys=True))
        manifest = json.dumps(build_manifest(staging), indent=1, sort_keys=True)
        fs.write_text(_join(staging, MANIFEST_FILE), manifest)
        written["manifest_sha256"] = hashlib.sha256(manifest.encode("utf-8")).hexdigest()
    log.info("wrote %d chips and %d rejects to %s", written["chips"], written["rejects"], output)
    return written


# ------------------------------------------------------------------------------ manifest


def _data_files(output: str) -> Dict[str, Any]:
    """``{path below output: (bytes, modification time)}`` of every file but the manifest."""
    return {relative: found for relative, found in fs.list_files(output).items() if relative != MANIFEST_FILE}


def build_manifest(output: str) -> Dict[str, Dict[str, Any]]:
    """Size, modification time and sha256 of every file of the dataset at ``output``
    (``summary.json`` included) but the manifest itself."""
    return {
        path: {"bytes": size, "mtime": mtime, "sha256": fs.sha256(_join(output, path))}
        for path, (size, mtime) in sorted(_data_files(output).items())
    }


def _read_if_there(path: str) -> Optional[bytes]:
    try:
        return fs.read_bytes(path)
    except (FileNotFoundError, OSError):
        return None


def _summary_problem(output: str, summary_bytes: bytes, manifest: Mapping[str, Any]) -> Optional[str]:
    """Why ``summary.json`` is not the one ``manifest.json`` records, or None when it is."""
    entry = manifest.get(SUMMARY_FILE)
    if entry is None:
        return f"{output}: its {MANIFEST_FILE} does not list {SUMMARY_FILE} (written by an older version)"
    if hashlib.sha256(summary_bytes).hexdigest() != entry["sha256"]:
        return f"{output}: {SUMMARY_FILE} is not the one its {MANIFEST_FILE} records (edited after it was written)"
    return None


def mismatch(output: str, content_digest: str, manifest_sha256: Optional[str], full: bool = False) -> Optional[str]:
    """Why the dataset at ``output`` is not the one a run recorded, or None when it is.

    The cheap check reads ``summary.json`` and ``manifest.json`` and lists the files: the
    manifest's sha256 must be the recorded one, the summary must hash to the manifest's
    entry and hold the recorded content digest, and every other file must be there with
    the manifest's size and modification time, and no other. ``full`` also re-hashes
    every file against the manifest's sha256.
    """
    summary_bytes = _read_if_there(_join(output, SUMMARY_FILE))
    if summary_bytes is None:
        return f"no {SUMMARY_FILE} in {output}"
    manifest_bytes = _read_if_there(_join(output, MANIFEST_FILE))
    if manifest_bytes is None or hashlib.sha256(manifest_bytes).hexdigest() != manifest_sha256:
        return f"{output}: {MANIFEST_FILE} is missing or not the one the run recorded"
    manifest = json.loads(manifest_bytes)
    problem = _summary_problem(output, summary_bytes, manifest)
    if problem:
        return problem
    if json.loads(summary_bytes).get("content_digest") != content_digest:
        return f"{output} holds a dataset of another content digest"
    found = _data_files(output)
    added, removed = sorted(set(found) - set(manifest)), sorted(set(manifest) - set(found))
    if added or removed:
        return (
            f"{output}: files were added ({trusted.name_some(added) or 'none'}) or removed "
            f"({trusted.name_some(removed) or 'none'}) since it was written"
        )
    for path, (size, mtime) in found.items():
        if (size, mtime) != (manifest[path]["bytes"], manifest[path]["mtime"]):
            return f"{output}: {path} was changed since it was written"
        if full and fs.sha256(_join(output, path)) != manifest[path]["sha256"]:
            return f"{output}: {path} no longer has the content it was written with"
    return None


def point_alias(output: str, alias: str) -> None:
    """Make the local symlink ``alias`` point at ``output``, replacing it in one step
    (nothing on stores without symlinks)."""
    target, link = fs.local_path(output), fs.local_path(alias)
    if target is None or link is None:
        return
    temporary = f"{link}.tmp-{uuid.uuid4().hex[:12]}"
    os.symlink(os.path.relpath(target, os.path.dirname(link)), temporary)
    os.replace(temporary, link)


# --------------------------------------------------------------------------------- read


def read_summary(output: str) -> Dict[str, Any]:
    """The ``summary.json`` of a chip dataset (local path or URI), once it is the one its
    ``manifest.json`` records (evaluate and train take the counts and the selected classes,
    whose order is the label order, from it), with ``manifest_sha256``: what
    :func:`write_chip_dataset` returned."""
    try:
        summary_bytes = fs.read_bytes(_join(output, SUMMARY_FILE))
    except FileNotFoundError as error:
        raise FileNotFoundError(
            f"no {SUMMARY_FILE} in {output}: is it a chip dataset written by the preprocess step?"
        ) from error
    manifest_bytes = _read_if_there(_join(output, MANIFEST_FILE))
    if manifest_bytes is None:
        problem: Optional[str] = f"no {MANIFEST_FILE} in {output}"
    else:
        problem = _summary_problem(output, summary_bytes, json.loads(manifest_bytes))
    if problem:
        raise trusted.UntrustedDatasetError(
            f"{problem}; its counts and selected classes cannot be trusted: {trusted.REBUILD_ADVICE}"
        )
    return {**json.loads(summary_bytes), "manifest_sha256": hashlib.sha256(manifest_bytes).hexdigest()}


def _checked_url(output: str) -> str:
    """:func:`dataset_url`, once the folder holds only files the writer writes and the
    pickled Unischema is ChipSchema's (:mod:`bigcat_ml.chips.trusted`): every reader of
    the chips, Spark's included, opens them through it."""
    trusted.check_written_files(output)
    trusted.check_pickled_schema(dataset_url(output), ChipSchema)
    return dataset_url(output)


def read_chips_spark(spark: SparkSession, output: str) -> DataFrame:
    """The chip rows as a Spark DataFrame (``chip`` holds the JPEG bytes)."""
    return spark.read.parquet(_checked_url(output))


def count_chips(output: str, subset: Optional[str] = None) -> int:
    """Chips stored in the dataset (of one ``Subset``, when given), from the Parquet files."""
    import pyarrow.dataset as pads

    stored = pads.dataset(_checked_url(output), format="parquet")
    return stored.count_rows(filter=None if subset is None else pads.field("Subset") == subset)


def subset_predicate(subset: Optional[str]) -> Optional[Any]:
    """A petastorm reader ``predicate`` keeping the chips of one ``Subset`` (None: all).

    Petastorm reads the ``Subset`` column first and loads the other columns, chip bytes
    included, only for the rows it keeps.
    """
    if subset is None:
        return None
    from petastorm.predicates import in_lambda

    return in_lambda(["Subset"], lambda value: value == subset)


def decode_chip(jpeg: bytes) -> np.ndarray:
    """JPEG chip bytes to a uint8 RGB array of shape (height, width, 3), as make_reader does."""
    field = ChipSchema.fields["chip"]
    return field.codec.decode(field, jpeg)


def _quiet_on_close(reader: Reader) -> Reader:
    """petastorm 0.13.1's reader prints ``Cache cleanup complete.`` on stdout whenever it
    closes, cache or none (ours read without one); what it prints goes to the log instead."""
    cleanup = reader.cleanup_cache

    def cleanup_to_log() -> None:
        with redirect_stdout(io.StringIO()) as said:
            cleanup()
        log.info("petastorm reader closed: %s", said.getvalue().strip())

    reader.cleanup_cache = cleanup_to_log  # what Reader.__exit__ calls
    return reader


def _after_first_ventilation(reader: Reader) -> Reader:
    """Return ``reader`` once every row group of a one-epoch read has been queued.

    Works around a race in petastorm 0.13.1's pools: ``get_results`` checks "all queued
    work is done" and then "the ventilator has finished" non-atomically, so a read
    issued while the ventilator thread is still queueing (it shuffles first, and it
    pauses whenever its queue cap of items wait) can see "nothing queued, nothing left"
    and end the read early (docs/decisions.md). A queued item is only a row-group index
    (the rows themselves wait in bounded result queues), so the ventilator's cap is
    lifted to the whole epoch: it then finishes at once, without waiting for a reader
    that is not reading yet (with the cap kept, waiting here blocks forever once a
    Subset has more row groups than the cap). Multi-epoch reads are left as they are.
    """
    if reader.num_epochs == 1:
        ventilator = reader.ventilator
        # Private attribute: petastorm sets the cap at construction and offers no option.
        ventilator._max_ventilation_queue_size = max(
            ventilator._max_ventilation_queue_size, len(ventilator._items_to_ventilate)
        )
        while not ventilator.completed():
            time.sleep(0.001)
    return reader


def _storage(output: str) -> Dict[str, Any]:
    """petastorm's ``filesystem`` argument: local paths and file:// use petastorm's own;
    any other scheme reads through :mod:`bigcat_ml.storage.fs` (e.g. ``s3a://``, which
    petastorm does not resolve itself)."""
    url = dataset_url(output)
    if url.startswith("file://"):
        return {}
    return {"filesystem": fs.pyarrow_filesystem(url)[0]}


def open_reader(output: str, **reader_kwargs: Any) -> Reader:
    """Petastorm ``make_reader`` over the chips: one row at a time, ``chip`` decoded.

    Use as ``with open_reader(out) as reader:``; keyword arguments go to make_reader
    (e.g. ``num_epochs``, ``shuffle_row_groups=False``, ``schema_fields``). Use this
    rather than ``make_reader`` directly: the dataset is checked first
    (:func:`_checked_url`), and see :func:`_after_first_ventilation`.
    """
    url = _checked_url(output)
    return _after_first_ventilation(_quiet_on_close(make_reader(url, **_storage(output), **reader_kwargs)))


def open_batch_reader(output: str, **reader_kwargs: Any) -> Reader:
    """Petastorm ``make_batch_reader`` over the chips: columnar batches, faster.

    Batches hold ``chip`` as JPEG bytes (the batch reader does not run codecs); decode
    them with :func:`decode_chip`. Petastorm's advice to use make_reader on a Unischema
    dataset is silenced because skipping the decoding is the point here. The dataset is
    checked first, as for :func:`open_reader`.
    """
    url = _checked_url(output)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Please use make_reader")
        reader = make_batch_reader(url, **_storage(output), **reader_kwargs)
    return _after_first_ventilation(_quiet_on_close(reader))


@contextmanager
def open_tf_dataset(output: str, batched: bool = False, **reader_kwargs: Any) -> Iterator["tf.data.Dataset"]:
    """A ``tf.data.Dataset`` over the chips via petastorm's ``make_petastorm_dataset``.

    ``batched=False``: one decoded chip per element (uint8, (h, w, 3)); ``batched=True``:
    batch-reader row groups with ``chip`` as JPEG strings (``tf.io.decode_jpeg`` them).
    The reader is stopped when the block exits.
    """
    from petastorm.tf_utils import make_petastorm_dataset  # imports TensorFlow: slow

    opener = open_batch_reader if batched else open_reader
    with opener(output, **reader_kwargs) as reader:
        yield make_petastorm_dataset(reader)
