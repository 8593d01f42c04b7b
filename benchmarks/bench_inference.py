"""Item 1: scoring chips with ``predict_spark`` (local[2]) vs a plain single-process Keras loop.

Both paths score the very same chips (a deterministic subset of the chip dataset) with
the same random-init model. The plain loop is the fastest simple loop: every JPEG
decoded with the dataset's codec, then ``model_input`` (bilinear resize +
``preprocess_input``) and ``model.predict_on_batch`` per batch, TensorFlow on its
default threads (both cores); decode, preprocessing and predict are timed separately.
The Spark path is timed around the whole ``predict_spark`` call: the driver's model
check, spreading the chips over the task slots, predicting, and reconciling the counts.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Dict, List, Sequence, Tuple

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from bigcat_ml.chips.dataset import CHIP_KEY, decode_chip, read_chips_spark
from bigcat_ml.scoring.inference import ChipClassifier, load_classifier, predict_spark, spread_evenly
from bigcat_ml.scoring.models import as_model_config, model_input

from benchmarks.spark_stages import busiest_stage
from benchmarks.timing import fastest, per_second, timed

log = logging.getLogger(__name__)

TARGET_RATIO = 0.90  # Spark chips/s over plain end-to-end chips/s, both warm


def select_chips(spark: SparkSession, output: str, n: int) -> DataFrame:
    """``n`` chips of the dataset (all if fewer), chosen by a hash of their identity.

    A filter, not ``limit``: the file partitioning that ``evaluate`` would see is kept,
    and the same chips are chosen in every run.
    """
    chips = read_chips_spark(spark, output)
    key = F.xxhash64(*CHIP_KEY)
    cutoff = chips.select(key.alias("key")).orderBy("key").limit(n).agg(F.max("key")).first()[0]
    return chips.filter(key <= F.lit(cutoff))


def plain_loop(jpegs: Sequence[bytes], classifier: ChipClassifier, batch_size: int) -> Dict[str, float]:
    """Seconds to decode all chips, then to preprocess and to predict them batch by batch."""
    start = time.perf_counter()
    decoded = [decode_chip(jpeg) for jpeg in jpegs]
    decode_s = time.perf_counter() - start
    preprocess_s = model_s = 0.0
    for first in range(0, len(decoded), batch_size):
        t0 = time.perf_counter()
        batch = model_input(decoded[first : first + batch_size], classifier.application, classifier.input_size)
        t1 = time.perf_counter()
        classifier.model.predict_on_batch(batch)
        t2 = time.perf_counter()
        preprocess_s += t1 - t0
        model_s += t2 - t1
    return {
        "decode_s": round(decode_s, 6),
        "preprocess_s": round(preprocess_s, 6),
        "model_s": round(model_s, 6),
        "end_to_end_s": round(decode_s + preprocess_s + model_s, 6),
    }


def _spark_call(spark: SparkSession, chips: DataFrame, cfg: Any, group: str, quiet_s: float) -> Dict[str, Any]:
    record, (predictions, rejects) = timed(lambda: predict_spark(spark, chips, cfg.model, cfg.evaluate), quiet_s, spark, group)
    record.update(predictions=predictions.count(), rejects=rejects.count())
    predictions.unpersist()
    rejects.unpersist()
    return record


def _driver_tf_threads() -> int:
    import tensorflow as tf

    return tf.config.threading.get_intra_op_parallelism_threads()


def _ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else float("nan")


def _interleaved(
    spark: SparkSession, chips: DataFrame, jpegs: Sequence[bytes], classifier: ChipClassifier, cfg: Any,
    repeats: int, quiet_s: float,
) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]]]:
    """``repeats`` x (plain loop, warm ``predict_spark``): (plain runs, Spark runs)."""
    plain_runs, spark_runs = [], []
    for i in range(repeats):
        record, plain = timed(lambda: plain_loop(jpegs, classifier, int(cfg.evaluate.batch_size)), quiet_s)
        plain_runs.append({**plain, **record})
        spark_runs.append(_spark_call(spark, chips, cfg, f"{cfg.model.name}-warm-{i}", quiet_s))
    return plain_runs, spark_runs


def _partition_rows(chips: DataFrame) -> List[int]:
    counts = {row["partition"]: row["count"] for row in chips.groupBy(F.spark_partition_id().alias("partition")).count().collect()}
    return [counts.get(i, 0) for i in range(chips.rdd.getNumPartitions())]


def bench_model(spark: SparkSession, cfg: Any, n_chips: int, warm_repeats: int, quiet_s: float) -> Dict[str, Any]:
    """A cold ``predict_spark`` call (the first of the session: the model is built on the
    driver and in each Python worker), then warm calls interleaved with plain loops on the
    same chips. Warm calls find the model already built in every process, as the second
    and later calls of a sweep, a notebook or ``main`` do (``shared_classifier``)."""
    name, batch_size, k = cfg.model.name, int(cfg.evaluate.batch_size), int(cfg.evaluate.top_k)
    chips = select_chips(spark, cfg.preprocess.output, n_chips).persist()
    n = chips.count()
    file_rows = _partition_rows(chips)
    task_rows = _partition_rows(spread_evenly(spark, chips, n, int(cfg.evaluate.max_chips_per_task)))
    jpegs = [row.chip for row in chips.select("chip").collect()]
    log.info("%s: %d chips in file partitions %s, predicted in tasks of %s", name, n, file_rows, task_rows)

    cold = _spark_call(spark, chips, cfg, f"{name}-cold", quiet_s)
    start = time.perf_counter()
    classifier = load_classifier(as_model_config(cfg.model), None, k)
    build_s = time.perf_counter() - start
    plain_loop(jpegs[:batch_size], classifier, batch_size)  # the first predict traces the model
    plain_runs, warm_runs = _interleaved(spark, chips, jpegs, classifier, cfg, warm_repeats, quiet_s)
    chips.unpersist()

    best_plain = min(plain_runs, key=lambda r: r["end_to_end_s"])
    best_warm = fastest(warm_runs)
    stage = busiest_stage(spark, best_warm["group"])
    plain_e2e = per_second(n, best_plain["end_to_end_s"], 2)
    plain_model = per_second(n, min(r["model_s"] for r in plain_runs), 2)
    rates = {key: per_second(n, run["seconds"], 2) for key, run in (("cold", cold), ("warm", best_warm))}
    spark_result: Dict[str, Any] = {
        "cold": cold,
        "warm_runs": warm_runs,
        "cold_chips_per_s": rates["cold"],
        "warm_chips_per_s": rates["warm"],
        "warm_cpu_ms_per_chip": round(1000 * best_warm["resources"]["own_cpu_s"] / n, 2),
        "model_build_and_check_s": round(build_s, 3),
        "cold_predict_stage": busiest_stage(spark, cold["group"]),
        "predict_stage": stage,
    }
    ratios = {
        "warm_spark_vs_plain_end_to_end": _ratio(rates["warm"], plain_e2e),
        "cold_spark_vs_plain_end_to_end": _ratio(rates["cold"], plain_e2e),
        "warm_spark_vs_plain_model_only": _ratio(rates["warm"], plain_model),
    }
    if stage:
        spark_result["outside_predict_stage_s"] = round(best_warm["seconds"] - stage["wall_s"], 3)
        spark_result["predict_stage_chips_per_s"] = per_second(n, stage["wall_s"], 2)
        ratios["predict_stage_vs_plain_end_to_end"] = _ratio(spark_result["predict_stage_chips_per_s"], plain_e2e)
    return {
        "model": name,
        "input_size": int(cfg.model.input_size),
        "chips": n,
        "batch_size": batch_size,
        "arrow_max_records_per_batch": batch_size,  # predict_spark sets it to the batch size
        "file_partition_rows": file_rows,
        "task_rows": task_rows,
        "plain": {
            "runs": plain_runs,
            "model_only_chips_per_s": plain_model,
            "end_to_end_chips_per_s": plain_e2e,
            "cpu_ms_per_chip": round(1000 * best_plain["resources"]["own_cpu_s"] / n, 2),
            "best_breakdown_s": {key: best_plain[key] for key in ("decode_s", "preprocess_s", "model_s")},
            "tf_intra_op_threads": _driver_tf_threads(),  # 0: TensorFlow's default, all cores
        },
        "spark": spark_result,
        "ratios": ratios,
        "target": {
            "metric": "warm_spark_vs_plain_end_to_end",
            "min": TARGET_RATIO,
            "value": ratios["warm_spark_vs_plain_end_to_end"],
            "met": bool(ratios["warm_spark_vs_plain_end_to_end"] >= TARGET_RATIO),
        },
    }


def bench_inference(spark: SparkSession, cfgs: Sequence[Any], plans: Sequence[Tuple[int, int]], quiet_s: float) -> List[Dict[str, Any]]:
    """:func:`bench_model` for each model config with its (at most so many chips, warm repeats)."""
    return [bench_model(spark, cfg, n, repeats, quiet_s) for cfg, (n, repeats) in zip(cfgs, plans)]
