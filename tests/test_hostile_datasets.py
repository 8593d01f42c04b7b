"""Hostile or broken datasets are refused, never obeyed; readers never hang; running out
of memory fails the task instead of making rejects."""
from __future__ import annotations

import io
import threading
from pathlib import Path
from typing import Any, List

import pyarrow.parquet as pq
import pytest
from PIL import Image
from petastorm.etl.dataset_metadata import UNISCHEMA_KEY
from test_dataset import frames

from bigcat_ml.chips import crop
from bigcat_ml.chips.dataset import open_batch_reader, open_reader, write_chip_dataset
from bigcat_ml.chips.trusted import COMMON_METADATA_FILE, UntrustedDatasetError
from bigcat_ml.chips.extract import extract_chips
from bigcat_ml.chips.rejects import ENCODE_ERROR, fails_the_task
from bigcat_ml.oid.selection import BOX_FIELDS
from bigcat_ml.scoring.inference import predict_local


class _WritesAFile:
    """A pickle payload: unpickling it runs ``exec``, which creates ``target``."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (exec, (f"open({str(self.target)!r}, 'w').write('owned')",))


@pytest.fixture
def crafted(spark, tmp_path) -> Path:
    """A real chip dataset whose ``_common_metadata`` Unischema was swapped for a payload."""
    import pickle

    output = tmp_path / "crafted"
    chips, rejects = frames(spark)
    write_chip_dataset(spark, chips, rejects, str(output))
    metadata_file = output / "chips" / COMMON_METADATA_FILE
    schema = pq.read_schema(metadata_file)
    evil = pickle.dumps(_WritesAFile(tmp_path / "owned.txt"))
    pq.write_metadata(schema.with_metadata({**schema.metadata, UNISCHEMA_KEY: evil}), metadata_file)
    return output


@pytest.mark.spark
def test_a_dataset_with_a_crafted_pickle_is_refused_before_petastorm_unpickles_it(crafted, tmp_path, make_cfg):
    cfg = make_cfg(["model.weights=null", "model.input_size=32", "evaluate.path=local"])

    for open_dataset in (open_reader, open_batch_reader, lambda out: predict_local(out, cfg.model, cfg.evaluate)):
        with pytest.raises(UntrustedDatasetError, match=r"builtins\.exec.*refusing to unpickle"):
            open_dataset(str(crafted))

    assert not (tmp_path / "owned.txt").exists()


@pytest.mark.spark
def test_both_local_readers_read_every_row_of_a_dataset_of_many_row_groups(spark, tmp_path):
    """Petastorm's ventilator pauses after workers_count*4 = 40 row groups; 120 must all come."""
    output = tmp_path / "many"
    chips, rejects = frames(spark, n_chips=5)
    many = chips.crossJoin(spark.range(24).withColumnRenamed("id", "copy")).drop("copy")
    write_chip_dataset(spark, many.coalesce(1), rejects, str(output), rows_per_file=1)
    assert len(list((output / "chips").glob("*.parquet"))) == 120

    counts: List[Any] = []

    def read_all() -> None:
        with open_reader(str(output), num_epochs=1, schema_fields=["ImageID"]) as reader:
            counts.append(sum(1 for _ in reader))
        with open_batch_reader(str(output), num_epochs=1, schema_fields=["ImageID"]) as reader:
            counts.append(sum(len(batch.ImageID) for batch in reader))

    reading = threading.Thread(target=read_all, daemon=True)
    reading.start()
    reading.join(timeout=300)  # a guard against a hang, not a speed requirement

    assert not reading.is_alive(), "a reader hung"
    assert counts == [120, 120]


def test_out_of_memory_while_decoding_fails_instead_of_making_rejects(monkeypatch):
    def exhausted(data, max_image_pixels):
        raise MemoryError("cannot allocate the image")

    monkeypatch.setattr(crop, "decode_rgb", exhausted)
    box = {"XMin": 0.0, "XMax": 1.0, "YMin": 0.0, "YMax": 1.0}

    with pytest.raises(MemoryError):
        crop.crop_image_boxes(b"\xff\xd8 any bytes", [box], padding=0.0, min_chip_side=1, jpeg_quality=90, max_image_pixels=10**8)


def test_tensorflow_resource_exhaustion_is_a_task_failure_not_a_reject():
    import tensorflow as tf

    assert fails_the_task(MemoryError())
    assert fails_the_task(tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor"))
    assert not fails_the_task(OSError("truncated"))
    assert not fails_the_task(ValueError("bad shape"))


def test_a_prediction_out_of_memory_fails_the_batch_instead_of_rejecting_its_chips():
    import tensorflow as tf

    from bigcat_ml.scoring.inference import ChipClassifier
    from bigcat_ml.scoring.models import keras_application

    class ExhaustedModel:
        def predict_on_batch(self, batch):
            raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor with shape [32,224,224,3]")

    model_cfg = type("Model", (), {"keras_module": "mobilenet", "keras_class": "MobileNet", "name": "mobilenet"})()
    classifier = ChipClassifier(model=ExhaustedModel(), application=keras_application(model_cfg), input_size=32, k=5)
    chip = io.BytesIO()
    Image.new("RGB", (20, 20), (200, 30, 30)).save(chip, format="JPEG")

    with pytest.raises(tf.errors.ResourceExhaustedError):
        classifier.score([chip.getvalue()] * 2)


@pytest.mark.spark
def test_a_chip_the_jpeg_encoder_cannot_write_is_a_reject_naming_its_image_and_box(spark):
    """JPEG stops at 65500 pixels a side: a 66000-pixel-wide panorama cannot be a chip."""
    panorama = io.BytesIO()
    Image.new("RGB", (66000, 40), (10, 120, 30)).save(panorama, format="PNG")
    box = {name: None for name in BOX_FIELDS}
    box.update({"Source": "xclick", "LabelName": "/m/0cd4d", "LabelText": "Cheetah", "XMin": 0.0, "XMax": 1.0, "YMin": 0.0, "YMax": 1.0})
    for flag in ("IsOccluded", "IsTruncated", "IsGroupOf", "IsDepiction", "IsInside"):
        box[flag] = 0
    images = spark.createDataFrame([("panorama01", "train", panorama.getvalue(), [box])], extract_schema(spark))
    cfg = type("Pre", (), {"padding": 0.0, "min_chip_side": 16, "jpeg_quality": 90, "max_image_pixels": 10**8, "fault_injection": {}})()

    rows = extract_chips(images, cfg).select("ImageID", "XMin", "XMax", "reason", "detail").collect()

    assert [(r.ImageID, r.reason) for r in rows] == [("panorama01", ENCODE_ERROR)]
    assert "66000x40" in rows[0].detail and "XMin=0.0" in rows[0].detail and "XMax=1.0" in rows[0].detail


def extract_schema(spark):
    from pyspark.sql.types import ArrayType, BinaryType, StringType, StructField, StructType

    from bigcat_ml.oid.schemas import BOXES_SCHEMA

    types = {f.name: f.dataType for f in BOXES_SCHEMA.fields}
    types["LabelText"] = StringType()
    box = StructType([StructField(name, types[name], True) for name in BOX_FIELDS])
    return StructType(
        [
            StructField("ImageID", StringType()),
            StructField("Subset", StringType()),
            StructField("Data", BinaryType()),
            StructField("boxes", ArrayType(box)),
        ]
    )
