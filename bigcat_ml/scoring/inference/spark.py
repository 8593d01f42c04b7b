"""Predictions for every chip of a Spark DataFrame: Spark ML's ``predict_batch_udf``.

It accepts the binary ``chip`` column as it is (a scalar column reaches the predict
function as a 1-D object array of ``bytes``) and feeds ``evaluate.batch_size`` rows at a
time to a model built once per Python worker and kept there between calls
(:func:`~bigcat_ml.scoring.inference.classifier.shared_classifier`; Spark reuses its
Python workers unless ``spark.python.worker.reuse=false``).
``spark.sql.execution.arrow.maxRecordsPerBatch`` (rows) is set to the batch size while
predicting, so a worker holds one model batch of JPEG bytes rather than Spark's default
10000 rows. The chips are re-spread in equal partitions over the task slots only
when their own partitions would leave a core idle (:func:`spread_evenly`).

``predict_batch_udf`` on the JPEG column was as fast as a hand-written ``mapInPandas``
with a per-worker model cache, and twice as fast as decoding into float arrays before it
(docs/decisions.md), so the ecosystem's own tool is used.
"""
from __future__ import annotations

import heapq
import logging
import math
import os
import shutil
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd
from pyspark import SparkFiles
from pyspark.ml.functions import predict_batch_udf
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, FloatType, IntegerType, StringType, StructField, StructType

from bigcat_ml.runtime.spark import ARROW_BATCH_ROWS_KEY, session_conf, task_slots
from bigcat_ml.runtime.workers import spare_the_collector
from bigcat_ml.scoring.inference.classifier import shared_classifier, warn_if_random
from bigcat_ml.scoring.inference.tables import (
    CHIP,
    DETAIL,
    METADATA_COLUMNS,
    PREDICTION_COLUMNS,
    REASON,
    REJECT_COLUMNS,
    check_counts,
)
from bigcat_ml.scoring.models import as_model_config, local_weights_file, weights_digest

log = logging.getLogger(__name__)

_SCORE_SCHEMA = StructType(
    [
        StructField("top_k_indices", ArrayType(IntegerType()), True),
        StructField("top_k_labels", ArrayType(StringType()), True),
        StructField("top_k_probs", ArrayType(FloatType()), True),
        StructField(REASON, StringType(), True),
        StructField(DETAIL, StringType(), True),
    ]
)
_STAGING_DIR = "bigcat_ml-weights"
# spread_evenly keeps the chips' own partitions when the busiest task slot gets at most
# this fraction more chips than an even split would give it (docs/decisions.md).
SPREAD_TOLERANCE = 0.05


@dataclass
class SparkPredictions:
    """What :func:`predict_spark` returns: one cached scoring pass seen as two DataFrames.

    ``predictions`` (METADATA_COLUMNS + PREDICTION_COLUMNS) and ``rejects``
    (REJECTS_SCHEMA columns) both read the same cached rows (metadata and top-k, no chip
    bytes), so neither runs the model again. Release the cache with :meth:`unpersist`,
    or use the object as a context manager.
    """

    predictions: DataFrame
    rejects: DataFrame
    chips_read: int
    scored: DataFrame

    def to_pandas(self) -> Tuple[pd.DataFrame, pd.DataFrame]:
        """(predictions, rejects) as pandas, collected in one job from the cached pass."""
        scored = self.scored.toPandas()
        failed = scored[REASON].notna()
        predictions = scored.loc[~failed, [*METADATA_COLUMNS, *PREDICTION_COLUMNS]].reset_index(drop=True)
        return predictions, scored.loc[failed, list(REJECT_COLUMNS)].reset_index(drop=True)

    def unpersist(self) -> None:
        self.scored.unpersist()

    def __enter__(self) -> "SparkPredictions":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.unpersist()


def predict_spark(spark: SparkSession, chips_df: DataFrame, model_cfg: Any, eval_cfg: Any) -> SparkPredictions:
    """Predict every chip of ``chips_df`` (ChipSchema columns, ``chip`` = JPEG bytes).

    The model and its weights are built and checked on the driver first (once per
    process, :func:`shared_classifier`), so a missing or mismatched weights file fails
    before any task; a weights file is then shipped to the executors. Spark then runs
    one pass: the chips' rows per partition are counted (no column is read), the
    partitions are re-spread only when they would keep a core idle
    (:func:`spread_evenly`), and a single job scores every chip into a cached result
    while counting predictions and rejects, which are reconciled against the rows read
    before anything is returned. Rows come back in no particular order; predictions do
    not depend on how the chips were split into partitions or batches
    (:meth:`~bigcat_ml.scoring.inference.classifier.ChipClassifier.score`).
    """
    missing = [c for c in (*METADATA_COLUMNS, CHIP) if c not in chips_df.columns]
    if missing:
        raise ValueError(f"predict_spark needs the ChipSchema columns; missing {missing} (got {chips_df.columns})")
    model_cfg = as_model_config(model_cfg)
    warn_if_random(model_cfg)
    with local_weights_file(model_cfg) as weights_file:
        shared_classifier(model_cfg, weights_file, int(eval_cfg.top_k))  # fail here, not in a task
        shipped = _ship(spark, weights_file) if weights_file else None
    predict_fn = partial(make_predict_fn, model_cfg, shipped, int(eval_cfg.top_k))
    classify = predict_batch_udf(predict_fn, return_type=_SCORE_SCHEMA, batch_size=int(eval_cfg.batch_size))
    rows = partition_rows(chips_df)
    spread = spread_evenly(spark, chips_df, rows, int(eval_cfg.max_chips_per_task))
    scored = spread.select(*METADATA_COLUMNS, classify(CHIP).alias("_score")).select(*METADATA_COLUMNS, "_score.*")
    scored.persist()
    try:
        with session_conf(spark, ARROW_BATCH_ROWS_KEY, str(int(eval_cfg.batch_size))):
            # One job fills the cache and counts both outcomes.
            total, rejected = scored.agg(F.count(F.lit(1)), F.count(REASON)).first()
        check_counts(sum(rows), total - rejected, rejected)
    except BaseException:
        scored.unpersist()
        raise
    failed = F.col(REASON).isNotNull()
    return SparkPredictions(
        predictions=scored.filter(~failed).select(*METADATA_COLUMNS, *PREDICTION_COLUMNS),
        rejects=scored.filter(failed).select(*REJECT_COLUMNS),
        chips_read=sum(rows),
        scored=scored,
    )


def partition_rows(chips_df: DataFrame) -> List[int]:
    """Rows in each partition of ``chips_df``, in partition order: one small job that
    reads no column (Parquet answers from its row-group counts)."""
    counts = dict(chips_df.groupBy(F.spark_partition_id().alias("p")).count().collect())
    return [counts.get(i, 0) for i in range(chips_df.rdd.getNumPartitions())]


def _makespan(rows: Sequence[int], slots: int) -> int:
    """Chips the busiest task slot scores when Spark hands the partitions, in order, to
    whichever slot is free first (each chip costing the same)."""
    finish = [0] * slots
    for n in rows:
        heapq.heapreplace(finish, finish[0] + n)
    return max(finish)


def spread_evenly(spark: SparkSession, chips_df: DataFrame, rows: Sequence[int], max_chips_per_task: int) -> DataFrame:
    """``chips_df`` as it is when its partitions already keep every task slot busy, else
    in equal partitions, a whole number of waves over the task slots.

    ``rows``: the rows of each partition (:func:`partition_rows`). Spark splits the chip
    files by bytes, which can leave partitions of unequal rows (one of 300 chips and one
    of 100 keeps a core idle for half the time), and the model costs far more per chip
    than a shuffle of its JPEG bytes; but a shuffle is a stage of its own with a fixed
    cost, paid for nothing when the partitions are already even. They are kept when no
    partition holds more than ``max_chips_per_task`` chips (a retried task redoes a
    bounded amount of work), they make whole waves (each task's start in its Python
    worker costs about as much as scoring a few chips, so a slot running one task more
    than the others finishes later: docs/decisions.md), and the busiest slot would
    score at most :data:`SPREAD_TOLERANCE` more chips than an even split gives it.
    """
    if max_chips_per_task < 1:
        raise ValueError(f"evaluate.max_chips_per_task must be at least 1; got {max_chips_per_task}")
    slots = max(1, task_slots(spark))
    total = sum(rows)
    even = math.ceil(total / slots)
    whole_waves = len(rows) % slots == 0
    if max(rows, default=0) <= max_chips_per_task and whole_waves and _makespan(rows, slots) <= even * (1 + SPREAD_TOLERANCE):
        return chips_df
    waves = max(1, math.ceil(total / (slots * max_chips_per_task)))
    return chips_df.repartition(slots * waves)


def make_predict_fn(model_cfg: Any, shipped: Optional[str], k: int) -> Callable[[np.ndarray], Dict[str, np.ndarray]]:
    """The function each Spark Python worker scores its batches with, made once per worker
    per call (predict_batch_udf caches the result for its UDF); the model itself comes from
    :func:`shared_classifier`, kept across calls.

    The model and the libraries live as long as the worker, so they are moved out of
    the reach of the collector that runs after every task (:func:`spare_the_collector`).
    """
    from pyspark import TaskContext

    _limit_tf_threads(TaskContext.get().cpus())
    weights_file = Path(SparkFiles.get(shipped)) if shipped else None
    classifier = shared_classifier(model_cfg, weights_file, k)
    spare_the_collector()

    def predict(jpegs: np.ndarray) -> Dict[str, np.ndarray]:
        return classifier.score(list(jpegs))

    return predict


def _limit_tf_threads(cpus: int) -> None:
    """Give TensorFlow the task's cores (``spark.task.cpus``), not the whole machine.

    Must run before TensorFlow initialises; a reused worker keeps the setting of its
    first task (the same value, as spark.task.cpus is fixed per application).
    """
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(cpus)
        tf.config.threading.set_inter_op_parallelism_threads(cpus)
    except RuntimeError:
        log.debug("TensorFlow already initialised in this worker; thread settings unchanged")


def _ship(spark: SparkSession, weights_file: Path) -> str:
    """Ship the weights to the executors; return the name for ``SparkFiles.get``.

    The file is first copied to a content-addressed name (``<sha256[:16]>-<name>``):
    Spark refuses a second file with the same name in one session, and would keep
    serving the first content if the same path were rewritten (a model retrained between
    two runs of a notebook or a Hydra sweep). The copies live in the session's own
    SparkFiles folder, which Spark deletes when the session stops; identical weights
    are staged once per session.
    """
    digest = weights_digest(weights_file)
    staged = Path(SparkFiles.getRootDirectory()) / _STAGING_DIR / f"{digest[:16]}-{weights_file.name}"
    if not staged.exists():
        staged.parent.mkdir(parents=True, exist_ok=True)
        partial_copy = staged.with_name(f".{staged.name}.{os.getpid()}")
        shutil.copyfile(weights_file, partial_copy)
        os.replace(partial_copy, staged)
    spark.sparkContext.addFile(str(staged))
    return staged.name

