"""Chip inference on Spark and in one process: same numbers, one row per chip, early errors."""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Dict, List, Tuple

import keras
import numpy as np
import pandas as pd
import pytest
from petastorm.etl.dataset_metadata import materialize_dataset
from PIL import Image
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from helpers.faults import fail_once_in_process, marker
from helpers.models import TINY, calibrated_mobilenet, probe_batch

from bigcat_ml.stepkit.step import compose
from bigcat_ml.config.schema import ModelConfig, Precision
from bigcat_ml.chips.layout import CHIPS_DIR
from bigcat_ml.chips.schema import ChipSchema, decode_chip
from bigcat_ml.scoring.imagenet import class_names
from bigcat_ml.scoring.inference import spark as spark_inference
from bigcat_ml.scoring.inference.classifier import ChipClassifier, models_built, shared_classifier
from bigcat_ml.scoring.inference.local import predict_local
from bigcat_ml.scoring.inference.spark import partition_rows, predict_spark, spread_evenly
from bigcat_ml.scoring.inference.tables import METADATA_COLUMNS, PREDICTION_COLUMNS, REJECT_COLUMNS
from bigcat_ml.scoring.models import keras_application, model_input
from bigcat_ml.oid.rejects import DECODE_ERROR, PREDICT_ERROR

N_CHIPS = 20
CORRUPT_ID = "corrupt"
K = 5


def jpeg(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def chip_pixels(i: int) -> np.ndarray:
    """A blurry random RGB chip of a size between 20 and 90 pixels a side."""
    rng = np.random.default_rng(i)
    width, height = rng.integers(20, 90, size=2)
    coarse = rng.integers(0, 256, (height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(coarse).resize((int(width), int(height)), Image.BILINEAR))


def chip_row(image_id: str, chip: bytes, width: int, height: int) -> Dict:
    return {
        "ImageID": image_id, "Subset": "validation", "Source": "xclick",
        "LabelName": "/m/07dm6", "LabelText": "Tiger",
        "XMin": 0.1, "XMax": 0.6, "YMin": 0.2, "YMax": 0.7,
        "IsOccluded": 0, "IsTruncated": 1, "IsGroupOf": 0, "IsDepiction": -1, "IsInside": 0,
        "image_width": 400, "image_height": 300,
        "chip": chip, "chip_width": width, "chip_height": height,
    }


def write_chip_dataset(spark: SparkSession, output: Path, rows: List[Dict]) -> None:
    """``<output>/chips`` as the preprocess step writes it: Petastorm over ChipSchema."""
    schema = ChipSchema.as_spark_schema()
    frame = spark.createDataFrame([[row[f.name] for f in schema.fields] for row in rows], schema)
    url = (output / CHIPS_DIR).as_uri()
    with materialize_dataset(spark, url, ChipSchema, 1):
        frame.coalesce(2).write.parquet(url)


@pytest.fixture(scope="module")
def chips(spark, tmp_path_factory) -> Tuple[Path, Dict[str, np.ndarray]]:
    """A chip dataset of N_CHIPS good chips and one corrupt one; the good chips' pixels."""
    output = tmp_path_factory.mktemp("chipset")
    pixels = {f"img{i:02d}": chip_pixels(i) for i in range(N_CHIPS)}
    rows = [chip_row(key, jpeg(p), p.shape[1], p.shape[0]) for key, p in pixels.items()]
    rows.append(chip_row(CORRUPT_ID, b"\xff\xd8 this is not a JPEG", 30, 30))
    write_chip_dataset(spark, output, rows)
    return output, pixels


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Tuple[keras.Model, Path]:
    model = calibrated_mobilenet()
    path = tmp_path_factory.mktemp("weights") / "inference-tiny.weights.h5"
    model.save_weights(str(path))
    return model, path


def model_config() -> ModelConfig:
    return ModelConfig(name="tiny_mobilenet", keras_module="mobilenet", keras_class="MobileNet", input_size=TINY,
                       weights=None, precision=Precision.float32, source=None)


def overrides(weights: str, *extra: str) -> List[str]:
    return [
        "model.name=tiny_mobilenet", f"model.input_size={TINY}", f"model.weights='{weights}'",
        "evaluate.batch_size=4", f"evaluate.top_k={K}", *extra,
    ]


def read_chips(spark: SparkSession, output: Path) -> DataFrame:
    return spark.read.parquet((output / CHIPS_DIR).as_uri())


def by_id(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.set_index("ImageID").sort_index()


@pytest.fixture(scope="module")
def spark_result(spark, chips, trained, tmp_path_factory):
    cfg = compose(overrides(str(trained[1]), f"paths.output_dir={tmp_path_factory.mktemp('out')}"))
    with predict_spark(spark, read_chips(spark, chips[0]), cfg.model, cfg.evaluate) as scored:
        return scored.to_pandas()


# --------------------------------------------------------------------------------- Spark


@pytest.mark.spark
def test_spark_predictions_equal_the_saved_model_on_the_same_chips(chips, trained, spark_result):
    _, pixels = chips
    model, _ = trained
    ids = sorted(pixels)
    # The reference decodes the same JPEG bytes the executors got, then runs model.predict.
    batch = model_input([decode_chip(jpeg(pixels[i])) for i in ids], keras_application(model_config()), TINY)
    expected = model.predict(batch, verbose=0)
    top = np.argsort(-expected, axis=1, kind="stable")[:, :K]
    predictions = by_id(spark_result[0])
    assert predictions.index.tolist() == ids
    np.testing.assert_array_equal(np.stack(predictions["top_k_indices"]), top)
    np.testing.assert_allclose(np.stack(predictions["top_k_probs"]), np.take_along_axis(expected, top, 1), atol=1e-5)
    assert np.stack(predictions["top_k_probs"])[:, 0].min() > 2e-3  # not random-init's uniform 0.001


@pytest.mark.spark
def test_every_chip_is_one_prediction_or_one_reject_and_a_corrupt_chip_is_a_decode_error(spark_result):
    predictions, rejects = spark_result
    assert list(predictions.columns) == [*METADATA_COLUMNS, *PREDICTION_COLUMNS]
    assert list(rejects.columns) == list(REJECT_COLUMNS)
    assert len(predictions) == N_CHIPS and predictions["ImageID"].is_unique
    assert rejects[["ImageID", "reason"]].values.tolist() == [[CORRUPT_ID, DECODE_ERROR]]
    assert CORRUPT_ID not in set(predictions["ImageID"])


@pytest.mark.spark
def test_predictions_carry_the_chip_metadata_and_named_sorted_probabilities(spark_result):
    row = spark_result[0].iloc[0]
    assert (row.LabelText, row.IsTruncated, row.IsDepiction, row.XMax, row.image_width) == ("Tiger", 1, -1, 0.6, 400)
    assert row.chip_width == chip_pixels(int(row.ImageID[3:])).shape[1]
    probs = np.stack(spark_result[0]["top_k_probs"])
    assert probs.shape == (N_CHIPS, K) and (np.diff(probs, axis=1) <= 0).all() and (probs.sum(axis=1) <= 1).all()
    assert list(row.top_k_labels) == class_names(row.top_k_indices).tolist()


@pytest.mark.spark
def test_local_path_gives_bit_identical_predictions_to_spark(chips, trained, spark_result, make_cfg):
    cfg = make_cfg(overrides(str(trained[1])))
    local, local_rejects = predict_local(str(chips[0]), cfg.model, cfg.evaluate)
    spark_predictions, spark_rejects = (by_id(f) for f in spark_result)
    local = by_id(local)
    assert local.index.tolist() == spark_predictions.index.tolist()
    np.testing.assert_array_equal(np.stack(local["top_k_indices"]), np.stack(spark_predictions["top_k_indices"]))
    # batches differ (row groups of the files vs Spark partitions): the numbers must not
    np.testing.assert_array_equal(np.stack(local["top_k_probs"]), np.stack(spark_predictions["top_k_probs"]))
    pd.testing.assert_frame_equal(local[list(METADATA_COLUMNS[1:])], spark_predictions[list(METADATA_COLUMNS[1:])],
                                  check_dtype=False)
    assert by_id(local_rejects)[["reason"]].equals(spark_rejects[["reason"]])


def failing_chips(spark: SparkSession, output: Path) -> DataFrame:
    """The chips, but any Spark task that reads them fails: proof that none ran."""

    @F.udf("binary")
    def explode(chip):
        raise AssertionError("a Spark task ran")

    return read_chips(spark, output).withColumn("chip", explode("chip"))


@pytest.mark.spark
def test_missing_weights_file_fails_before_any_task(spark, chips, make_cfg, tmp_path):
    missing = tmp_path / "gone.weights.h5"
    cfg = make_cfg(overrides(str(missing)))
    with pytest.raises(FileNotFoundError, match=rf"model 'tiny_mobilenet': weights file {missing} does not exist"):
        predict_spark(spark, failing_chips(spark, chips[0]), cfg.model, cfg.evaluate)


@pytest.mark.spark
def test_weights_of_another_architecture_fail_before_any_task(spark, chips, make_cfg, tmp_path):
    other = tmp_path / "mobilenet_v2.weights.h5"
    keras.applications.MobileNetV2(weights=None, input_shape=(TINY, TINY, 3)).save_weights(str(other))
    cfg = make_cfg(overrides(str(other)))
    with pytest.raises(ValueError, match=rf"weights file {other} does not fit model 'tiny_mobilenet'"):
        predict_spark(spark, failing_chips(spark, chips[0]), cfg.model, cfg.evaluate)


@pytest.mark.spark
def test_weights_rewritten_at_the_same_path_reach_the_executors(spark, chips, make_cfg, tmp_path):
    """Spark would serve the first file of a name for the whole session; content naming avoids that."""
    path = tmp_path / "retrained.weights.h5"
    firsts = []
    for seed in (1, 2):
        calibrated_mobilenet(seed).save_weights(str(path))
        cfg = make_cfg(overrides(str(path)))
        with predict_spark(spark, read_chips(spark, chips[0]), cfg.model, cfg.evaluate) as scored:
            firsts.append(by_id(scored.predictions.toPandas())["top_k_probs"].map(lambda p: p[0]).to_numpy())
    assert not np.allclose(firsts[0], firsts[1])


@pytest.mark.spark
def test_a_failed_inference_job_restores_the_arrow_batch_size_and_the_next_call_succeeds(
    spark, chips, trained, make_cfg, tmp_path, monkeypatch
):
    cfg = make_cfg(overrides(str(trained[1])))
    fail_once_in_process(monkeypatch, spark_inference, "make_predict_fn", tmp_path)
    before = spark.conf.get("spark.sql.execution.arrow.maxRecordsPerBatch", None)
    with pytest.raises(Exception, match="injected fault"):
        predict_spark(spark, read_chips(spark, chips[0]), cfg.model, cfg.evaluate)
    assert marker(tmp_path, "make_predict_fn").exists()
    with predict_spark(spark, read_chips(spark, chips[0]), cfg.model, cfg.evaluate) as scored:
        assert (scored.predictions.count(), scored.rejects.count(), scored.chips_read) == (N_CHIPS, 1, N_CHIPS + 1)
    assert spark.conf.get("spark.sql.execution.arrow.maxRecordsPerBatch", None) == before


@pytest.mark.spark
@pytest.mark.parametrize("max_chips_per_task, partitions", [(100, 2), (4, 6)])
def test_uneven_partitions_are_spread_evenly_in_whole_waves_of_bounded_tasks(spark, chips, max_chips_per_task, partitions):
    uneven = read_chips(spark, chips[0]).coalesce(1)
    spread = spread_evenly(spark, uneven, partition_rows(uneven), max_chips_per_task)
    sizes = [len(part) for part in spread.select("ImageID").rdd.glom().collect()]
    assert len(sizes) == partitions and sum(sizes) == N_CHIPS + 1
    assert max(sizes) - min(sizes) <= 1 and max(sizes) <= max_chips_per_task


@pytest.mark.spark
def test_partitions_that_already_keep_every_slot_busy_are_not_shuffled(spark, chips):
    even = read_chips(spark, chips[0]).repartition(2)
    rows = partition_rows(even)
    assert sorted(rows) == [N_CHIPS // 2, N_CHIPS // 2 + 1]
    assert spread_evenly(spark, even, rows, 100) is even


@pytest.mark.spark
def test_partitions_that_leave_one_slot_an_extra_task_are_spread_even_when_its_chips_are_few(spark):
    three = spark.range(45, numPartitions=1).union(spark.range(50, numPartitions=1)).union(spark.range(10, numPartitions=1))
    rows = partition_rows(three)
    assert rows == [45, 50, 10]  # two slots: 55 and 50 chips, within SPREAD_TOLERANCE of 52.5, but 2 tasks against 1
    sizes = [len(part) for part in spread_evenly(spark, three, rows, 100).rdd.glom().collect()]
    assert sorted(sizes) == [52, 53]


@pytest.mark.spark
def test_zero_chips_per_task_is_refused_naming_the_key(spark, chips):
    with pytest.raises(ValueError, match="evaluate.max_chips_per_task must be at least 1; got 0"):
        spread_evenly(spark, read_chips(spark, chips[0]), [N_CHIPS + 1], 0)


@pytest.mark.spark
def test_predictions_do_not_depend_on_how_the_chips_are_partitioned(spark, chips, trained, spark_result, make_cfg):
    cfg = make_cfg(overrides(str(trained[1])))
    for layout in (read_chips(spark, chips[0]).coalesce(1), read_chips(spark, chips[0]).repartition(5)):
        with predict_spark(spark, layout, cfg.model, cfg.evaluate) as scored:
            predictions, _ = scored.to_pandas()
        pd.testing.assert_frame_equal(by_id(predictions), by_id(spark_result[0]))


@pytest.mark.spark
def test_a_reused_python_worker_keeps_the_model_it_built_in_an_earlier_job(spark):
    cfg = model_config()

    def build_ids(batches):
        for _ in batches:
            pass
        shared_classifier(cfg, None, K)
        yield pd.DataFrame({"pid": [os.getpid()], "builds": [models_built()]})

    def one_job() -> Dict[int, int]:
        rows = spark.range(0, 2, 1, 2).mapInPandas(build_ids, "pid long, builds long").collect()
        return {row.pid: row.builds for row in rows}

    first, second = one_job(), one_job()
    shared = first.keys() & second.keys()
    assert shared, "Spark started new Python workers for the second job: spark.python.worker.reuse is off?"
    assert all(first[pid] == second[pid] for pid in shared)


def test_the_shared_classifier_is_rebuilt_when_the_weights_file_changes(tmp_path):
    path = tmp_path / "retrained.weights.h5"
    calibrated_mobilenet(1).save_weights(str(path))
    first = shared_classifier(model_config(), path, K)
    assert shared_classifier(model_config(), path, K) is first
    assert shared_classifier(model_config(), path, K + 1) is not first
    calibrated_mobilenet(2).save_weights(str(path))
    rebuilt = shared_classifier(model_config(), path, K)
    assert rebuilt is not first
    probe = probe_batch()
    assert not np.allclose(rebuilt.model.predict_on_batch(probe), first.model.predict_on_batch(probe))


# ------------------------------------------------------------------------- the classifier


class FlakyModel:
    """Fails on any batch holding a black chip; gives NaN for a white one."""

    def predict_on_batch(self, batch: np.ndarray) -> np.ndarray:
        means = batch.reshape(len(batch), -1).mean(axis=1)
        if (means <= -0.99).any():
            raise RuntimeError("black chip")
        probs = np.full((len(batch), 1000), 1e-3, np.float32)
        probs[means >= 0.99] = np.nan
        return probs


def test_a_chip_the_model_fails_on_is_a_predict_error_and_its_batch_mates_are_still_predicted():
    colours = {"black": 0, "grey": 128, "white": 255}
    chips = [jpeg(np.full((20, 20, 3), v, np.uint8)) for v in colours.values()] + [b"garbage"]
    classifier = ChipClassifier(FlakyModel(), keras_application(model_config()), TINY, K)
    scores = classifier.score(chips)
    assert scores["reason"].tolist() == [PREDICT_ERROR, None, PREDICT_ERROR, DECODE_ERROR]
    assert "black chip" in scores["detail"][0] and "non-finite" in scores["detail"][2]
    assert scores["top_k_indices"][1].tolist() == [0, 1, 2, 3, 4] and (scores["top_k_indices"][[0, 2, 3]] == -1).all()


def test_a_chip_gets_the_same_probabilities_alone_or_in_any_batch(trained):
    classifier = ChipClassifier(trained[0], keras_application(model_config()), TINY, K)
    chips = [jpeg(chip_pixels(i)) for i in range(9)]
    together = classifier.score(chips)["top_k_probs"]
    alone = np.concatenate([classifier.score([chip])["top_k_probs"] for chip in chips])
    pairs = np.concatenate([classifier.score(chips[i : i + 2])["top_k_probs"] for i in range(0, 9, 2)])
    np.testing.assert_array_equal(alone, together)
    np.testing.assert_array_equal(pairs, together)
