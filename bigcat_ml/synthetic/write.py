"""Write the sample's files as the public download lays them out, atomically.

Same config, same bytes: CSVs, JSON and images depend only on the sample config.
Everything is written aside and published whole by :mod:`bigcat_ml.storage.publish`
(the chip dataset's protocol), so a sample whose ground truth is present is complete.
"""
from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bigcat_ml.oid.rejects import DECODE_ERROR, MISSING_IMAGE
from bigcat_ml.runtime.progress import progress
from bigcat_ml.storage import publish
from bigcat_ml.oid import files
from bigcat_ml.oid.schemas import BOX_COLUMNS, BOX_FLAGS, IMAGE_BYTES_COLUMNS, IMAGE_LABEL_COLUMNS, SUBSETS
from bigcat_ml.synthetic import render
from bigcat_ml.synthetic.catalogue import (
    CLASS_DESCRIPTIONS_FILE, HIERARCHY_FILE, class_descriptions, resource_bytes, sample_hierarchy_bytes,
)
from bigcat_ml.synthetic.ground_truth import GROUND_TRUTH_FILE, read_ground_truth, summarize
from bigcat_ml.synthetic.plan import PlannedImage, plan_sample, sample_params

log = logging.getLogger(__name__)

# The names every Open Images release uses, from the module that backs conf/data's defaults.
IMAGE_LABELS_FILE = files.SAMPLE_NAMES["image_labels"]
BOXES_FILE = files.SAMPLE_NAMES["boxes"]
IMAGES_PARQUET = files.IMAGES_PARQUET


# Bump when the generator's output changes for the same config, so that a sample made
# by older code is regenerated instead of reused.
FORMAT_VERSION = 1


def config_fingerprint(sample_cfg: Any) -> str:
    """A hash of the sample's config and :data:`FORMAT_VERSION`: equal means same sample."""
    payload = json.dumps({"config": sample_params(sample_cfg), "format": FORMAT_VERSION}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()



def _fraction(pixels: int, size: int) -> str:
    """A coordinate as the public files print it: float32, shortest repr, ``0``/``1`` bare."""
    return np.format_float_positional(np.float32(pixels / size), trim="-")


def _box_rows(images: Sequence[PlannedImage]) -> Iterator[List[Any]]:
    for image in images:
        for box in image.boxes:
            mid = class_descriptions()[box.label]
            coords = [_fraction(box.x0, image.width), _fraction(box.x1, image.width),
                      _fraction(box.y0, image.height), _fraction(box.y1, image.height)]
            yield [image.image_id, box.source, mid, 1, *coords, *(box.flags[c] for c in BOX_FLAGS)]


def _label_rows(images: Sequence[PlannedImage]) -> Iterator[List[Any]]:
    for image in images:
        for source, name, confidence in image.labels:
            yield [image.image_id, source, class_descriptions()[name], confidence]


def _write_csv(path: Path, header: Optional[Sequence[str]], rows: Iterator[List[Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        if header:
            writer.writerow(header)
        writer.writerows(rows)


def _write_annotations(staging: Path, images: Sequence[PlannedImage]) -> None:
    """The metadata files and, per subset, the box and image-label CSVs sorted by ImageID."""
    (staging / CLASS_DESCRIPTIONS_FILE).write_bytes(resource_bytes(CLASS_DESCRIPTIONS_FILE))
    (staging / HIERARCHY_FILE).write_bytes(sample_hierarchy_bytes())
    for subset in SUBSETS:
        rows = sorted((im for im in images if im.subset == subset), key=lambda im: im.image_id)
        _write_csv(staging / BOXES_FILE.format(subset=subset), BOX_COLUMNS, _box_rows(rows))
        _write_csv(staging / IMAGE_LABELS_FILE.format(subset=subset), IMAGE_LABEL_COLUMNS, _label_rows(rows))


def _write_images(
    rng: np.random.Generator, images: Sequence[PlannedImage], quality: int, images_dir: Path, parquet: Path
) -> None:
    """``<images_dir>/<subset>/<ImageID>.jpg`` and the Parquet of the very same bytes."""
    images_dir.mkdir(parents=True, exist_ok=True)
    rows: Dict[str, List[Any]] = {c: [] for c in IMAGE_BYTES_COLUMNS}
    corrupted = 0
    with progress("write sample images", len(images), "image") as done:
        for image in images:
            done.update()
            if image.fault == MISSING_IMAGE:
                continue
            data = render.encode_jpeg(render.render_displayed(rng, image), image.mode, image.orientation, quality)
            if image.fault == DECODE_ERROR:
                data, corrupted = render.corrupt(rng, data, corrupted), corrupted + 1
            (images_dir / image.subset).mkdir(parents=True, exist_ok=True)
            (images_dir / image.subset / f"{image.image_id}.jpg").write_bytes(data)
            for column, value in zip(IMAGE_BYTES_COLUMNS, (image.image_id, image.subset, data)):
                rows[column].append(value)
    image_id, subset, data = IMAGE_BYTES_COLUMNS
    schema = pa.schema(
        [pa.field(image_id, pa.string(), nullable=False), (subset, pa.string()), (data, pa.binary())]
    )
    pq.write_table(pa.table(rows, schema=schema), parquet)



def generate_sample(
    root: Path, sample_cfg: Any, images_path: Optional[Path] = None, force: bool = False
) -> Dict[str, Any]:
    """Write the sample into ``root`` (images under ``images_path``, default ``root/images``)
    and return its ground truth, also written to ``root/ground_truth.json``.

    Same config, same bytes: CSVs, JSON and images depend only on ``sample_cfg``. When
    ``root`` already holds the sample of this config (same fingerprint) it is kept as is
    unless ``force``. ``root`` is the sample's own folder: everything is written into a
    staging folder beside it that replaces it whole, in one step
    (:func:`bigcat_ml.storage.publish.staged`), so a failed run leaves the previous sample
    untouched. An ``images_path`` outside ``root`` is published the same way just before
    ``root``, once the previous ground truth is gone: a sample whose ground truth is
    present is complete.
    """
    root = Path(root)
    images_dir = Path(images_path) if images_path else root / "images"
    if images_dir.resolve() in (root.resolve(), *root.resolve().parents):
        raise ValueError(
            f"images_path {images_dir} must not be data.root {root} or above it: it is replaced whole"
        )
    params = sample_params(sample_cfg)
    fingerprint = config_fingerprint(sample_cfg)
    existing = sample_in_place(root, images_dir)
    if existing is not None and not force and existing.get("fingerprint") == fingerprint:
        log.info("%s holds the sample of this config (%s): not regenerating", root, fingerprint[:12])
        return existing
    log.info("generating the sample in %s (images in %s)", root, images_dir)
    images = plan_sample(params)
    summary = summarize(images, params, fingerprint)
    inside = images_dir.resolve().is_relative_to(root.resolve())
    with contextlib.ExitStack() as published:  # left in reverse: images_path, then data.root
        staging = Path(_staged(published, root, "data.root"))
        images_staging = staging / images_dir.resolve().relative_to(root.resolve()) if inside else Path(
            _staged(published, images_dir, "data.images_path")
        )
        _write_annotations(staging, images)
        pixels_rng = np.random.default_rng([params["seed"], 1])  # own stream: plan and pixels stay apart
        quality = params["jpeg_quality"]
        _write_images(pixels_rng, images, quality, images_staging, staging / IMAGES_PARQUET)
        (staging / GROUND_TRUTH_FILE).write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
        if not inside:  # the old ground truth must not vouch for the new images published before it
            (root / GROUND_TRUTH_FILE).unlink(missing_ok=True)
    boxes = {s: sum(c.values()) for s, c in summary["boxes"].items()}
    log.info("sample written: %s images, %s boxes", summary["images"], boxes)
    return summary


def sample_in_place(root: Path, images_path: Optional[Path] = None) -> Optional[Dict[str, Any]]:
    """The ground truth of the complete sample in ``root`` (images under ``images_path``,
    default ``root/images``), or None when there is none or it is incomplete."""
    existing = read_ground_truth(root)
    images_dir = Path(images_path) if images_path else Path(root) / "images"
    complete = existing is not None and images_dir.is_dir() and (Path(root) / IMAGES_PARQUET).is_file()
    return existing if complete else None


def _staged(published: contextlib.ExitStack, folder: Path, setting: str) -> str:
    """A staging folder that :mod:`bigcat_ml.storage.publish` replaces ``folder`` with, whole
    and in one step, when ``published`` closes without an error (and deletes otherwise)."""
    publish.sweep_leftovers(str(folder))
    return published.enter_context(publish.staged(str(folder), True, setting, "force"))
