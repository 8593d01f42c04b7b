"""Every box row of a selected class is accounted for: a chip, or a reject with a reason,
from the raw rows of the files to the published summary."""
from __future__ import annotations

import io
import shutil
from importlib import resources
from pathlib import Path
from typing import List, Sequence

import pandas as pd
import pytest
from PIL import Image

from bigcat_ml.chips.build import build_chip_dataset
from bigcat_ml.chips.layout import CHIPS_DIR, REJECTS_DIR
from bigcat_ml.oid.rejects import DUPLICATE_BOX, IMAGE_LABEL_FILTER
from bigcat_ml.oid.schemas import BOX_COLUMNS, IMAGE_LABEL_COLUMNS

pytestmark = pytest.mark.spark

TIGER, JAGUAR = "/m/07dm6", "/m/0449p"
LABELS = [
    ("cc01", "verification", TIGER, 1),
    ("cc01", "verification", JAGUAR, 0),  # Jaguar verified absent on cc01
    ("cc02", "verification", TIGER, 0),  # no positive label on cc02 at all
    ("cc03", "verification", JAGUAR, 1),
]
BOX = (0.1, 0.9, 0.1, 0.9, 0, 0, 0, 0, 0)
BOXES = [
    ("cc01", "xclick", TIGER, 1, *BOX),  # chip
    ("cc01", "xclick", JAGUAR, 1, 0.2, 0.8, 0.2, 0.8, 0, 0, 0, 0, 0),  # its class is verified absent here
    ("cc02", "xclick", TIGER, 1, *BOX),  # its image has no positive label
    ("cc03", "xclick", f" {JAGUAR}", 1, *BOX),  # a MID with a stray space: still a Jaguar, a chip
    ("cc03", "xclick", JAGUAR, 1, 0.3, 0.7, 0.3, 0.7, 0, 0, 0, 0, 0),  # chip
    ("cc03", "activemil", JAGUAR, 1, 0.3, 0.7, 0.3, 0.7, 0, 0, 0, 0, 0),  # the same box again: a duplicate
]


def _write_csv(path: Path, header: Sequence[str], rows: List[Sequence]) -> None:
    path.write_text("\n".join([",".join(header), *(",".join(str(v) for v in row) for row in rows)]) + "\n")


def write_oid(root: Path, boxes: List[Sequence]) -> None:
    """A one-subset Open Images layout: metadata, image labels, boxes and 64x48 images."""
    root.mkdir(parents=True)
    for name in ("class-descriptions-boxable.csv", "bbox_labels_600_hierarchy.json"):
        with resources.as_file(resources.files("bigcat_ml.synthetic").joinpath(f"resources/{name}")) as source:
            shutil.copy(source, root / name)
    _write_csv(root / "train-annotations-human-imagelabels-boxable.csv", IMAGE_LABEL_COLUMNS, LABELS)
    _write_csv(root / "train-annotations-bbox.csv", BOX_COLUMNS, boxes)
    (root / "images" / "train").mkdir(parents=True)
    for image_id in sorted({row[0] for row in boxes}):
        buffer = io.BytesIO()
        Image.new("RGB", (64, 48), (180, 120, 40)).save(buffer, format="JPEG")
        (root / "images" / "train" / f"{image_id}.jpg").write_bytes(buffer.getvalue())


def cfg_for(make_cfg, root: Path):
    return make_cfg([f"data.root={root}", "data.subsets=[train]", "data.sample=null", "data.name=crafted"])


def test_the_summary_reconciles_from_the_raw_box_rows_of_the_selected_classes(spark, make_cfg, tmp_path):
    root = tmp_path / "oid"
    write_oid(root, BOXES)
    cfg = cfg_for(make_cfg, root)

    summary = build_chip_dataset(spark, cfg.data, cfg.classes, cfg.preprocess, reuse_check=cfg.reuse_check).summary

    output = Path(cfg.preprocess.output)
    chips = pd.read_parquet(output / CHIPS_DIR)
    rejects = pd.read_parquet(output / REJECTS_DIR)
    assert summary["selected_boxes"] == len(BOXES) == summary["chips"] + summary["rejects"]
    assert summary["rejects_by_reason"] == {DUPLICATE_BOX: 1, IMAGE_LABEL_FILTER: 2}
    assert sorted(zip(chips["ImageID"], chips["LabelName"], chips["XMin"])) == [
        ("cc01", TIGER, pytest.approx(0.1)),
        ("cc03", JAGUAR, pytest.approx(0.1)),  # the trimmed MID
        ("cc03", JAGUAR, pytest.approx(0.3)),
    ]
    filtered = rejects[rejects["reason"] == IMAGE_LABEL_FILTER].set_index("ImageID")
    assert filtered.loc["cc01", "LabelName"] == JAGUAR and "verified absent" in filtered.loc["cc01", "detail"]
    assert filtered.loc["cc02", "LabelName"] == TIGER and "no positive image-level label" in filtered.loc["cc02", "detail"]
    duplicate = rejects[rejects["reason"] == DUPLICATE_BOX].iloc[0]
    assert (duplicate["ImageID"], duplicate["XMin"]) == ("cc03", pytest.approx(0.3))


def test_image_ids_that_collide_after_normalisation_are_an_error_naming_both(spark, make_cfg, tmp_path):
    root = tmp_path / "oid"
    write_oid(root, [*BOXES, ("CC01", "xclick", TIGER, 1, 0.5, 0.6, 0.5, 0.6, 0, 0, 0, 0, 0)])
    cfg = cfg_for(make_cfg, root)

    with pytest.raises(ValueError, match=r"train-annotations-bbox\.csv: 'CC01' and 'cc01'"):
        build_chip_dataset(spark, cfg.data, cfg.classes, cfg.preprocess, reuse_check=cfg.reuse_check)
