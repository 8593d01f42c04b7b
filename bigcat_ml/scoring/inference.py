"""Top-k ImageNet predictions for every chip, on Spark or in one process.

Both paths run the same :class:`ChipClassifier` (decode with the ChipSchema codec,
bilinear resize to the model input, the model's ``preprocess_input``, softmax
probabilities, top-k), so they give the same numbers for the same chips. Each chip
becomes exactly one row: a prediction (its ChipSchema columns without the bytes, plus
``top_k_indices``/``top_k_labels``/``top_k_probs``), or a reject (REJECTS_SCHEMA,
reason ``decode_error`` or ``predict_error``). ``predictions + rejects == chips read``
is checked before anything is returned.

Spark wiring: Spark ML's ``predict_batch_udf``. It accepts the binary ``chip`` column
as it is (a scalar column reaches the predict function as a 1-D object array of
``bytes``) and feeds ``evaluate.batch_size`` rows at a time to a model built once per
Python worker and kept there between calls (:func:`shared_classifier`; Spark reuses
its Python workers unless ``spark.python.worker.reuse=false``).
``spark.sql.execution.arrow.maxRecordsPerBatch`` (rows) is set to the batch size while
predicting, so a worker holds one model batch of JPEG bytes rather than Spark's default
10000 rows. The chips are re-spread in equal partitions over the task slots only
when their own partitions would leave a core idle (:func:`spread_evenly`).

``predict_batch_udf`` on the JPEG column was as fast as a hand-written ``mapInPandas``
with a per-worker model cache, and twice as fast as decoding into float arrays before it
(docs/decisions.md), so the ecosystem's own tool is used.
"""
from __future__ import annotations

import dataclasses
import gc
import heapq
import logging
import math
import os
import shutil
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd
from petastorm.transform import TransformSpec
from pyspark import SparkFiles
from pyspark.ml.functions import predict_batch_udf
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, FloatType, IntegerType, StringType, StructField, StructType

from bigcat_ml.chips import readers, schema
from bigcat_ml.runtime.progress import progress
from bigcat_ml.config.schema import ModelConfig
from bigcat_ml.scoring.fine_tuned import load_classifier_file
from bigcat_ml.scoring.imagenet import NUM_CLASSES, class_names, top_k
from bigcat_ml.scoring.models import (
    RANDOM_INIT,
    KerasApplication,
    as_model_config,
    build_model,
    check_model,
    keras_application,
    local_weights_file,
    model_input,
    weights_digest,
    weights_source,
)
from bigcat_ml.oid.rejects import DECODE_ERROR, PREDICT_ERROR, REJECTS_SCHEMA, fails_the_task
from bigcat_ml.runtime.spark import ARROW_BATCH_ROWS_KEY, session_conf, task_slots

log = logging.getLogger(__name__)

CHIP = "chip"
# Every ChipSchema column but the JPEG bytes: the predictions need no join back.
METADATA_COLUMNS = tuple(name for name in schema.ChipSchema.fields if name != CHIP)
PREDICTION_COLUMNS = ("top_k_indices", "top_k_labels", "top_k_probs")
REJECT_COLUMNS = tuple(REJECTS_SCHEMA.fieldNames())
_REASON, _DETAIL = "reason", "detail"
_SCORE_SCHEMA = StructType(
    [
        StructField("top_k_indices", ArrayType(IntegerType()), True),
        StructField("top_k_labels", ArrayType(StringType()), True),
        StructField("top_k_probs", ArrayType(FloatType()), True),
        StructField(_REASON, StringType(), True),
        StructField(_DETAIL, StringType(), True),
    ]
)
_STAGING_DIR = "bigcat_ml-weights"
# spread_evenly keeps the chips' own partitions when the busiest task slot gets at most
# this fraction more chips than an even split would give it (docs/decisions.md).
SPREAD_TOLERANCE = 0.05


# ----------------------------------------------------------------------- the classifier


@dataclass
class ChipClassifier:
    """A built model and its preprocessing: JPEG chips in, top-k or a reject reason out."""

    model: Any
    application: KerasApplication
    input_size: int
    k: int
    # Class names by output index for a fine-tuned head; None = the 1000 ImageNet classes.
    labels: Optional[np.ndarray] = None

    @property
    def n_classes(self) -> int:
        return NUM_CLASSES if self.labels is None else len(self.labels)

    def score(self, jpegs: Sequence[bytes]) -> Dict[str, np.ndarray]:
        """One entry per chip, in order: ``top_k_indices`` (n, k) int32, ``top_k_labels``
        (n, k) str, ``top_k_probs`` (n, k) float32, and ``reason``/``detail`` (None on a
        prediction; on a reject the top-k arrays hold -1 / "" / NaN)."""
        n = len(jpegs)
        reason = np.full(n, None, dtype=object)
        detail = np.full(n, None, dtype=object)
        decoded: Dict[int, np.ndarray] = {}
        for i, jpeg in enumerate(jpegs):
            try:
                decoded[i] = _decode_rgb(jpeg)
            except Exception as error:  # any undecodable chip becomes a counted reject...
                if fails_the_task(error):  # ...but running out of memory fails the task
                    raise
                reason[i], detail[i] = DECODE_ERROR, f"{type(error).__name__}: {error}"
        indices = np.full((n, self.k), -1, np.int32)
        probs = np.full((n, self.k), np.nan, np.float32)
        rows = np.fromiter(decoded, dtype=np.int64, count=len(decoded))
        if len(rows):
            softmax = self._softmax([decoded[i] for i in rows], rows, reason, detail)
            ok = np.array([reason[i] is None for i in rows], dtype=bool)
            if ok.any():
                indices[rows[ok]], probs[rows[ok]] = top_k(softmax[ok], self.k)
        names = class_names(np.maximum(indices, 0)) if self.labels is None else self.labels[np.maximum(indices, 0)]
        labels = np.where(indices >= 0, names, "")
        return {"top_k_indices": indices, "top_k_labels": labels, "top_k_probs": probs, _REASON: reason, _DETAIL: detail}

    def _softmax(self, chips: List[np.ndarray], rows: np.ndarray, reason: np.ndarray, detail: np.ndarray) -> np.ndarray:
        """(len(chips), 1000) probabilities; a chip the model fails on gets a
        ``predict_error`` in ``reason``/``detail`` at its ``rows`` position.

        The batch is predicted at once; if that raises, chip by chip, so one bad chip
        costs only itself. Non-finite outputs also count as a failure of that chip.
        Running out of memory is no chip's fault: it is raised (:func:`fails_the_task`).
        """
        try:
            out = self._predict(chips)
        except Exception as error:
            if fails_the_task(error):  # out of memory: the task fails and Spark retries it
                raise
            log.warning("a batch of %d chips failed to predict; retrying chip by chip", len(chips), exc_info=True)
            out = np.full((len(chips), self.n_classes), np.nan, np.float32)
            for j, (row, chip) in enumerate(zip(rows, chips)):
                try:
                    out[j] = self._predict([chip])[0]
                except Exception as error:
                    if fails_the_task(error):
                        raise
                    reason[row], detail[row] = PREDICT_ERROR, f"{type(error).__name__}: {error}"
        for row in rows[~np.isfinite(out).all(axis=1)]:
            if reason[row] is None:
                reason[row], detail[row] = PREDICT_ERROR, "the model gave non-finite probabilities"
        return out

    def _predict(self, chips: List[np.ndarray]) -> np.ndarray:
        """Probabilities of a batch; a batch of one chip is predicted as two copies.

        A chip's probabilities are bit-identical whatever batch it shares and whatever its
        size, except a batch of one, where Keras' dense head computes a matrix-vector
        product summed in another order (ResNet50 differs in the last bits: 3e-10). With
        that case padded, Spark and the local path, any partitioning and any retry give
        the same numbers for the same chip (docs/decisions.md).
        """
        batch = model_input(chips, self.application, self.input_size)
        if len(batch) == 1:
            return np.asarray(self.model.predict_on_batch(np.repeat(batch, 2, axis=0))[:1], dtype=np.float32)
        return np.asarray(self.model.predict_on_batch(batch), dtype=np.float32)


def _decode_rgb(jpeg: bytes) -> np.ndarray:
    chip = schema.decode_chip(jpeg)
    if chip is None or chip.ndim != 3 or chip.shape[2] != 3 or 0 in chip.shape:
        raise ValueError(f"expected an RGB chip (h, w, 3), got shape {getattr(chip, 'shape', None)}")
    return chip


def load_classifier(model_cfg: Any, weights_file: Optional[Path], k: int) -> ChipClassifier:
    """Build and check the model (see :func:`bigcat_ml.scoring.models.check_model`).

    With ``model.source`` set, ``weights_file`` is the fine-tuned classifier file: its own
    class names label the outputs and its backbone config chooses the preprocessing; ``k``
    is capped at its number of classes.
    """
    if model_cfg.source:
        if weights_file is None:
            raise ValueError(f"model.source {model_cfg.source}: its classifier file was not fetched; pass weights_file")
        return fine_tuned_classifier(weights_file, k)
    if not 1 <= k <= NUM_CLASSES:
        raise ValueError(f"evaluate.top_k must be between 1 and {NUM_CLASSES}; got {k}")
    model = build_model(model_cfg, weights_file)
    check_model(model, model_cfg)
    return ChipClassifier(model, keras_application(model_cfg), model_cfg.input_size, k)


def fine_tuned_classifier(classifier_file: Path, k: Optional[int] = None) -> ChipClassifier:
    """The classifier saved by ``train``: its class names label the outputs, its backbone
    config picks the preprocessing; ``k`` (default: every class) is capped at its classes."""
    model, names, backbone = load_classifier_file(classifier_file)
    check_model(model, backbone, len(names))
    k = len(names) if k is None else min(k, len(names))
    return ChipClassifier(model, keras_application(backbone), backbone.input_size, k, np.array(names, dtype=object))


def shared_classifier(model_cfg: Any, weights_file: Optional[Path], k: int) -> ChipClassifier:
    """:func:`load_classifier`, built once per process and reused while the model config,
    the weights file (path, size, modification time) and ``k`` stay the same.

    Building and checking a model takes seconds (docs/decisions.md);
    ``predict_batch_udf`` would pay it in every Python worker on every ``predict_spark``
    call (its own cache lives for one UDF); Spark reuses its Python workers, so this
    cache carries the model from one call to the next, as it does on the driver. At most
    two models are kept: a sweep alternates between a few.
    """
    stamp = None
    if weights_file is not None:
        info = weights_file.stat()
        stamp = (str(weights_file), info.st_size, info.st_mtime_ns)
    return _classifier_for(dataclasses.astuple(as_model_config(model_cfg)), stamp, k)


@lru_cache(maxsize=2)
def _classifier_for(model_fields: Tuple, weights_stamp: Optional[Tuple[str, int, int]], k: int) -> ChipClassifier:
    weights_file = Path(weights_stamp[0]) if weights_stamp else None
    return load_classifier(ModelConfig(*model_fields), weights_file, k)


def _split(metadata: pd.DataFrame, scores: Dict[str, np.ndarray]) -> Tuple[pd.DataFrame, pd.DataFrame]:
    """(prediction rows, reject rows) of one scored batch, pandas."""
    failed = pd.notna(scores[_REASON])
    predictions = metadata.loc[~failed, list(METADATA_COLUMNS)].assign(
        **{c: list(scores[c][~failed]) for c in PREDICTION_COLUMNS}
    )
    rejects = metadata.loc[failed].assign(reason=scores[_REASON][failed], detail=scores[_DETAIL][failed])
    return predictions, rejects[list(REJECT_COLUMNS)]


def _warn_if_random(model_cfg: Any) -> None:
    if weights_source(model_cfg) == RANDOM_INIT:
        log.warning("model %r has random-init weights (model.weights=null): a smoke run, not a measurement", model_cfg.name)


def _check_counts(read: int, predictions: int, rejects: int) -> None:
    if read != predictions + rejects:
        raise RuntimeError(f"inference lost chips: read {read}, predicted {predictions}, rejected {rejects}")
    log.info("predicted %d chips, rejected %d (of %d read)", predictions, rejects, read)


# ------------------------------------------------------------------------------- Spark


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
        failed = scored[_REASON].notna()
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
    (:meth:`ChipClassifier.score`).
    """
    missing = [c for c in (*METADATA_COLUMNS, CHIP) if c not in chips_df.columns]
    if missing:
        raise ValueError(f"predict_spark needs the ChipSchema columns; missing {missing} (got {chips_df.columns})")
    model_cfg = as_model_config(model_cfg)
    _warn_if_random(model_cfg)
    with local_weights_file(model_cfg) as weights_file:
        shared_classifier(model_cfg, weights_file, int(eval_cfg.top_k))  # fail here, not in a task
        shipped = _ship(spark, weights_file) if weights_file else None
    make_predict_fn = partial(_make_predict_fn, model_cfg, shipped, int(eval_cfg.top_k))
    classify = predict_batch_udf(make_predict_fn, return_type=_SCORE_SCHEMA, batch_size=int(eval_cfg.batch_size))
    rows = partition_rows(chips_df)
    spread = spread_evenly(spark, chips_df, rows, int(eval_cfg.max_chips_per_task))
    scored = spread.select(*METADATA_COLUMNS, classify(CHIP).alias("_score")).select(*METADATA_COLUMNS, "_score.*")
    scored.persist()
    try:
        with session_conf(spark, ARROW_BATCH_ROWS_KEY, str(int(eval_cfg.batch_size))):
            # One job fills the cache and counts both outcomes.
            total, rejected = scored.agg(F.count(F.lit(1)), F.count(_REASON)).first()
        _check_counts(sum(rows), total - rejected, rejected)
    except BaseException:
        scored.unpersist()
        raise
    failed = F.col(_REASON).isNotNull()
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


def _make_predict_fn(model_cfg: Any, shipped: Optional[str], k: int) -> Callable[[np.ndarray], Dict[str, np.ndarray]]:
    """Runs once per Python worker per call (predict_batch_udf caches the result for its
    UDF); the model itself comes from :func:`shared_classifier`, kept across calls.

    A reused Python worker runs a full ``gc.collect()`` after every task
    (``pyspark.daemon``). With TensorFlow and a model loaded, that walk over every
    object held the next task back for longer than scoring a small partition takes
    (docs/decisions.md). The model and the libraries live as long as the worker, so
    everything loaded so far is moved out of the collector's reach (``gc.freeze``);
    objects made by later tasks are still collected.
    """
    from pyspark import TaskContext

    _limit_tf_threads(TaskContext.get().cpus())
    weights_file = Path(SparkFiles.get(shipped)) if shipped else None
    classifier = shared_classifier(model_cfg, weights_file, k)
    gc.freeze()

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


# ------------------------------------------------------------------------ one process


def predict_local(
    dataset_output_path: str, model_cfg: Any, eval_cfg: Any, subset: Optional[str] = None
) -> Tuple[pd.DataFrame, pd.DataFrame]:
    """Predict every chip of the dataset at ``<dataset_output_path>/chips`` in this process
    (only those of one ``Subset`` when ``subset`` is given).

    Reads with petastorm's batch reader into ``tf.data`` (``make_petastorm_dataset``).
    The ``chip`` field is re-typed to bytes (a TransformSpec) so the JPEGs arrive
    undecoded and a corrupt one is a ``decode_error`` reject rather than a failed read.
    Returns pandas (predictions, rejects) with the same columns as :func:`predict_spark`;
    list columns hold numpy arrays, as Spark's ``toPandas`` gives. The rows read are
    checked against the Parquet footers' row count, so a short read cannot pass.
    """
    from petastorm.tf_utils import make_petastorm_dataset  # imports TensorFlow

    model_cfg = as_model_config(model_cfg)
    _warn_if_random(model_cfg)
    with local_weights_file(model_cfg) as weights_file:
        classifier = shared_classifier(model_cfg, weights_file, int(eval_cfg.top_k))
    batch_size = int(eval_cfg.batch_size)
    predicted: List[pd.DataFrame] = []
    rejected: List[pd.DataFrame] = []
    read = 0
    # An explicit identity function: petastorm 0.13.1 calls TransformSpec.func unchecked when
    # a predicate (the subset filter) is set.
    as_bytes = TransformSpec(_unchanged, edit_fields=[(CHIP, np.bytes_, (), False)])
    stored = readers.count_chips(dataset_output_path, subset)
    with readers.open_batch_reader(
        dataset_output_path,
        transform_spec=as_bytes,
        num_epochs=1,
        shuffle_row_groups=False,
        predicate=readers.subset_predicate(subset),
    ) as reader, progress(f"predict {model_cfg.name}", stored, "chip") as done:
        for row_group in make_petastorm_dataset(reader).as_numpy_iterator():
            frame = _row_group_frame(row_group)
            read += len(frame)
            for start in range(0, len(frame), batch_size):
                batch = frame.iloc[start : start + batch_size]
                good, bad = _split(batch, classifier.score(list(batch[CHIP])))
                predicted.append(good)
                rejected.append(bad)
                done.update(len(batch))
    if read != stored:
        raise RuntimeError(f"read {read} chips from {dataset_output_path} but its Parquet files hold {stored}")
    predictions = _concat(predicted, [*METADATA_COLUMNS, *PREDICTION_COLUMNS])
    rejects = _concat(rejected, list(REJECT_COLUMNS))
    _check_counts(read, len(predictions), len(rejects))
    return predictions, rejects


def _unchanged(frame: pd.DataFrame) -> pd.DataFrame:
    return frame


def _row_group_frame(row_group: Any) -> pd.DataFrame:
    """tf.data gives strings as bytes: decode the text columns, keep ``chip`` as bytes."""
    columns = row_group._asdict()
    for name, values in columns.items():
        if name != CHIP and values.dtype == object:
            columns[name] = np.array([v.decode("utf-8") for v in values], dtype=object)
    return pd.DataFrame(columns)


def _concat(frames: List[pd.DataFrame], columns: List[str]) -> pd.DataFrame:
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)
