"""The chip dataset: its Petastorm Unischema, its atomic writer, and its readers.

A preprocess output folder holds ``chips/`` (the Petastorm dataset), ``rejects/``
(Parquet, :data:`bigcat_ml.chips.rejects.REJECTS_SCHEMA`) and ``summary.json`` (counts,
selected classes, content digest). It is a local path or a Hadoop URI (hdfs://...).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import pickletools
import shutil
import time
import uuid
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Mapping, Optional

import numpy as np
from petastorm import make_batch_reader, make_reader
from petastorm.codecs import CompressedImageCodec, ScalarCodec
from petastorm.etl.dataset_metadata import UNISCHEMA_KEY, materialize_dataset
from petastorm.reader import Reader
from petastorm.unischema import Unischema, UnischemaField
import pyarrow.parquet as pq
from pyarrow import fs as pafs
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, IntegerType, StringType

from bigcat_ml.oid.schemas import BOX_COORDINATES, BOX_FLAGS

if TYPE_CHECKING:
    import tensorflow as tf

log = logging.getLogger(__name__)

CHIPS_DIR = "chips"
REJECTS_DIR = "rejects"
SUMMARY_FILE = "summary.json"

# Columns that identify a chip and describe its box, in OID's own names and units
# (coordinates are fractions of the image size; flags are 1/0, -1 = unknown).
BOX_COLUMNS = BOX_COORDINATES
ATTRIBUTE_COLUMNS = BOX_FLAGS


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
        *[_double(c) for c in BOX_COLUMNS],
        *[_int(c) for c in ATTRIBUTE_COLUMNS],
        _int("image_width"),  # source image size in pixels, after EXIF orientation
        _int("image_height"),
        # RGB chip stored as JPEG bytes; petastorm decodes it to uint8 (h, w, 3).
        UnischemaField("chip", np.uint8, (None, None, 3), CompressedImageCodec("jpeg"), False),
        _int("chip_width"),
        _int("chip_height"),
    ],
)


# ---------------------------------------------------------------------------- locations


def _join(base: str, name: str) -> str:
    return f"{base.rstrip('/')}/{name}"


def _is_uri(path: str) -> bool:
    return "://" in path


def _to_url(path: str) -> str:
    """A URI as given; a local path as an absolute ``file://`` URL.

    Spark would read a bare path on its default filesystem (HDFS on a cluster), so local
    paths are always made explicit.
    """
    return path if _is_uri(path) else Path(path).resolve().as_uri()


def dataset_url(output: str) -> str:
    """URL of the Petastorm chip dataset (``<output>/chips``) for petastorm and Spark."""
    return _to_url(_join(output, CHIPS_DIR))


def _sibling(output: str, tag: str) -> str:
    """A fresh path next to ``output``; not starting with ``.``/``_``, which Spark hides."""
    return f"{output.rstrip('/')}.{tag}-{uuid.uuid4().hex[:12]}"


# --------------------------------------------------------------------------- filesystems


class _LocalFiles:
    """Folder operations on the local disk."""

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def mkdirs(self, path: str) -> None:
        Path(path).mkdir(parents=True)

    def rename(self, src: str, dst: str) -> None:
        os.rename(src, dst)

    def delete(self, path: str) -> None:
        shutil.rmtree(path, ignore_errors=True)

    def write_text(self, path: str, text: str) -> None:
        Path(path).write_text(text, encoding="utf-8")


class _HadoopFiles:
    """The same operations on any Hadoop filesystem URI (hdfs://, s3a://, file://).

    Goes through the JVM of the running SparkSession, so it needs no extra Python client
    and uses the cluster's Hadoop configuration and credentials.
    """

    def __init__(self, spark: SparkSession, uri: str) -> None:
        self._path = spark._jvm.org.apache.hadoop.fs.Path
        self._fs = self._path(uri).getFileSystem(spark._jsc.hadoopConfiguration())

    def exists(self, path: str) -> bool:
        return bool(self._fs.exists(self._path(path)))

    def mkdirs(self, path: str) -> None:
        if not self._fs.mkdirs(self._path(path)):
            raise OSError(f"Hadoop FileSystem could not create {path}")

    def rename(self, src: str, dst: str) -> None:
        # Hadoop renames return False instead of raising; a dst folder must not exist
        # (it would receive src inside it), which the callers guarantee.
        if not self._fs.rename(self._path(src), self._path(dst)):
            raise OSError(f"Hadoop FileSystem could not rename {src} to {dst}")

    def delete(self, path: str) -> None:
        self._fs.delete(self._path(path), True)

    def write_text(self, path: str, text: str) -> None:
        stream = self._fs.create(self._path(path), False)
        try:
            stream.write(bytearray(text.encode("utf-8")))
        finally:
            stream.close()


def _files_for(spark: SparkSession, output: str) -> Any:
    return _HadoopFiles(spark, output) if _is_uri(output) else _LocalFiles()


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


def _swap_into_place(files: Any, staging: str, output: str) -> None:
    """Move the complete ``staging`` folder to ``output``, replacing an old one last."""
    if not files.exists(output):
        files.rename(staging, output)
        return
    old = _sibling(output, "old")
    files.rename(output, old)
    try:
        files.rename(staging, output)
    except BaseException:
        files.rename(old, output)
        raise
    files.delete(old)


def check_output(spark: SparkSession, output: str, overwrite: bool) -> Any:
    """Refuse an existing ``output`` unless ``overwrite``; cheap, so callers check first.

    Returns the file-system helper for ``output`` (local or Hadoop).
    """
    files = _files_for(spark, output)
    if files.exists(output) and not overwrite:
        raise FileExistsError(
            f"chip dataset {output} already exists; set preprocess.overwrite=true to replace it "
            "or choose another preprocess.output"
        )
    return files


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
) -> Dict[str, Any]:
    """Write ``<output>/chips`` (Petastorm), ``rejects`` (Parquet) and ``summary.json``.

    All or nothing: everything goes to a sibling staging folder that is renamed to
    ``output`` once complete, so a failure leaves no (or the previous) dataset at
    ``output``. An existing ``output`` is refused unless ``overwrite``. ``chips`` has
    the ChipSchema columns, ``rejects`` the REJECTS_SCHEMA ones; ``summary`` (plain JSON
    values) is stored with the measured ``chips``, ``rejects``, ``rejects_by_reason``
    and ``content_digest``, and the whole summary is returned. ``output`` is a local
    path or a Hadoop URI. ``chips`` and ``rejects`` are each computed once: persist
    their common parent if it is expensive.
    """
    files = check_output(spark, output, overwrite)
    staging = _sibling(output, "tmp")
    try:
        files.mkdirs(staging)
    except Exception as error:
        raise PermissionError(
            f"cannot write the chip dataset next to {output} (creating {staging} failed: {error}); "
            "choose a writable preprocess.output"
        ) from error
    try:
        _write_parts(spark, chips, rejects, staging, rows_per_file, row_group_size_mb)
        written = {**(summary or {}), **_measure(spark, staging)}
        files.write_text(_join(staging, SUMMARY_FILE), json.dumps(written, indent=2, sort_keys=True))
        _swap_into_place(files, staging, output)
    except BaseException:
        files.delete(staging)
        raise
    log.info("wrote %d chips and %d rejects to %s", written["chips"], written["rejects"], output)
    return written


# --------------------------------------------------------------------------------- read


def read_summary(output: str) -> Dict[str, Any]:
    """The ``summary.json`` of a chip dataset (local path or any pyarrow-supported URI)."""
    filesystem, path = pafs.FileSystem.from_uri(_to_url(_join(output, SUMMARY_FILE)))
    try:
        with filesystem.open_input_stream(path) as stream:
            return json.loads(stream.read())
    except FileNotFoundError as error:
        raise FileNotFoundError(
            f"no {SUMMARY_FILE} in {output}: is it a chip dataset written by the preprocess step?"
        ) from error


def read_chips_spark(spark: SparkSession, output: str) -> DataFrame:
    """The chip rows as a Spark DataFrame (``chip`` holds the JPEG bytes)."""
    return spark.read.parquet(dataset_url(output))


def decode_chip(jpeg: bytes) -> np.ndarray:
    """JPEG chip bytes to a uint8 RGB array of shape (height, width, 3), as make_reader does."""
    field = ChipSchema.fields["chip"]
    return field.codec.decode(field, jpeg)


COMMON_METADATA_FILE = "_common_metadata"


class UntrustedDatasetError(ValueError):
    """A dataset's metadata holds a pickle that is not this project's own Unischema."""


def _pickle_globals(payload: bytes) -> List[str]:
    """The ``module.name`` globals a pickle would import, read without unpickling it."""
    found: List[str] = []
    strings: List[str] = []
    try:
        for opcode, arg, _ in pickletools.genops(payload):
            if opcode.name in ("GLOBAL", "INST"):
                found.append(str(arg).replace(" ", "."))
            elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                found.append(f"{strings[-2]}.{strings[-1]}")
            elif isinstance(arg, str):
                strings.append(arg)
    except Exception as error:  # noqa: BLE001 - a malformed pickle is refused all the same
        found.append(f"<unreadable pickle: {error}>")
    return sorted(set(found))


def check_trusted_metadata(output: str) -> None:
    """Refuse a chip dataset whose pickled Unischema is not byte for byte :data:`ChipSchema`.

    Petastorm unpickles ``<chips>/_common_metadata`` with an unpickler that still admits
    ``builtins`` (so ``eval``/``exec``): opening a crafted dataset would run its code.
    The metadata is read here with pyarrow, which never unpickles, and compared with the
    pickle petastorm writes for this project's schema; anything else raises
    :class:`UntrustedDatasetError` naming the file and the globals it would import.
    """
    url = _join(dataset_url(output), COMMON_METADATA_FILE)
    filesystem, path = pafs.FileSystem.from_uri(url)
    try:
        with filesystem.open_input_file(path) as stream:
            metadata = pq.read_metadata(stream).metadata or {}
    except FileNotFoundError as error:
        raise FileNotFoundError(f"no {COMMON_METADATA_FILE} in {dataset_url(output)}: is it a chip dataset written by the preprocess step?") from error
    pickled = metadata.get(UNISCHEMA_KEY)  # bytes, as pyarrow returns keys
    if pickled is None or pickled == pickle.dumps(ChipSchema):
        return
    raise UntrustedDatasetError(
        f"{url}: its pickled Unischema is not this project's ChipSchema (it would import "
        f"{', '.join(_pickle_globals(pickled)) or 'nothing'}); refusing to unpickle it, since petastorm would run "
        "whatever it names. Open only chip datasets written by `python -m bigcat_ml.preprocess` with this "
        "version, or rebuild this one."
    )


def _after_first_ventilation(reader: Reader) -> Reader:
    """Return ``reader`` once every row group of a one-epoch read has been queued.

    Works around a race in petastorm 0.13.1's pools: ``get_results`` checks "all queued
    work is done" and then "the ventilator has finished" non-atomically, so a read
    issued while the ventilator thread is still queueing (it shuffles first, and it
    pauses whenever ``workers_count * 4`` items wait) can see "nothing queued, nothing
    left" and end the read early (measured: ~5% of reads of a 2-file dataset). A queued
    item is only a row-group index (the rows themselves wait in bounded result queues),
    so the ventilator's cap is lifted to the whole epoch: it then finishes at once,
    without waiting for a reader that is not reading yet (with the cap kept, waiting
    here blocked forever beyond ``workers_count * 4`` row groups). Multi-epoch reads are
    left as they are.
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


def open_reader(output: str, **reader_kwargs: Any) -> Reader:
    """Petastorm ``make_reader`` over the chips: one row at a time, ``chip`` decoded.

    Use as ``with open_reader(out) as reader:``; keyword arguments go to make_reader
    (e.g. ``num_epochs``, ``shuffle_row_groups=False``, ``schema_fields``). Use this
    rather than ``make_reader`` directly: the dataset's pickled metadata is checked
    first (:func:`check_trusted_metadata`), and see :func:`_after_first_ventilation`.
    """
    check_trusted_metadata(output)
    return _after_first_ventilation(make_reader(dataset_url(output), **reader_kwargs))


def open_batch_reader(output: str, **reader_kwargs: Any) -> Reader:
    """Petastorm ``make_batch_reader`` over the chips: columnar batches, faster.

    Batches hold ``chip`` as JPEG bytes (the batch reader does not run codecs); decode
    them with :func:`decode_chip`. Petastorm's advice to use make_reader on a Unischema
    dataset is silenced because skipping the decoding is the point here. The metadata is
    checked first, as for :func:`open_reader`.
    """
    check_trusted_metadata(output)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Please use make_reader")
        reader = make_batch_reader(dataset_url(output), **reader_kwargs)
    return _after_first_ventilation(reader)


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
