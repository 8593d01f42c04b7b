"""Read the chip rows of a dataset folder: with Spark, with pyarrow, with petastorm's readers.

Every reader here checks the folder first (:mod:`bigcat_ml.chips.trusted`), so none
opens a dataset holding a file or a pickle its writer never wrote.
"""
from __future__ import annotations

import io
import logging
import time
import warnings
from contextlib import contextmanager, redirect_stdout
from typing import TYPE_CHECKING, Any, Dict, Iterator, Optional

from petastorm import make_batch_reader, make_reader
from petastorm.reader import Reader
from pyspark.sql import DataFrame, SparkSession

from bigcat_ml.chips import trusted
from bigcat_ml.chips.layout import dataset_url
from bigcat_ml.chips.schema import ChipSchema
from bigcat_ml.storage import fs

if TYPE_CHECKING:
    import tensorflow as tf

log = logging.getLogger(__name__)


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

    return fs.parquet_rows(_checked_url(output), None if subset is None else pads.field("Subset") == subset)


def subset_predicate(subset: Optional[str]) -> Optional[Any]:
    """A petastorm reader ``predicate`` keeping the chips of one ``Subset`` (None: all).

    Petastorm reads the ``Subset`` column first and loads the other columns, chip bytes
    included, only for the rows it keeps.
    """
    if subset is None:
        return None
    from petastorm.predicates import in_lambda

    return in_lambda(["Subset"], lambda value: value == subset)


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
    them with :func:`bigcat_ml.chips.schema.decode_chip`. Petastorm's advice to use make_reader on a Unischema
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
