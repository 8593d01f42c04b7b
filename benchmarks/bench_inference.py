"""Inference as users meet it: ``predict_spark`` (local[2]) against the fastest plain loop.

Per model and chip count, in one process and interleaved (plain, plain, Spark; again),
on the very same chips (a deterministic subset of a chip dataset):

* numpy idiom: every JPEG decoded with the dataset's codec, ``model_input`` (bilinear
  resize + ``preprocess_input``) and ``model.predict_on_batch`` per batch;
* tf.data idiom: ``decode_jpeg`` and ``resize`` mapped with ``num_parallel_calls=AUTOTUNE``,
  batched, ``preprocess_input``, prefetched, ``model.predict``;
* a warm ``predict_spark`` call, timed whole: the driver's checks, the partition count,
  the scoring pass and the reconciliation.

Spark 3.5 stops Python workers that ran no task for 60 s (a constant in its
``PythonWorkerFactory``), and plain loops over 2,000 ResNet50 chips run longer than that:
the next call would start new workers, import TensorFlow and build the model again in
each. So each timed warm call follows a short untimed call that brings the workers up,
and the price of a call after such a pause is measured on its own (``after_idle_call``).

Spark is judged against the faster plain idiom. The Spark call's fixed cost is the
intercept of a least-squares line of its best time against chips over every size
measured; the plain loop's per-chip cost and one ``predict_local`` run give the chip
count from which Spark local mode overtakes one process (``evaluate.path=auto``). The
bfloat16 speedup and top-1 agreement are measured with the numpy idiom on models whose
weights were trained on half of the sample's chips, agreement judged on the other half
(random init alone gives every chip nearly the same probabilities, which makes agreement
meaningless).
"""
from __future__ import annotations

import logging
import math
import tempfile
import time
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from bigcat_ml.chips.readers import read_chips_spark
from bigcat_ml.chips.schema import CHIP_KEY, decode_chip
from bigcat_ml.config.schema import Precision
from bigcat_ml.runtime.spark import task_slots
from bigcat_ml.scoring.inference.classifier import ChipClassifier, forget_models, load_classifier
from bigcat_ml.scoring.inference.local import predict_local
from bigcat_ml.scoring.inference.spark import partition_rows, predict_spark
from bigcat_ml.scoring.models import as_model_config, build_model, model_input

from benchmarks.monitor import python_worker_pids
from benchmarks.profiles import InferencePlan
from benchmarks.timing import fastest, per_second, timed

log = logging.getLogger(__name__)

TARGET_SMALL = 0.95  # Spark / best plain chips/s at a few hundred chips
TARGET_LARGE = 1.0  # at >= 2,000 chips
MIN_BF16_AGREEMENT = 0.99


def select_chips(spark: SparkSession, output: str, n: int) -> DataFrame:
    """``n`` chips of the dataset (all if fewer), chosen by a hash of their identity.

    A filter, not ``limit``: the file partitioning that ``evaluate`` would see is kept,
    and the same chips are chosen in every run.
    """
    chips = read_chips_spark(spark, output)
    key = F.xxhash64(*CHIP_KEY)
    cutoff = chips.select(key.alias("key")).orderBy("key").limit(n).agg(F.max("key")).first()[0]
    return chips.filter(key <= F.lit(cutoff))


def numpy_idiom(jpegs: Sequence[bytes], classifier: ChipClassifier, batch_size: int) -> np.ndarray:
    """Decode, resize, preprocess and ``predict_on_batch``, batch by batch: the probabilities."""
    out = []
    for first in range(0, len(jpegs), batch_size):
        chips = [decode_chip(jpeg) for jpeg in jpegs[first : first + batch_size]]
        out.append(np.asarray(classifier.model.predict_on_batch(model_input(chips, classifier.application, classifier.input_size))))
    return np.concatenate(out)


def tf_data_idiom(jpegs: Sequence[bytes], classifier: ChipClassifier, batch_size: int) -> np.ndarray:
    """The same chips through a ``tf.data`` pipeline with parallel decode and resize."""
    import tensorflow as tf

    size, preprocess = classifier.input_size, classifier.application.preprocess_input

    def load(jpeg: tf.Tensor) -> tf.Tensor:
        return tf.image.resize(tf.io.decode_jpeg(jpeg, channels=3), (size, size))

    pipeline = (
        tf.data.Dataset.from_tensor_slices(tf.constant([bytes(jpeg) for jpeg in jpegs], dtype=tf.string))
        .map(load, num_parallel_calls=tf.data.AUTOTUNE)
        .batch(batch_size)
        .map(preprocess, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )
    return np.asarray(classifier.model.predict(pipeline, verbose=0))


def _spark_call(spark: SparkSession, chips: DataFrame, cfg: Any, group: str, quiet_s: float) -> Dict[str, Any]:
    record, scored = timed(lambda: predict_spark(spark, chips, cfg.model, cfg.evaluate), quiet_s, spark, group)
    with scored:
        record.update(predictions=scored.predictions.count(), rejects=scored.rejects.count())
    return record


# Spark 3.5's PythonWorkerFactory stops Python workers idle for IDLE_WORKER_TIMEOUT_NS
# (one minute, not configurable), checked every 10 s by its monitor thread.
SPARK_PYTHON_WORKER_IDLE_S = 60.0
SPARK_IDLE_CHECK_S = 10.0
PAST_IDLE_LIMIT_S = SPARK_PYTHON_WORKER_IDLE_S + SPARK_IDLE_CHECK_S + 5.0


def _warm_workers(spark: SparkSession, chips: DataFrame, cfg: Any) -> None:
    """An untimed ``predict_spark`` call on one batch per task slot: a Python worker per
    slot, each with TensorFlow and the model loaded, whatever ran before (the chips
    arrive in one partition and are spread over the slots)."""
    with predict_spark(spark, chips.limit(max(1, task_slots(spark)) * int(cfg.evaluate.batch_size)), cfg.model, cfg.evaluate):
        pass


def after_idle_call(spark: SparkSession, cfg: Any, output: str, n_chips: int, wait_s: float, quiet_s: float) -> Dict[str, Any]:
    """A warm call, then ``wait_s`` with no Python task, then the same call timed: what a
    sweep pays when its calls are more than a minute apart. ``workers_replaced``: how
    many of the ``python_processes_before`` (``pyspark.daemon`` and its workers) Spark
    had stopped, as it does after :data:`SPARK_PYTHON_WORKER_IDLE_S`."""
    chips = select_chips(spark, output, n_chips).persist()
    _warm_workers(spark, chips, cfg)
    before = python_worker_pids()
    time.sleep(wait_s)
    record = _spark_call(spark, chips, cfg, f"{cfg.model.name}-after-idle", quiet_s)
    chips.unpersist()
    replaced = len(before - python_worker_pids())
    return {**record, "idle_s": wait_s, "python_processes_before": len(before), "workers_replaced": replaced}


def _ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else float("nan")


def _size(spark: SparkSession, cfg: Any, output: str, n_chips: int, repeats: int, classifier: ChipClassifier,
          quiet_s: float, target: float) -> Dict[str, Any]:
    """``repeats`` x (numpy idiom, tf.data idiom, warm Spark call) on the same ``n_chips``;
    :func:`_warm_workers` before each Spark call, as the plain loops may outlast Spark's
    idle limit for Python workers."""
    name, batch_size = cfg.model.name, int(cfg.evaluate.batch_size)
    chips = select_chips(spark, output, n_chips).persist()
    rows = partition_rows(chips)
    jpegs = [row.chip for row in chips.select("chip").collect()]
    n = len(jpegs)
    runs: Dict[str, List[Dict[str, Any]]] = {"numpy": [], "tf_data": [], "spark": []}
    idioms = {"numpy": numpy_idiom, "tf_data": tf_data_idiom}
    for idiom in idioms.values():  # the first call of each traces the model's functions
        idiom(jpegs[: 2 * batch_size], classifier, batch_size)
    _spark_call(spark, chips, cfg, f"{name}-{n}-first", 0.0)
    for i in range(repeats):
        for key, idiom in idioms.items():
            record, _ = timed(lambda: idiom(jpegs, classifier, batch_size), quiet_s)
            runs[key].append(record)
        _warm_workers(spark, chips, cfg)
        runs["spark"].append(_spark_call(spark, chips, cfg, f"{name}-{n}-warm-{i}", quiet_s))
    chips.unpersist()
    rates = {key: per_second(n, fastest(r)["seconds"], 2) for key, r in runs.items()}
    best_plain = max(("numpy", "tf_data"), key=lambda k: rates[k])
    ratio = _ratio(rates["spark"], rates[best_plain])
    log.info("%s, %d chips: %s -> Spark / %s = %s", name, n, rates, best_plain, ratio)
    return {
        "chips": n,
        "partition_rows": rows,
        "runs": runs,
        "chips_per_s": rates,
        "best_plain": best_plain,
        "spark_vs_best_plain": ratio,
        "target": {"min": target, "met": bool(ratio >= target)},
    }


def _spark_only(spark: SparkSession, cfg: Any, output: str, n_chips: int, repeats: int, quiet_s: float) -> Dict[str, Any]:
    chips = select_chips(spark, output, n_chips).persist()
    n = chips.count()
    runs = [_spark_call(spark, chips, cfg, f"{cfg.model.name}-{n}-fit-{i}", quiet_s) for i in range(repeats)]
    chips.unpersist()
    return {"chips": n, "seconds": fastest(runs)["seconds"], "runs": runs}


def fixed_cost(points: Sequence[Tuple[int, float]]) -> Dict[str, Any]:
    """Least-squares line seconds = fixed + per_chip * chips through the best times."""
    chips, seconds = np.array([p[0] for p in points], float), np.array([p[1] for p in points], float)
    per_chip, fixed = np.polyfit(chips, seconds, 1)
    return {"points": [list(p) for p in points], "fixed_s": round(float(fixed), 3), "ms_per_chip": round(1000 * float(per_chip), 3)}


def calibrated(model: Any, batch: np.ndarray) -> Any:
    """``model`` with every batch-norm layer's statistics set from ``batch`` (one
    training-mode pass with momentum 0), so its outputs depend on the chip as a trained
    model's do."""
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.0
    model(batch, training=True)
    return model


def trained(model: Any, inputs: np.ndarray, classes: np.ndarray, epochs: int, batch_size: int) -> Any:
    """``model`` trained from its random init to give output ``classes[i]`` for
    ``inputs[i]``, then :func:`calibrated` on them.

    Offline there are no ImageNet weights, and a random network leaves the 1000 classes
    nearly tied, so rounding alone decides top-1 (docs/decisions.md). A trained network
    has margins between the classes it learnt, as a pretrained one has; bfloat16 is then
    judged on the decisions it would change.
    """
    import keras

    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    model.fit(inputs, classes, epochs=epochs, batch_size=batch_size, shuffle=True, verbose=0)
    return calibrated(model, inputs[:batch_size])


def bench_precision(cfg: Any, jpegs: Sequence[bytes], labels: Sequence[str], epochs: int, repeats: int, quiet_s: float) -> Dict[str, Any]:
    """float32 vs bfloat16 (numpy idiom, interleaved): speedup, top-1 agreement and the
    largest probability difference.

    The model is :func:`trained` on every other chip; agreement is measured on the chips
    it was not trained on (with its accuracy there), speed on all of them.
    """
    model_cfg = replace(as_model_config(cfg.model), precision=Precision.float32)
    k, batch_size = int(cfg.evaluate.top_k), int(cfg.evaluate.batch_size)
    base = load_classifier(model_cfg, None, k)
    inputs = model_input([decode_chip(j) for j in jpegs], base.application, base.input_size)
    names = sorted(set(labels))  # output i of the trained model stands for names[i]
    classes = np.array([names.index(label) for label in labels])
    trained(base.model, inputs[::2], classes[::2], epochs, batch_size)
    with tempfile.TemporaryDirectory() as folder:
        weights = Path(folder) / "trained.weights.h5"
        base.model.save_weights(str(weights))
        classifiers = {
            precision: ChipClassifier(build_model(replace(model_cfg, weights=str(weights), precision=precision), weights),
                                      base.application, base.input_size, k)
            for precision in Precision
        }
    probs = {p: numpy_idiom(jpegs, c, batch_size) for p, c in classifiers.items()}  # also traces both
    runs: Dict[str, List[Dict[str, Any]]] = {p.value: [] for p in Precision}
    for _ in range(repeats):
        for precision, classifier in classifiers.items():
            runs[precision.value].append(timed(lambda: numpy_idiom(jpegs, classifier, batch_size), quiet_s)[0])
    fp32, bf16 = probs[Precision.float32][1::2], probs[Precision.bfloat16][1::2]
    agreement = float((fp32.argmax(axis=1) == bf16.argmax(axis=1)).mean())
    held_out_accuracy = float((fp32.argmax(axis=1) == classes[1::2]).mean())
    seconds = {p: fastest(r)["seconds"] for p, r in runs.items()}
    return {
        "chips": len(jpegs),
        "runs": runs,
        "chips_per_s": {p: per_second(len(jpegs), s, 2) for p, s in seconds.items()},
        "speedup": _ratio(seconds[Precision.float32.value], seconds[Precision.bfloat16.value]),
        "training_epochs": epochs,
        "agreement_chips": len(fp32),
        "fp32_accuracy_on_those_chips": round(held_out_accuracy, 4),
        "top1_agreement": round(agreement, 4),
        "max_abs_prob_diff": round(float(np.abs(fp32 - bf16).max()), 5),
        "fp32_top1_distinct_classes": int(len(np.unique(fp32.argmax(axis=1)))),
        "target": {"min": MIN_BF16_AGREEMENT, "met": bool(agreement >= MIN_BF16_AGREEMENT)},
    }


def local_path_overhead(cfg: Any, output: str, quiet_s: float) -> Dict[str, Any]:
    """One cold ``predict_local`` over a whole dataset: seconds and chips, model built in the call."""
    forget_models()
    record, (predictions, rejects) = timed(lambda: predict_local(output, cfg.model, cfg.evaluate), quiet_s)
    return {"chips": len(predictions) + len(rejects), "seconds": record["seconds"]}


def crossover(spark_cold_fixed_s: float, spark_ms_per_chip: float, local_fixed_s: float, local_ms_per_chip: float) -> Optional[int]:
    """Chips from which a Spark call beats one process (None: one process is never slower)."""
    gain = local_ms_per_chip - spark_ms_per_chip
    if gain <= 0:
        return None
    return max(0, math.ceil(1000 * (spark_cold_fixed_s - local_fixed_s) / gain))


def bench_model(spark: SparkSession, cfg: Any, plan: InferencePlan, small_output: str, large_output: str,
                quiet_s: float) -> Dict[str, Any]:
    """A cold ``predict_spark`` call (the first of the session for this model), the two
    interleaved sizes, the extra fit sizes, a call after the workers' idle limit,
    bfloat16 and the local path."""
    name, k = cfg.model.name, int(cfg.evaluate.top_k)
    chips = select_chips(spark, small_output, plan.small).persist()
    cold = _spark_call(spark, chips, cfg, f"{name}-cold", quiet_s)
    chips.unpersist()
    start = time.perf_counter()
    classifier = load_classifier(as_model_config(cfg.model), None, k)
    build_s = time.perf_counter() - start
    sizes = [
        _size(spark, cfg, small_output, plan.small, plan.repeats, classifier, quiet_s, TARGET_SMALL),
        _size(spark, cfg, large_output, plan.large, plan.large_repeats, classifier, quiet_s, TARGET_LARGE),
    ]
    extra = [_spark_only(spark, cfg, small_output, n, plan.repeats, quiet_s) for n in plan.fit_only]
    points = sorted([(s["chips"], fastest(s["runs"]["spark"])["seconds"]) for s in sizes] + [(e["chips"], e["seconds"]) for e in extra])
    fit = fixed_cost(points)
    small = sizes[0]
    warm_small_s = fastest(small["runs"]["spark"])["seconds"]
    cold_extra_s = round(cold["seconds"] - warm_small_s, 3)
    after_idle = after_idle_call(spark, cfg, small_output, plan.small, PAST_IDLE_LIMIT_S if plan.idle_s is None else plan.idle_s, quiet_s)
    rows = select_chips(spark, small_output, plan.precision_chips).select("chip", "LabelName").collect()
    precision = bench_precision(cfg, [r.chip for r in rows], [r.LabelName for r in rows], plan.precision_epochs,
                                plan.precision_repeats, quiet_s)
    large = sizes[1]
    plain_ms = 1000 / large["chips_per_s"][large["best_plain"]]
    return {
        "model": name,
        "batch_size": int(cfg.evaluate.batch_size),
        "arrow_max_records_per_batch": int(cfg.evaluate.batch_size),  # predict_spark sets it to the batch size
        "model_build_and_check_s": round(build_s, 3),
        "cold_call": {**cold, "chips": small["chips"], "extra_s_over_warm": cold_extra_s},
        "after_idle_call": {**after_idle, "chips": small["chips"], "extra_s_over_warm": round(after_idle["seconds"] - warm_small_s, 3)},
        "sizes": sizes,
        "fit_only": extra,
        "spark_fixed_cost": fit,
        "plain_ms_per_chip_at_large": round(plain_ms, 3),
        "precision": precision,
    }


def auto_threshold(models: List[Dict[str, Any]], local: Dict[str, Any]) -> Dict[str, Any]:
    """The chip count from which ``evaluate`` on Spark local[2] (a cold call: the model is
    built in each Python worker) finishes before the local path, per model; the run's
    threshold is the smallest (the config takes the median over runs: the per-chip
    saving it divides by is within the run-to-run spread on 2 cores)."""
    first = models[0]
    local_read_s = round(local["seconds"] - first["model_build_and_check_s"] - local["chips"] * first["plain_ms_per_chip_at_large"] / 1000, 3)
    per_model = {}
    for m in models:
        fit = m["spark_fixed_cost"]
        per_model[m["model"]] = crossover(fit["fixed_s"] + m["cold_call"]["extra_s_over_warm"], fit["ms_per_chip"],
                                          max(0.0, local_read_s) + m["model_build_and_check_s"], m["plain_ms_per_chip_at_large"])
    finite = [v for v in per_model.values() if v is not None]
    return {"local_path_run": local, "local_fixed_s_beyond_model_and_loop": local_read_s, "per_model": per_model,
            "threshold": min(finite) if finite else None}


def bench_inference(spark: SparkSession, cfgs: Sequence[Any], plans: Sequence[InferencePlan], small_output: str,
                    large_output: str, quiet_s: float, stage: Callable[[str, Callable[[], Any]], Any]) -> Dict[str, Any]:
    """:func:`bench_model` for each model, then the ``evaluate.path=auto`` threshold; each
    model and the local path are one ``stage`` (:meth:`benchmarks.checkpoint.Checkpoint.stage`)."""
    models = [stage(f"inference_{plan.model}", partial(bench_model, spark, cfg, plan, small_output, large_output, quiet_s))
              for cfg, plan in zip(cfgs, plans)]
    local = stage("local_path", partial(local_path_overhead, cfgs[0], small_output, quiet_s))
    return {"models": models, "auto_path": auto_threshold(models, local)}
