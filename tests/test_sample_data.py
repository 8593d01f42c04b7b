"""The Open Images V6-format sample generator: formats, ground truth, faults, looks, reuse."""
from __future__ import annotations

import dataclasses

import io
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Set, Tuple

import cv2
import mlflow
import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf
from PIL import Image, ImageOps

from bigcat_ml.stepkit.step import compose
from bigcat_ml.config.schema import SampleConfig
from bigcat_ml.synthetic import catalogue, ground_truth, plan, render, write
from bigcat_ml.oid.schemas import (
    BOX_COLUMNS,
    BOX_FLAGS,
    CLASS_DESCRIPTION_COLUMNS,
    IMAGE_BYTES_COLUMNS,
    IMAGE_LABEL_COLUMNS,
    SUBSETS,
)
from bigcat_ml.sample_data import run
from helpers.oid_metadata import REAL_HIERARCHY

REAL_BIG_CAT_MIDS = {
    "Tiger": "/m/07dm6",
    "Lion": "/m/096mb",
    "Cheetah": "/m/0cd4d",
    "Leopard": "/m/0c29q",
    "Jaguar (Animal)": "/m/0449p",
    "Lynx": "/m/04g2r",
}
ENTITY, ANIMAL, MAMMAL, CARNIVORE = "/m/0bl9f", "/m/0jbk", "/m/04rky", "/m/01lrl"


def sample_config(**changes) -> SampleConfig:
    """The configured sample (conf/data/sample.yaml) with ``changes``."""
    configured = OmegaConf.to_object(compose([]).data.sample)
    return dataclasses.replace(configured, **changes)


SMALL = sample_config(seed=0, images_per_subset={"train": 12, "validation": 6, "test": 6}, corrupt_images=2)


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Tuple[Path, dict]:
    root = tmp_path_factory.mktemp("oid") / "sample"
    return root, write.generate_sample(root, SMALL)


def read_boxes(root: Path, subset: str) -> pd.DataFrame:
    return pd.read_csv(root / write.BOXES_FILE.format(subset=subset))


def read_labels(root: Path, subset: str) -> pd.DataFrame:
    return pd.read_csv(root / write.IMAGE_LABELS_FILE.format(subset=subset))


def read_descriptions(root: Path) -> pd.DataFrame:
    return pd.read_csv(root / catalogue.CLASS_DESCRIPTIONS_FILE, header=None, names=list(CLASS_DESCRIPTION_COLUMNS))


def displayed(path: Path) -> Image.Image:
    return ImageOps.exif_transpose(Image.open(path))


def hierarchy_edges(node: dict) -> Set[Tuple[str, str, str]]:
    """(parent, "Subcategory"|"Part", child) for every edge under ``node``."""
    edges = set()
    for kind in ("Subcategory", "Part"):
        for child in node.get(kind, []):
            edges.add((node["LabelName"], kind, child["LabelName"]))
            edges |= hierarchy_edges(child)
    return edges


def good_images(root: Path, summary: dict):
    """(subset, ImageID, path) of every image that has a decodable file."""
    faulty = set(summary["corrupt_images"]) | set(summary["missing_images"])
    for subset in SUBSETS:
        for path in sorted((root / "images" / subset).glob("*.jpg")):
            if path.stem not in faulty:
                yield subset, path.stem, path


def test_files_parse_with_the_oid_columns_and_match_the_ground_truth_counts(generated):
    root, summary = generated
    for subset in SUBSETS:
        boxes, labels = read_boxes(root, subset), read_labels(root, subset)
        assert tuple(boxes.columns) == BOX_COLUMNS
        assert tuple(labels.columns) == IMAGE_LABEL_COLUMNS
        assert boxes.groupby("LabelName").size().to_dict() == summary["boxes"][subset]
        for kind, confidence in (("positive", 1), ("negative", 0)):
            picked = labels[labels.Confidence == confidence]
            assert picked.groupby("LabelName").size().to_dict() == summary["image_labels"][subset][kind]
        assert boxes.ImageID.nunique() == summary["images"][subset]
        assert set(labels.Source) <= {"verification", "crowdsource-verification"}
        assert set(boxes.Source) <= {"xclick", "activemil"}
        assert boxes.ImageID.is_monotonic_increasing
    assert list(read_descriptions(root).columns) == list(CLASS_DESCRIPTION_COLUMNS)
    assert sum(summary["images"].values()) == 24


def test_every_boxed_class_has_a_positive_label_and_negatives_are_absent_classes(generated):
    root, _ = generated
    for subset in SUBSETS:
        boxed = read_boxes(root, subset).groupby("ImageID").LabelName.apply(set)
        labels = read_labels(root, subset)
        positive = labels[labels.Confidence == 1].groupby("ImageID").LabelName.apply(set)
        negative = labels[labels.Confidence == 0].groupby("ImageID").LabelName.apply(set)
        assert positive.to_dict() == boxed.to_dict()
        for image_id, mids in negative.items():
            assert not mids & boxed[image_id]


def test_coordinates_are_float32_fractions_printed_like_oid(generated):
    root, _ = generated
    lines = (root / write.BOXES_FILE.format(subset="train")).read_text().splitlines()[1:]
    coordinates = [value for line in lines for value in line.split(",")[4:8]]
    assert all(value in ("0", "1") or (value.startswith("0.") and len(value) <= 12) for value in coordinates)
    assert all(np.float32(value) == np.float32(float(value)) for value in coordinates)
    assert {line.split(",")[3] for line in lines} == {"1"}


def test_boxes_are_valid_and_at_least_24_pixels_in_the_displayed_image(generated):
    root, summary = generated
    sizes = {image_id: displayed(path).size for _, image_id, path in good_images(root, summary)}
    checked = 0
    for subset in SUBSETS:
        boxes = read_boxes(root, subset)
        assert ((0 <= boxes.XMin) & (boxes.XMin < boxes.XMax) & (boxes.XMax <= 1)).all()
        assert ((0 <= boxes.YMin) & (boxes.YMin < boxes.YMax) & (boxes.YMax <= 1)).all()
        assert boxes[list(BOX_FLAGS)].isin([-1, 0, 1]).all().all()
        for row in boxes[boxes.ImageID.isin(sizes)].itertuples():
            width, height = sizes[row.ImageID]
            assert round((row.XMax - row.XMin) * width) >= plan.MIN_BOX_SIDE
            assert round((row.YMax - row.YMin) * height) >= plan.MIN_BOX_SIDE
            checked += 1
    assert checked > 24


def test_some_box_flags_are_unknown_and_truncated_boxes_touch_the_border(generated):
    root, _ = generated
    boxes = pd.concat([read_boxes(root, s) for s in SUBSETS])
    assert (boxes[list(BOX_FLAGS)] == -1).any().any()
    truncated = boxes[boxes.IsTruncated == 1]
    assert len(truncated) > 0
    touches = (truncated.XMin == 0) | (truncated.YMin == 0) | (truncated.XMax == 1) | (truncated.YMax == 1)
    assert touches.all()
    assert boxes.groupby("ImageID").size().max() > 1


def test_every_mid_is_described_and_in_the_hierarchy(generated):
    root, _ = generated
    described = set(read_descriptions(root).LabelName)
    hierarchy = json.loads((root / catalogue.HIERARCHY_FILE).read_text())
    in_hierarchy = {child for _, _, child in hierarchy_edges(hierarchy)}
    used = set()
    for subset in SUBSETS:
        used |= set(read_boxes(root, subset).LabelName) | set(read_labels(root, subset).LabelName)
    assert used <= described
    assert used <= in_hierarchy
    assert hierarchy["LabelName"] == ENTITY
    assert ENTITY not in described


def test_big_cats_carry_their_real_mids_and_display_names(generated):
    root, _ = generated
    descriptions = read_descriptions(root)
    by_name = dict(zip(descriptions.DisplayName, descriptions.LabelName))
    assert {name: by_name[name] for name in REAL_BIG_CAT_MIDS} == REAL_BIG_CAT_MIDS
    assert "/m/0449p,Jaguar (Animal)\n" in (root / catalogue.CLASS_DESCRIPTIONS_FILE).read_text()


def test_embedded_hierarchy_is_a_pruned_copy_of_the_real_one():
    pruned = json.loads(catalogue.sample_hierarchy_bytes())
    real = json.loads(REAL_HIERARCHY.read_text())
    edges = hierarchy_edges(pruned)
    assert edges <= hierarchy_edges(real)
    assert pruned["LabelName"] == real["LabelName"] == ENTITY
    assert any(kind == "Part" for _, kind, _ in edges)
    parents = Counter(child for _, _, child in edges)
    assert max(parents.values()) >= 2
    path = [(ENTITY, ANIMAL), (ANIMAL, MAMMAL), (MAMMAL, CARNIVORE)]
    cats = [(CARNIVORE, mid) for mid in (*REAL_BIG_CAT_MIDS.values(), "/m/01yrx", "/m/0bt9lr", "/m/0306r", "/m/01dws")]
    assert {(p, "Subcategory", c) for p, c in path + cats} <= edges
    assert (MAMMAL, "Subcategory", "/m/03k3r") in edges  # Horse


def test_every_class_in_the_embedded_hierarchy_is_described():
    hierarchy = json.loads(catalogue.sample_hierarchy_bytes())
    mids = {child for _, _, child in hierarchy_edges(hierarchy)}
    assert mids == set(catalogue.class_descriptions().values())
    assert set(catalogue.BOX_CLASSES) <= set(catalogue.class_descriptions())


def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path, generated):
    root, _ = generated
    again = tmp_path / "again"
    write.generate_sample(again, SMALL)
    written = sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file() and p.name != write.IMAGES_PARQUET)
    assert written == sorted(
        p.relative_to(again) for p in again.rglob("*") if p.is_file() and p.name != write.IMAGES_PARQUET
    )
    for relative in written:
        assert (root / relative).read_bytes() == (again / relative).read_bytes(), relative
    other = tmp_path / "other"
    write.generate_sample(other, dataclasses.replace(SMALL, seed=1))
    name = write.BOXES_FILE.format(subset="train")
    assert (other / name).read_bytes() != (root / name).read_bytes()


def test_parquet_and_image_folder_hold_the_same_bytes_per_image(generated):
    root, summary = generated
    table = pd.read_parquet(root / write.IMAGES_PARQUET)
    assert tuple(table.columns) == IMAGE_BYTES_COLUMNS
    assert table.ImageID.is_unique
    files = {path.stem: (path.parent.name, path.read_bytes()) for path in (root / "images").glob("*/*.jpg")}
    assert {row.ImageID: (row.Subset, row.Data) for row in table.itertuples()} == files
    assert table.groupby("Subset").size().to_dict() == {k: v for k, v in summary["image_files"].items() if v}


def test_corrupt_images_fail_to_decode_and_missing_images_have_annotations_but_no_bytes(generated):
    root, summary = generated
    table = pd.read_parquet(root / write.IMAGES_PARQUET).set_index("ImageID")
    boxed = set(pd.concat([read_boxes(root, s) for s in SUBSETS]).ImageID)
    assert len(summary["corrupt_images"]) == 2 and len(summary["missing_images"]) == 1
    for image_id in summary["corrupt_images"]:
        data = table.loc[image_id, "Data"]
        with pytest.raises(OSError):
            Image.open(io.BytesIO(data)).load()
        assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) is None
    for image_id in summary["missing_images"]:
        assert image_id in boxed
        assert image_id not in table.index
        assert not list((root / "images").glob(f"*/{image_id}.jpg"))


def test_expected_chips_are_the_boxes_on_decodable_images(generated):
    root, summary = generated
    faulty = set(summary["corrupt_images"]) | set(summary["missing_images"])
    for subset in SUBSETS:
        boxes = read_boxes(root, subset)
        counted = boxes[~boxes.ImageID.isin(faulty)].groupby("LabelName").size().to_dict()
        assert ground_truth.expected_chip_counts(summary)[subset] == counted
    lost = sum(sum(c.values()) for by_subset in summary["faulty_boxes"].values() for c in by_subset.values())
    all_boxes = pd.concat([read_boxes(root, s) for s in SUBSETS])
    assert lost == all_boxes.ImageID.isin(faulty).sum() > 0


def test_grayscale_cmyk_exif_rotated_portrait_and_landscape_images_exist(generated):
    root, summary = generated
    modes = {image_id: Image.open(path).mode for _, image_id, path in good_images(root, summary)}
    assert summary["grayscale"] and all(modes[i] == "L" for i in summary["grayscale"])
    assert summary["cmyk"] and all(modes[i] == "CMYK" for i in summary["cmyk"])
    assert set(summary["exif_orientation"].values()) == {6, 8}
    for subset, image_id, path in good_images(root, summary):
        stored = Image.open(path)
        orientation = stored.getexif().get(render.EXIF_ORIENTATION_TAG, 1)
        assert orientation == summary["exif_orientation"].get(image_id, 1)
        if orientation != 1:
            assert displayed(path).size == stored.size[::-1]
    shapes = {np.sign(w - h) for w, h in (displayed(p).size for _, _, p in good_images(root, summary))}
    assert {-1, 1} <= shapes


def test_each_box_shows_its_class_pattern_once_exif_orientation_is_applied(generated):
    root, summary = generated
    descriptions = read_descriptions(root)
    names = dict(zip(descriptions.LabelName, descriptions.DisplayName))
    signatures = {name: catalogue.class_signature(name) for name in catalogue.BOX_CLASSES}
    boxes = pd.concat([read_boxes(root, s) for s in SUBSETS]).set_index("ImageID")
    checked_rotated = 0
    for _, image_id, path in good_images(root, summary):
        if image_id in summary["grayscale"]:
            continue
        pixels = np.asarray(displayed(path).convert("RGB"), float)
        height, width = pixels.shape[:2]
        for row in boxes.loc[[image_id]].itertuples():
            if row.IsOccluded:
                continue
            x0, x1 = row.XMin * width, row.XMax * width
            y0, y1 = row.YMin * height, row.YMax * height
            dx, dy = (x1 - x0) * 0.2, (y1 - y0) * 0.2
            crop = pixels[round(y0 + dy) : round(y1 - dy), round(x0 + dx) : round(x1 - dx)]
            mean = crop.reshape(-1, 3).mean(axis=0)
            nearest = min(signatures, key=lambda name: np.linalg.norm(signatures[name] - mean))
            assert nearest == names[row.LabelName], (image_id, row)
            checked_rotated += image_id in summary["exif_orientation"]
    assert checked_rotated > 0


def test_an_up_to_date_sample_is_kept_and_a_changed_config_regenerates(tmp_path, caplog):
    root = tmp_path / "sample"
    tiny = sample_config(images_per_subset={"train": 3, "validation": 1, "test": 1})
    first = write.generate_sample(root, tiny)
    stamp = (root / ground_truth.GROUND_TRUTH_FILE).stat().st_mtime_ns
    caplog.set_level("INFO", logger="bigcat_ml.synthetic.write")
    assert write.generate_sample(root, tiny) == first
    assert "not regenerating" in caplog.text
    assert (root / ground_truth.GROUND_TRUTH_FILE).stat().st_mtime_ns == stamp
    changed = write.generate_sample(root, dataclasses.replace(tiny, seed=5))
    assert changed["fingerprint"] != first["fingerprint"]
    assert ground_truth.read_ground_truth(root) == changed
    assert {p.stem for p in (root / "images").glob("*/*.jpg")}.isdisjoint(first["corrupt_images"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sample"]
    assert not [p for p in root.iterdir() if p.name.startswith(".")]


def test_an_images_folder_outside_the_root_is_replaced_with_the_sample_and_nothing_is_left_beside_them(tmp_path):
    root, images = tmp_path / "sample", tmp_path / "elsewhere" / "images"
    tiny = sample_config(images_per_subset={"train": 3, "validation": 1, "test": 1})
    first = write.generate_sample(root, tiny, images)
    changed = write.generate_sample(root, dataclasses.replace(tiny, seed=5), images)
    assert write.sample_in_place(root, images) == changed != first
    written = {p.stem for p in images.glob("*/*.jpg")}
    assert written.isdisjoint(first["corrupt_images"]) and set(changed["corrupt_images"]) <= written
    assert not (root / "images").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere", "sample"]
    assert sorted(p.name for p in images.parent.iterdir()) == ["images"]


def test_a_failed_generation_leaves_the_previous_sample_untouched(tmp_path, monkeypatch):
    root = tmp_path / "sample"
    tiny = sample_config(images_per_subset={"train": 3, "validation": 1, "test": 1})
    before = write.generate_sample(root, tiny)
    calls = []

    def failing_encoder(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("disk full")
        return real_encoder(*args, **kwargs)

    real_encoder = render.encode_jpeg
    monkeypatch.setattr(render, "encode_jpeg", failing_encoder)
    with pytest.raises(RuntimeError, match="disk full"):
        write.generate_sample(root, dataclasses.replace(tiny, seed=9))
    assert ground_truth.read_ground_truth(root) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sample"]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"min_image_side": 20}, "min_image_side=20"),
        ({"images_per_subset": {"train": 2, "holdout": 1}}, "holdout"),
        ({"images_per_subset": {"train": 1}, "corrupt_images": 1, "missing_images": 1}, "corrupt_images"),
    ],
)
def test_a_config_that_cannot_give_a_valid_sample_is_refused_by_name(tmp_path, change, message):
    with pytest.raises(ValueError, match=message):
        write.generate_sample(tmp_path / "sample", sample_config(**change))
    assert not (tmp_path / "sample").exists()


def test_the_real_oid_data_group_is_refused(tmp_path):
    # compose, not make_cfg: make_cfg sets data.sample.* keys that data=oid does not have.
    cfg = compose([f"paths.output_dir={tmp_path}", "data=oid"])
    with pytest.raises(ValueError, match="only generates the sample data group"):
        run(cfg)
    assert not (tmp_path / "mlflow").exists()


def test_entry_point_writes_the_sample_and_logs_an_mlflow_run(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "bigcat_ml.sample_data",
            f"paths.output_dir={tmp_path}",
            "data.sample.images_per_subset={train:4,validation:2,test:2}",
        ],
        check=True,
        env=env,
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
    )
    summary = ground_truth.read_ground_truth(tmp_path / "data" / "sample")
    assert summary["images"] == {"train": 4, "validation": 2, "test": 2}
    # A client, not mlflow.set_tracking_uri: that also sets MLFLOW_TRACKING_URI for later tests.
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow/mlflow.db")
    experiment = client.get_experiment_by_name("bigcat_ml")
    runs = client.search_runs([experiment.experiment_id], filter_string="tags.`bigcat.step` = 'sample_data'")
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    assert runs[0].data.metrics["images.train"] == 4
    assert runs[0].data.metrics["boxes.train"] == sum(summary["boxes"]["train"].values())
    logged = mlflow.artifacts.load_dict(f"{runs[0].info.artifact_uri}/{ground_truth.GROUND_TRUTH_FILE}")
    assert logged == summary


@pytest.mark.spark
def test_spark_reads_the_sample_with_the_oid_schemas(spark, generated):
    from bigcat_ml.oid.schemas import BOXES_SCHEMA, IMAGE_BYTES_SCHEMA

    root, summary = generated
    boxes = spark.read.csv(
        str(root / write.BOXES_FILE.format(subset="train")), schema=BOXES_SCHEMA, header=True, mode="FAILFAST"
    )
    assert boxes.count() == sum(summary["boxes"]["train"].values())
    assert boxes.where("XMin IS NULL OR IsOccluded IS NULL").count() == 0
    images = spark.read.schema(IMAGE_BYTES_SCHEMA).parquet(str(root / write.IMAGES_PARQUET))
    assert images.count() == sum(summary["image_files"].values())
