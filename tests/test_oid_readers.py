"""Reading Open Images files with Spark: typed columns, errors, image-level filter, boxes, images.

Every test writes its own tiny OID V6-format files: the big cats Tiger and Jaguar (Animal)
are selected, Cat is not.
"""
from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Dict, List, Sequence

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from bigcat_ml.oid import images, readers, selection
from bigcat_ml.oid.images import image_bytes
from bigcat_ml.oid.schemas import BOX_COLUMNS, BOXES_SCHEMA, IMAGE_LABEL_COLUMNS
from bigcat_ml.oid.rejects import MISSING_IMAGE, REJECTS_SCHEMA

pytestmark = pytest.mark.spark

TIGER, JAGUAR, CAT = "/m/07dm6", "/m/0449p", "/m/01yrx"
SELECTED = pd.DataFrame({"LabelName": [JAGUAR, TIGER], "DisplayName": ["Jaguar (Animal)", "Tiger"]})
BOXES_FILE = "{subset}-annotations-bbox.csv"
LABELS_FILE = "{subset}-annotations-human-imagelabels-boxable.csv"
V6_TRAIN_EXTRA = ("XClick1X", "XClick2X", "XClick3X", "XClick4X", "XClick1Y", "XClick2Y", "XClick3Y", "XClick4Y")

LABELS = {
    "train": [
        ("aa01", "verification", TIGER, 1),
        ("aa01", "verification", CAT, 1),
        ("aa02", "verification", TIGER, 0),  # verified absent: no positive label
        ("aa03", "crowdsource-verification", JAGUAR, 1),
        ("aa04", "verification", CAT, 1),
    ],
    "validation": [("bb01", "verification", JAGUAR, 1)],
}
# ImageID, Source, LabelName, Confidence, XMin, XMax, YMin, YMax, 5 flags
BOXES = {
    "train": [
        ("aa01", "xclick", TIGER, 1, 0.1, 0.5, 0.2, 0.6, 0, 1, 0, 0, 0),  # kept
        ("aa01", "xclick", CAT, 1, 0.5, 0.9, 0.5, 0.9, 0, 0, 0, 0, 0),  # class not selected
        ("aa01", "xclick", JAGUAR, 1, 0.0, 1, 0.25, 0.75, 1, 0, -1, -1, -1),  # kept: image has a positive
        ("aa02", "xclick", TIGER, 1, 0.2, 0.4, 0.2, 0.4, 0, 0, 0, 0, 0),  # image has no positive
        ("aa03", "activemil", JAGUAR, 1, 0.3, 0.7, 0.1, 0.9, 0, 0, 0, 0, 0),  # kept (positive from crowdsource)
        ("aa04", "xclick", CAT, 1, 0.1, 0.2, 0.1, 0.2, 0, 0, 0, 0, 0),
    ],
    "validation": [("bb01", "xclick", JAGUAR, 1, 0.39166668, 0.6, 0.1, 0.5, 0, 0, 0, 0, 0)],  # its image is missing
}
# Which image files exist, with the case of their names on disk.
IMAGE_FILES = {"train": ["AA01", "aa02", "aa03", "aa04"], "validation": []}


def write_csv(path: Path, header: Sequence[str], rows: List[Sequence]) -> None:
    lines = [",".join(header)] + [",".join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")


def jpeg(colour) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 6), colour).save(out, format="JPEG")
    return out.getvalue()


def write_oid(root: Path, extra_train_columns: bool = True) -> Dict[str, bytes]:
    """The annotation CSVs, ``images/<subset>/<ID>.jpg`` and ``images.parquet``; returns bytes by ImageID."""
    for subset, rows in LABELS.items():
        write_csv(root / LABELS_FILE.format(subset=subset), IMAGE_LABEL_COLUMNS, rows)
    for subset, rows in BOXES.items():
        extra = V6_TRAIN_EXTRA if subset == "train" and extra_train_columns else ()
        write_csv(root / BOXES_FILE.format(subset=subset), BOX_COLUMNS + extra, [r + (0.5,) * len(extra) for r in rows])
    data, records = {}, []
    for subset, names in IMAGE_FILES.items():
        (root / "images" / subset).mkdir(parents=True)
        for i, name in enumerate(names):
            data[name.lower()] = jpeg((40 * i, 200, 100))
            (root / "images" / subset / f"{name}.jpg").write_bytes(data[name.lower()])
            records.append({"ImageID": name, "Subset": subset, "Data": data[name.lower()]})
    pq.write_table(pa.Table.from_pylist(records), root / "images.parquet")
    return data


@pytest.fixture
def oid(tmp_path: Path) -> Path:
    root = tmp_path / "oid"
    root.mkdir()
    write_oid(root)
    return root


def config(make_cfg, root: Path, *overrides: str):
    return make_cfg([f"data.root={root}", "data.subsets=[train,validation]", *overrides])


def load(spark, cfg):
    labels = selection.read_selected_labels(spark, cfg.data, SELECTED)
    return labels, selection.load_selected_boxes(spark, cfg.data, cfg.preprocess, SELECTED, labels).boxes


def box_keys(boxes) -> List[tuple]:
    return sorted((r.Subset, r.ImageID, r.LabelText, r.Source) for r in boxes.collect())


# --------------------------------------------------------------------------- reading


def test_boxes_are_read_typed_with_unknown_flags_kept(spark, oid):
    df = readers.read_csv(spark, str(oid / "train-annotations-bbox.csv"), BOXES_SCHEMA)
    types = dict(df.dtypes)
    assert [types[c] for c in ("ImageID", "Confidence", "XMin", "YMax", "IsOccluded", "IsInside")] == [
        "string", "double", "double", "double", "int", "int",
    ]
    jaguar = df.filter(df.LabelName == JAGUAR).first()
    assert (jaguar.XMin, jaguar.XMax, jaguar.IsOccluded, jaguar.IsGroupOf, jaguar.IsInside) == (0.0, 1.0, 1, -1, -1)
    assert df.filter(readers.bad_row(BOXES_SCHEMA)).count() == 0


def test_subsets_are_unioned_with_a_subset_column_and_extra_columns_ignored(spark, oid):
    per_subset = {s: [str(oid / BOXES_FILE.format(subset=s))] for s in ("train", "validation")}
    files = readers.subset_files(per_subset, ["train", "validation"], "boxes")
    df = readers.read_subsets(spark, files, BOXES_SCHEMA)
    assert "XClick1X" not in df.columns
    counts = {r.Subset: r["count"] for r in df.groupBy("Subset").count().collect()}
    assert counts == {"train": 6, "validation": 1}
    assert df.filter(df.Subset == "validation").first().XMin == 0.39166668


def test_columns_are_found_by_name_in_any_order(spark, tmp_path):
    path = tmp_path / "boxes.csv"
    header = ("LabelName", "XClick1X", *reversed([c for c in BOX_COLUMNS if c != "LabelName"]))
    row = dict(zip(BOX_COLUMNS, BOXES["train"][0]))
    write_csv(path, header, [[0.7 if c == "XClick1X" else row[c] for c in header]])
    first = readers.read_csv(spark, str(path), BOXES_SCHEMA).first()
    assert (first.ImageID, first.LabelName, first.XMin, first.YMax, first.IsTruncated) == ("aa01", TIGER, 0.1, 0.6, 1)


def test_a_missing_file_is_named_with_what_to_do(spark, oid, make_cfg):
    cfg = config(make_cfg, oid, "data.subsets=[train,test]")
    with pytest.raises(FileNotFoundError, match=re.escape(str(oid / LABELS_FILE.format(subset="test"))) + ".*data.root"):
        selection.read_selected_labels(spark, cfg.data, SELECTED)


def test_a_wrong_header_names_the_file_the_missing_columns_and_the_header(spark, tmp_path):
    path = tmp_path / "train-annotations-bbox.csv"
    header = ["XMn" if c == "XMin" else c for c in BOX_COLUMNS]
    write_csv(path, header, [BOXES["train"][0]])
    with pytest.raises(ValueError) as err:
        readers.read_csv(spark, str(path), BOXES_SCHEMA)
    assert str(err.value).startswith(f"{path}: missing column(s) ['XMin']; header found: {header}")


def test_an_empty_file_is_an_error_naming_it(spark, tmp_path):
    path = tmp_path / "train-annotations-bbox.csv"
    path.write_text("")
    with pytest.raises(ValueError, match=re.escape(f"{path} is empty")):
        readers.read_csv(spark, str(path), BOXES_SCHEMA)


@pytest.mark.parametrize(
    "subset, bad_line, shown",
    [
        # unparseable coordinate on a box of a class that is NOT selected: the whole file is checked
        ("validation", "bb04,xclick,/m/01yrx,1,abc,0.2,0.1,0.2,0,0,0,0,0", "'bb04,xclick,/m/01yrx,1,abc,0.2,0.1,0.2,0,0,0,0,0'"),
        # a flag that is not an integer
        ("validation", "bb01,xclick,/m/07dm6,1,0.1,0.2,0.1,0.2,0,1.5,0,0,0", "'bb01,xclick,/m/07dm6,1,0.1,0.2,0.1,0.2,0,1.5,0,0,0'"),
        # a truncated row
        ("validation", "bb01,xclick,/m/07dm6,1,0.1", "'bb01,xclick,/m/07dm6,1,0.1'"),
        # a truncated row in a file with extra columns, which Spark does not parse
        ("train", "aa01,xclick,/m/07dm6,1,0.1", "'aa01,xclick,/m/07dm6,1.0,0.1,,,,,,,,' (no value for XMax, YMin, YMax, Is"),
    ],
)
def test_a_malformed_row_is_an_error_naming_the_file_and_the_row(spark, oid, make_cfg, subset, bad_line, shown):
    path = oid / BOXES_FILE.format(subset=subset)
    path.write_text(path.read_text() + bad_line + "\n")
    cfg = config(make_cfg, oid)
    labels = selection.read_selected_labels(spark, cfg.data, SELECTED)
    with pytest.raises(ValueError) as err:
        selection.load_selected_boxes(spark, cfg.data, cfg.preprocess, SELECTED, labels)
    assert str(err.value).startswith(f"1 malformed row(s) in {path}: ")
    assert f"{path}: {shown}" in str(err.value)


# --------------------------------------------------------------------------- selection


def test_only_boxes_of_selected_classes_on_positive_images_are_kept(spark, oid, make_cfg):
    labels, boxes = load(spark, config(make_cfg, oid))
    assert box_keys(boxes) == [
        ("train", "aa01", "Jaguar (Animal)", "xclick"),
        ("train", "aa01", "Tiger", "xclick"),
        ("train", "aa03", "Jaguar (Animal)", "activemil"),
        ("validation", "bb01", "Jaguar (Animal)", "xclick"),
    ]
    assert tuple(boxes.columns) == selection.SELECTED_BOX_COLUMNS
    jaguar = boxes.filter((boxes.ImageID == "aa01") & (boxes.LabelName == JAGUAR)).first()
    assert (jaguar.XMax, jaguar.YMin, jaguar.IsOccluded, jaguar.IsDepiction) == (1.0, 0.25, 1, -1)


@pytest.mark.parametrize(
    "overrides, images",
    [
        ([], {"aa01", "aa03", "bb01"}),
        (["preprocess.sources=[verification]"], {"aa01", "bb01"}),
        (["preprocess.min_confidence=0.0"], {"aa01", "aa02", "aa03", "bb01"}),
    ],
)
def test_the_image_level_filter_honours_confidence_and_sources(spark, oid, make_cfg, overrides, images):
    cfg = config(make_cfg, oid, *overrides)
    labels, boxes = load(spark, cfg)
    assert {r.ImageID for r in selection.positive_images(labels, cfg.preprocess).collect()} == images
    assert {r.ImageID for r in boxes.collect()} == images


@pytest.mark.parametrize("confidence", ["NaN", "Inf", "2"])
def test_a_label_whose_confidence_is_not_a_number_in_0_1_never_passes_and_is_counted(spark, oid, make_cfg, confidence):
    """Spark orders NaN above every number, so NaN >= min_confidence would hold."""
    path = oid / LABELS_FILE.format(subset="train")
    positive = f"aa03,crowdsource-verification,{JAGUAR},1"  # aa03's only label
    path.write_text(path.read_text().replace(positive, positive[:-1] + confidence))
    cfg = config(make_cfg, oid)
    labels = selection.read_selected_labels(spark, cfg.data, SELECTED)
    chosen = selection.load_selected_boxes(spark, cfg.data, cfg.preprocess, SELECTED, labels)
    assert "aa03" not in {r.ImageID for r in chosen.boxes.collect()}
    assert [(r.reason, r.LabelName) for r in chosen.dropped.filter("ImageID = 'aa03'").collect()] == [("image_label_filter", JAGUAR)]
    assert chosen.box_rows == chosen.boxes.count() + chosen.dropped.count()
    counts = selection.label_counts(labels, cfg.preprocess, SELECTED)
    assert counts.loc["Jaguar (Animal)"].to_dict() == {"positive": 1, "negative": 0, "invalid_confidence": 1}


def test_a_huge_malformed_row_is_shown_cut_with_its_length(spark, oid, make_cfg):
    path = oid / BOXES_FILE.format(subset="validation")
    line = "bb09,xclick," + "x" * 1_000_000
    path.write_text(path.read_text() + line + "\n")
    cfg = config(make_cfg, oid)
    labels = selection.read_selected_labels(spark, cfg.data, SELECTED)
    with pytest.raises(ValueError) as err:
        selection.load_selected_boxes(spark, cfg.data, cfg.preprocess, SELECTED, labels)
    message = str(err.value)
    assert f"{path}: {line[:200]!r}... (1,000,012 characters)" in message
    assert len(message) < 2_000


def test_each_annotation_file_is_scanned_once(spark, oid, make_cfg):
    """After loading, the CSVs are no longer needed: later actions use the cached rows."""
    cfg = config(make_cfg, oid)
    labels, boxes = load(spark, cfg)
    for csv in oid.glob("*.csv"):
        csv.unlink()
    assert len(box_keys(boxes)) == 4
    assert selection.label_counts(labels, cfg.preprocess, SELECTED).loc["Tiger"].tolist() == [1, 1, 0]


def test_label_and_box_counts_per_class(spark, oid, make_cfg):
    cfg = config(make_cfg, oid)
    labels, boxes = load(spark, cfg)
    assert selection.label_counts(labels, cfg.preprocess, SELECTED).to_dict("index") == {
        "Jaguar (Animal)": {"positive": 2, "negative": 0, "invalid_confidence": 0},
        "Tiger": {"positive": 1, "negative": 1, "invalid_confidence": 0},
    }
    assert selection.box_counts(selection.box_table(boxes), SELECTED, ["train", "validation", "test"]).to_dict("index") == {
        "Jaguar (Animal)": {"train": 2, "validation": 1, "test": 0},
        "Tiger": {"train": 1, "validation": 0, "test": 0},
    }


# --------------------------------------------------------------------------- images


def images_as_rows(images) -> Dict[tuple, tuple]:
    return {
        (r.Subset, r.ImageID): (image_bytes(r.Data, r.path), [(b.LabelText, b.XMin, b.IsGroupOf) for b in r.boxes])
        for r in images.collect()
    }


def test_images_carry_their_boxes_and_a_missing_image_is_a_reject(spark, tmp_path, make_cfg):
    root = tmp_path / "oid"
    root.mkdir()
    data = write_oid(root)
    cfg = config(make_cfg, root)
    _, boxes = load(spark, cfg)
    with selection.attach_images(spark, boxes, cfg.data, cfg.preprocess.images_per_task) as (images, rejects):
        assert tuple(images.columns) == selection.IMAGE_COLUMNS
        assert images_as_rows(images) == {
            # the file on disk is AA01.jpg: ImageIDs match whatever their case
            ("train", "aa01"): (data["aa01"], [("Jaguar (Animal)", 0.0, -1), ("Tiger", 0.1, 0)]),
            ("train", "aa03"): (data["aa03"], [("Jaguar (Animal)", 0.3, 0)]),
        }
        assert rejects.columns == REJECTS_SCHEMA.fieldNames()
        (reject,) = rejects.collect()
        placed = sum(len(r.boxes) for r in images.collect())
        assert placed + rejects.count() == boxes.count() == 4
    assert (reject.ImageID, reject.Subset, reject.LabelName, reject.XMin, reject.reason) == (
        "bb01", "validation", JAGUAR, 0.39166668, MISSING_IMAGE,
    )
    assert reject.detail.startswith("no image file bb01.jpg (any case) in data.images_dirs")
    assert f"{root}/images/{{subset}}" in reject.detail and reject.detail.endswith("validation")


def test_candidate_image_paths_cover_subset_shard_and_flat_folders_in_order():
    folders = ["/oid/{subset}", "/oid/{subset}_{shard}", "/oid"]
    paths = images.candidate_paths(folders, "train", "f00ba4")
    assert paths[0] == "/oid/train/f00ba4.jpg"
    assert [p for p in paths if p.endswith("/f00ba4.jpg")] == ["/oid/train/f00ba4.jpg", "/oid/train_f/f00ba4.jpg", "/oid/f00ba4.jpg"]
    assert "/oid/train/F00BA4.JPG" in paths


@pytest.mark.parametrize("layout", ["flat", "tar_shards"])
def test_needed_images_are_found_in_flat_and_tar_shard_folders_without_listing(spark, oid, make_cfg, layout):
    moved = oid / "moved"
    for subset in ("train", "validation"):
        for path in (oid / "images" / subset).iterdir():
            folder = moved if layout == "flat" else moved / f"{subset}_{path.stem[0].lower()}"
            folder.mkdir(parents=True, exist_ok=True)
            path.rename(folder / path.name)
    dirs = f"data.images_dirs=['{moved}/{{subset}}','{moved}/{{subset}}_{{shard}}','{moved}']"
    cfg = config(make_cfg, oid, f"data.images_path={moved}", dirs)
    _, boxes = load(spark, cfg)
    with selection.attach_images(spark, boxes, cfg.data, cfg.preprocess.images_per_task) as (found, rejects):
        assert sorted(r.ImageID for r in found.collect()) == ["aa01", "aa03"]
        assert [(r.ImageID, r.reason) for r in rejects.collect()] == [("bb01", MISSING_IMAGE)]


def test_parquet_and_dir_image_sources_give_the_same_result(spark, oid, make_cfg):
    results = []
    for overrides in ([], ["data.images_format=parquet", f"data.images_path={oid / 'images.parquet'}"]):
        cfg = config(make_cfg, oid, *overrides)
        _, boxes = load(spark, cfg)
        with selection.attach_images(spark, boxes, cfg.data, cfg.preprocess.images_per_task) as (images, rejects):
            results.append((images_as_rows(images), [(r.ImageID, r.reason) for r in rejects.collect()]))
    assert results[0] == results[1]
    assert len(results[0][0]) == 2 and results[0][1] == [("bb01", MISSING_IMAGE)]


def test_a_parquet_without_subset_matches_by_image_id(spark, oid, make_cfg):
    table = pq.read_table(oid / "images.parquet").drop(["Subset"])
    pq.write_table(table, oid / "ids_only.parquet")
    cfg = config(make_cfg, oid, "data.images_format=parquet", f"data.images_path={oid / 'ids_only.parquet'}")
    _, boxes = load(spark, cfg)
    with selection.attach_images(spark, boxes, cfg.data, cfg.preprocess.images_per_task) as (images, rejects):
        assert sorted((r.Subset, r.ImageID) for r in images.collect()) == [("train", "aa01"), ("train", "aa03")]
        assert rejects.count() == 1


def test_the_same_image_in_two_name_variants_is_read_from_the_first_candidate(spark, oid, make_cfg):
    (oid / "images" / "train" / "aa03.JPEG").write_bytes(jpeg((1, 2, 3)))
    cfg = config(make_cfg, oid)
    _, boxes = load(spark, cfg)
    with selection.attach_images(spark, boxes, cfg.data, cfg.preprocess.images_per_task) as (images, _):
        data = {r.ImageID: image_bytes(r.Data, r.path) for r in images.collect()}
    assert data["aa03"] == (oid / "images" / "train" / "aa03.jpg").read_bytes()


def test_the_same_image_twice_in_a_parquet_is_an_error(spark, oid, make_cfg):
    table = pq.read_table(oid / "images.parquet")
    pq.write_table(pa.concat_tables([table, table]), oid / "twice.parquet")
    cfg = config(make_cfg, oid, "data.images_format=parquet", f"data.images_path={oid / 'twice.parquet'}")
    _, boxes = load(spark, cfg)
    with pytest.raises(ValueError, match="more than once.*train/aa0"):
        with selection.attach_images(spark, boxes, cfg.data, cfg.preprocess.images_per_task):
            pass


def test_a_parquet_without_data_is_an_error_naming_it(spark, oid, make_cfg):
    path = oid / "no_data.parquet"
    pq.write_table(pa.table({"ImageID": ["aa01"]}), path)
    cfg = config(make_cfg, oid, "data.images_format=parquet", f"data.images_path={path}")
    _, boxes = load(spark, cfg)
    with pytest.raises(Exception, match=re.escape(f"{path}: missing column(s) ['Data']")):  # raised in the task that reads it
        with selection.attach_images(spark, boxes, cfg.data, cfg.preprocess.images_per_task):
            pass


def test_many_needed_image_files_are_looked_up_in_a_few_tasks_per_core(spark, oid, make_cfg):
    """Spark looks up an explicit file list with one task per file (above 32 files);
    thousands of images made thousands of tasks before the lookup was capped."""
    ids = [f"cc{i:02d}" for i in range(40)]
    with open(oid / LABELS_FILE.format(subset="train"), "a") as labels, open(oid / BOXES_FILE.format(subset="train"), "a") as boxes:
        for i, image_id in enumerate(ids):
            (oid / "images" / "train" / f"{image_id}.jpg").write_bytes(jpeg((i, 100, 100)))
            labels.write(f"{image_id},verification,{TIGER},1\n")
            boxes.write(",".join(map(str, (image_id, "xclick", TIGER, 1, 0.1, 0.5, 0.2, 0.6, 0, 0, 0, 0, 0, *(0.5,) * 8))) + "\n")
    cfg = config(make_cfg, oid)
    _, selected_boxes = load(spark, cfg)
    tracker = spark.sparkContext.statusTracker()
    spark.sparkContext.setJobGroup("attach-many", "attach-many")
    try:
        with selection.attach_images(spark, selected_boxes, cfg.data, cfg.preprocess.images_per_task) as (images, _):
            assert images.count() == 2 + len(ids)
    finally:
        spark.sparkContext.setLocalProperty("spark.jobGroup.id", None)
    stages = [tracker.getStageInfo(s) for job in tracker.getJobIdsForGroup("attach-many") for s in tracker.getJobInfo(job).stageIds]
    most_tasks = max(stage.numTasks for stage in stages if stage is not None)
    assert most_tasks <= 4 * spark.sparkContext.defaultParallelism


def test_which_task_crops_an_image_depends_on_the_image_not_on_the_plan_that_found_it(spark):
    rows = [("train", f"im{i:02d}", f"/images/train/im{i:02d}.jpg") for i in range(30)]
    found = spark.createDataFrame(rows, "Subset string, ImageID string, path string")
    one_partition = found.coalesce(1)
    reordered = found.repartition(7).sortWithinPartitions("ImageID", ascending=False)

    def tasks_of(frame):
        parts = images.with_paths_only(frame, 3).rdd.glom().collect()
        return [sorted(row.ImageID for row in part) for part in parts]

    assert tasks_of(one_partition) == tasks_of(reordered)
    assert sum(map(len, tasks_of(one_partition))) == 30 and min(map(len, tasks_of(one_partition))) > 0


@pytest.mark.parametrize(
    ("found", "slots", "per_task", "tasks"),
    [(0, 2, 500, 2), (370, 2, 500, 2), (1000, 2, 500, 2), (1001, 2, 500, 4), (10_000, 8, 500, 24)],
)
def test_images_are_cut_in_whole_waves_over_the_slots_of_at_most_images_per_task(found, slots, per_task, tasks):
    assert images.image_tasks(found, slots, per_task) == tasks


# --------------------------------------------------------------------------- V6 file names

V6_NAMES = {
    "boxes": {"train": "oidv6-train-annotations-bbox.csv", "validation": "validation-annotations-bbox.csv"},
    "labels": {
        "train": "oidv6-train-annotations-human-imagelabels.csv",
        "validation": "validation-annotations-human-imagelabels.csv",
    },
}


def rename_to_v6(root: Path) -> None:
    """The V6 download's own names (train boxes keep their XClick columns)."""
    for subset in ("train", "validation"):
        (root / BOXES_FILE.format(subset=subset)).rename(root / V6_NAMES["boxes"][subset])
        (root / LABELS_FILE.format(subset=subset)).rename(root / V6_NAMES["labels"][subset])
    (root / "oidv6-class-descriptions.csv").write_text(
        "LabelName,DisplayName\n/m/011k07,Tortoise\n"
        f"{TIGER},Tiger\n{JAGUAR},Jaguar (Animal)\n{CAT},Cat\n/m/0dv5r,\"Camera, digital\"\n"
    )


def test_data_oid_reads_the_v6_download_as_it_is_named(spark, oid, make_cfg):
    from bigcat_ml.oid.classes import load_selected_classes

    rename_to_v6(oid)
    cfg = config(make_cfg, oid, "data=oid", "classes.names=[Tiger,'Jaguar (Animal)']", "classes.descendants_of=[]")
    selected = load_selected_classes(spark, cfg.data, cfg.classes)
    assert sorted(selected["LabelName"]) == sorted([TIGER, JAGUAR])
    _, boxes = load(spark, cfg)
    assert box_keys(boxes) == [
        ("train", "aa01", "Jaguar (Animal)", "xclick"),
        ("train", "aa01", "Tiger", "xclick"),
        ("train", "aa03", "Jaguar (Animal)", "activemil"),
        ("validation", "bb01", "Jaguar (Animal)", "xclick"),
    ]


def test_class_descriptions_with_a_header_row_load_without_it(spark, oid):
    from bigcat_ml.oid.classes import read_class_descriptions

    rename_to_v6(oid)
    table = read_class_descriptions(spark, str(oid / "oidv6-class-descriptions.csv"))
    assert len(table) == 5 and "LabelName" not in set(table["LabelName"])
    assert table.set_index("LabelName").loc["/m/0dv5r", "DisplayName"] == "Camera, digital"


def test_v6_names_are_preferred_and_a_missing_file_lists_every_name_tried(tmp_path):
    from bigcat_ml.oid import files

    (tmp_path / "oidv6-train-annotations-bbox.csv").write_text("x")
    (tmp_path / "train-annotations-bbox.csv").write_text("x")
    per_subset = {s: files.candidates("boxes", str(tmp_path), s) for s in ("train", "test")}
    assert readers.subset_files(per_subset, ["train"], "boxes") == {"train": str(tmp_path / "oidv6-train-annotations-bbox.csv")}
    with pytest.raises(FileNotFoundError, match=re.escape(f"no boxes (test) file found; tried ['{tmp_path}/oidv6-test-annotations-bbox.csv', '{tmp_path}/test-annotations-bbox.csv']")):
        readers.subset_files(per_subset, ["test"], "boxes")
