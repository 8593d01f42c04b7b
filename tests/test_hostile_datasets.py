"""Hostile or broken datasets are refused, never obeyed; readers never hang; running out
of memory fails the task instead of making rejects."""
from __future__ import annotations

import io
import json
import pickle
import shutil
import threading
from pathlib import Path
from typing import Any, Callable, List

import pyarrow.parquet as pq
import pytest
from PIL import Image
from petastorm.etl.dataset_metadata import UNISCHEMA_KEY
from helpers.images import encode
from test_dataset import frames

from bigcat_ml.chips import crop
from bigcat_ml.chips.manifest import read_summary
from bigcat_ml.chips.readers import count_chips, open_batch_reader, open_reader, read_chips_spark
from bigcat_ml.chips.schema import ChipSchema
from bigcat_ml.chips.writer import write_chip_dataset
from bigcat_ml.chips.layout import CHIPS_DIR, SUMMARY_FILE, dataset_url
from bigcat_ml.chips.trusted import COMMON_METADATA_FILE, SCHEMA_GLOBALS, UntrustedDatasetError, load_schema_pickle, pickle_globals
from bigcat_ml.chips.extract import extract_chips
from bigcat_ml.oid.rejects import ENCODE_ERROR, TOO_LARGE, fails_the_task
from bigcat_ml.oid.selection import BOX_FIELDS
from bigcat_ml.scoring.inference.local import predict_local
from bigcat_ml.training.data import labelled_chips
from bigcat_ml.training.pipeline import subset_digest


class _WritesAFile:
    """A pickle payload: unpickling it runs ``exec``, which creates ``target``."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (exec, (f"open({str(self.target)!r}, 'w').write('owned')",))


class _WritesAFileAndReturnsTheSchema:
    """The issue's payload: unpickling it ``eval``s code that creates ``target`` and then
    returns the genuine ChipSchema, so that the read goes on as if nothing happened."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        genuine = pickle.dumps(ChipSchema).hex()
        code = f"(open({str(self.target)!r}, 'w').write('owned'), __import__('pickle').loads(bytes.fromhex({genuine!r})))[1]"
        return (eval, (code,))


@pytest.fixture(scope="module")
def genuine(spark, tmp_path_factory) -> Path:
    """A chip dataset as the writer leaves it; tests tamper with copies of it."""
    output = tmp_path_factory.mktemp("genuine") / "chips-dataset"
    chips, rejects = frames(spark)
    write_chip_dataset(spark, chips, rejects, str(output))
    return output


@pytest.fixture
def copy_of(genuine, tmp_path) -> Path:
    """A copy of ``genuine``, modification times kept (so its manifest still holds)."""
    return Path(shutil.copytree(genuine, tmp_path / "copy"))


def with_payload(parquet_file: Path, payload: Any, target: Path) -> None:
    """Write ``parquet_file``'s rows (none for a metadata file) with ``payload`` pickled as its Unischema."""
    table = pq.read_table(parquet_file) if pq.read_metadata(parquet_file).num_rows else None
    schema = pq.read_schema(parquet_file)
    schema = schema.with_metadata({**(schema.metadata or {}), UNISCHEMA_KEY: pickle.dumps(payload)})
    if table is None:
        pq.write_metadata(schema, target)
    else:
        pq.write_table(table.replace_schema_metadata(schema.metadata), target)


@pytest.fixture
def crafted(copy_of, tmp_path) -> Path:
    """A real chip dataset whose ``_common_metadata`` Unischema was swapped for a payload."""
    metadata_file = copy_of / CHIPS_DIR / COMMON_METADATA_FILE
    with_payload(metadata_file, _WritesAFile(tmp_path / "owned.txt"), metadata_file)
    return copy_of


@pytest.mark.spark
def test_a_dataset_with_a_crafted_pickle_is_refused_before_petastorm_unpickles_it(crafted, tmp_path, make_cfg):
    cfg = make_cfg(["model.weights=null", "model.input_size=32", "evaluate.path=local"])

    for open_dataset in (open_reader, open_batch_reader, lambda out: predict_local(out, cfg.model, cfg.evaluate)):
        with pytest.raises(UntrustedDatasetError, match=r"builtins\.exec.*refusing to unpickle"):
            open_dataset(str(crafted))

    assert not (tmp_path / "owned.txt").exists()


DECOYS = 40


def chip_readers(spark, make_cfg) -> List[Callable[[str], Any]]:
    """Every way the project opens a chip dataset: petastorm's two readers, Spark (evaluate's
    Spark path, train's digests), the row count, local inference and train's examples."""
    cfg = make_cfg(["model.weights=null", "model.input_size=32", "evaluate.path=local"])
    return [
        open_reader,
        open_batch_reader,
        lambda out: read_chips_spark(spark, out),
        lambda out: subset_digest(spark, out, "train"),
        count_chips,
        lambda out: predict_local(out, cfg.model, cfg.evaluate),
        lambda out: next(labelled_chips(out, "train")),
    ]


@pytest.mark.spark
@pytest.mark.parametrize("decoy", ["metadata", "data file footer"])
def test_decoy_metadata_files_beside_the_genuine_one_are_refused_by_name_and_never_unpickled(
    spark, copy_of, tmp_path, make_cfg, decoy
):
    """The issue's attack: the genuine _common_metadata untouched, 40 files whose names end in
    _common_metadata hold a payload (pyarrow takes the last one), as a metadata file or as
    the footer of a copy of a real data file."""
    chips = copy_of / CHIPS_DIR
    source = chips / COMMON_METADATA_FILE if decoy == "metadata" else next(chips.glob("part-*.parquet"))
    for n in range(DECOYS):
        with_payload(source, _WritesAFileAndReturnsTheSchema(tmp_path / "owned.txt"), chips / f"d{n:02d}{COMMON_METADATA_FILE}")

    for open_dataset in chip_readers(spark, make_cfg):
        with pytest.raises(UntrustedDatasetError, match=rf"{chips}/d00_common_metadata, .*d04_common_metadata and 35 more: the chip dataset writer never writes"):
            open_dataset(str(copy_of))

    assert not (tmp_path / "owned.txt").exists()


@pytest.mark.spark
@pytest.mark.parametrize("stray", ["chips/_metadata", "chips/Subset=train/_common_metadata", "rejects/x_common_metadata", "notes.txt"])
def test_any_file_the_writer_never_writes_is_refused_naming_it(spark, copy_of, make_cfg, stray):
    (copy_of / stray).parent.mkdir(exist_ok=True)
    shutil.copy(copy_of / CHIPS_DIR / COMMON_METADATA_FILE, copy_of / stray)

    for open_dataset in chip_readers(spark, make_cfg):
        with pytest.raises(UntrustedDatasetError, match=rf"^{copy_of / stray}: the chip dataset writer never writes such a file"):
            open_dataset(str(copy_of))


@pytest.mark.spark
def test_petastorms_own_readers_unpickle_only_the_classes_a_chip_schema_names(crafted, tmp_path):
    """The check at depth: past this project's readers, petastorm's make_reader and
    make_batch_reader resolve no global a ChipSchema pickle does not name."""
    from petastorm import make_batch_reader, make_reader

    for make in (make_reader, make_batch_reader):
        with pytest.raises(UntrustedDatasetError, match=r"names builtins\.exec, which a ChipSchema pickle never does"):
            make(dataset_url(str(crafted)))

    assert not (tmp_path / "owned.txt").exists()


def test_the_schema_unpickler_admits_exactly_the_globals_of_the_chip_schema_pickle():
    genuine = pickle.dumps(ChipSchema)

    assert pickle_globals(genuine) == sorted(f"{module}.{name}" for module, name in SCHEMA_GLOBALS)
    assert list(load_schema_pickle(genuine).fields) == list(ChipSchema.fields)
    with pytest.raises(UntrustedDatasetError, match=r"names builtins\.eval"):
        load_schema_pickle(pickle.dumps(_WritesAFileAndReturnsTheSchema(Path("/nonexistent/owned.txt"))))


@pytest.mark.spark
def test_a_summary_edited_after_it_was_written_is_refused_by_the_steps_that_trust_it(copy_of):
    """evaluate and train take the counts and the selected classes (the label order) from summary.json."""
    summary_file = copy_of / SUMMARY_FILE
    summary = json.loads(summary_file.read_text())
    summary_file.write_text(json.dumps({**summary, "chips": summary["chips"] + 1}, indent=2, sort_keys=True))

    with pytest.raises(UntrustedDatasetError, match=rf"{copy_of}: summary.json is not the one its manifest.json records"):
        read_summary(str(copy_of))


@pytest.mark.spark
def test_a_summary_without_its_manifest_is_refused(copy_of):
    (copy_of / "manifest.json").unlink()

    with pytest.raises(UntrustedDatasetError, match=rf"no manifest.json in {copy_of}; its counts and selected classes cannot be trusted"):
        read_summary(str(copy_of))


@pytest.mark.spark
def test_both_local_readers_read_every_row_of_a_dataset_of_many_row_groups(spark, tmp_path):
    """Petastorm's ventilator pauses after workers_count*4 = 40 row groups; 120 must all come."""
    output = tmp_path / "many"
    chips, rejects = frames(spark, n_chips=5)
    many = chips.crossJoin(spark.range(24).withColumnRenamed("id", "copy")).drop("copy")
    write_chip_dataset(spark, many.coalesce(1), rejects, str(output), rows_per_file=1)
    row_groups = [pq.read_metadata(part).num_row_groups for part in (output / "chips").glob("*.parquet")]
    assert sum(row_groups) == 120 and max(row_groups) == 1

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


@pytest.mark.parametrize(
    ("mode", "size", "image_format", "too_large"),
    [
        ("RGBA", (100, 100), "PNG", True),  # 10,000 pixels x (4 bytes + 4 of the RGB copy) = 80,000
        ("I;16", (100, 120), "PNG", True),  # 12,000 pixels x (2 + 4) = 72,000
        ("RGB", (100, 100), "PNG", True),  # 80,000: a PNG may carry its EXIF turn after the pixels
        ("RGB", (100, 100), "JPEG", False),  # 40,000: an upright RGB JPEG is decoded without a copy
    ],
)
def test_an_image_under_the_pixel_limit_whose_decode_takes_more_bytes_than_an_rgb_image_at_the_limit_is_too_large(
    mode, size, image_format, too_large
):
    """Every image is under the limit of 15,000 pixels, whose RGB image takes 60,000 bytes."""
    image = encode(Image.new(mode, size), image_format)
    box = {"XMin": 0.0, "XMax": 1.0, "YMin": 0.0, "YMax": 1.0}

    (result,) = crop.crop_image_boxes(image, [box], padding=0.0, min_chip_side=1, jpeg_quality=90, max_image_pixels=15000)

    if too_large:
        assert result.reason == TOO_LARGE
        assert f"{size[0]}x{size[1]} {mode} image to upright RGB takes" in result.detail and "over the 60000" in result.detail
    else:
        assert result.reason is None and (result.chip_width, result.chip_height) == size


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

    from bigcat_ml.scoring.inference.classifier import ChipClassifier
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
    images = spark.createDataFrame([("panorama01", "train", None, panorama.getvalue(), [box])], extract_schema(spark))
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
            StructField("path", StringType()),
            StructField("Data", BinaryType()),
            StructField("boxes", ArrayType(box)),
        ]
    )
