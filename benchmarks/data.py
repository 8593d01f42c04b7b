"""The benchmark's configuration and data: a generated sample, and multiples of it.

Everything is written under one work folder (default ``outputs/bench``, git-ignored).
A sample is regenerated only when its config changes (``generate_sample`` keeps a
matching one), so a second ``make bench`` skips the image rendering.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any, Dict, List, Optional

import pandas as pd

from bigcat_ml.stepkit.step import compose
from bigcat_ml.synthetic import catalogue, ground_truth, write
from bigcat_ml.oid.schemas import SUBSETS

from benchmarks.profiles import Profile

log = logging.getLogger(__name__)

# Carnivores: the six big cats plus Cat, Dog, Fox and Brown bear, about 70% of the
# sample's boxes, so a small sample still yields hundreds of chips.
CLASSES = "carnivores"
# Spark's own default for spark.sql.files.openCostInBytes; the project sets 128 KB
# (bigcat_ml.runtime.spark.get_spark) and the growth benchmark measures the difference.
SPARK_DEFAULT_OPEN_COST_BYTES = 4 * 1024 * 1024
REPLICA_MARKER = "replica.json"


def _mapping(values: Dict[str, int]) -> str:
    return "{" + ",".join(f"{k}:{v}" for k, v in values.items()) + "}"


def bench_config(workdir: Path, profile: Profile, extra: Optional[List[str]] = None) -> Any:
    """The project config as the benchmark runs it: local[2], random-init models, outputs
    in ``workdir/<profile>`` (so profiles keep their own generated data)."""
    overrides = [
        f"paths.output_dir={(workdir / profile.name).resolve()}",
        "data=sample",
        f"data.sample.images_per_subset={_mapping(profile.images_per_subset)}",
        f"classes={CLASSES}",
        "spark.master='local[2]'",
        "preprocess.overwrite=true",
        "model.weights=null",
    ]
    if profile.input_size:
        overrides.append(f"model.input_size={profile.input_size}")
    return compose(overrides + list(extra or []))


def ensure_sample(cfg: Any) -> Dict[str, Any]:
    """Generate (or keep) the configured sample; its ground truth."""
    return write.generate_sample(Path(cfg.data.root), cfg.data.sample)


def replicate_sample(source: Path, target: Path, factor: int) -> Path:
    """``target`` holds ``factor`` copies of every annotation row and image of ``source``.

    Copy ``k`` of image ``ID`` is ``ID`` + ``k`` as 4 hex digits; its file is a hard
    link to the original (a copy across file systems), so the work per box (decode and
    crop of the same pixels) is unchanged and only the row count grows. Corrupt images
    stay corrupt and missing ones stay missing. Kept when ``target`` already holds this
    replica of this sample.
    """
    marker = {"source_fingerprint": ground_truth.read_ground_truth(source)["fingerprint"], "factor": factor}
    marker_path = target / REPLICA_MARKER
    if marker_path.is_file() and json.loads(marker_path.read_text()) == marker:
        return target
    shutil.rmtree(target, ignore_errors=True)
    (target / "images").mkdir(parents=True)
    for name in (catalogue.CLASS_DESCRIPTIONS_FILE, catalogue.HIERARCHY_FILE):
        shutil.copyfile(source / name, target / name)
    suffixes = [f"{k:04x}" for k in range(factor)]
    for subset in SUBSETS:
        for pattern in (write.BOXES_FILE, write.IMAGE_LABELS_FILE):
            name = pattern.format(subset=subset)
            rows = pd.read_csv(source / name, dtype=str, keep_default_na=False)
            copies = [rows.assign(ImageID=rows["ImageID"] + s) for s in suffixes]
            pd.concat(copies, ignore_index=True).to_csv(target / name, index=False)
        _link_images(source / "images" / subset, target / "images" / subset, suffixes)
    marker_path.write_text(json.dumps(marker))
    log.info("replicated %s x%d into %s", source, factor, target)
    return target


def _link_images(source: Path, target: Path, suffixes: List[str]) -> None:
    if not source.is_dir():
        return
    target.mkdir(parents=True)
    for image in source.iterdir():
        for suffix in suffixes:
            copy = target / f"{image.stem}{suffix}{image.suffix}"
            try:
                os.link(image, copy)
            except OSError:
                shutil.copyfile(image, copy)


def replica_config(workdir: Path, profile: Profile, base_cfg: Any, factor: int, name: str) -> Any:
    """The bench config reading ``factor`` copies of ``base_cfg``'s sample (the sample
    itself for 1), writing its own ``<datasets_dir>/<name>_x<factor>`` output."""
    data_dir, datasets_dir = Path(base_cfg.paths.data_dir), Path(base_cfg.paths.datasets_dir)
    source = Path(base_cfg.data.root)
    root = source if factor == 1 else replicate_sample(source, data_dir / f"{name}_x{factor}", factor)
    return bench_config(workdir, profile, [f"data.root={root}", f"preprocess.output={datasets_dir / f'{name}_x{factor}'}"])


def large_images_config(workdir: Path, profile: Profile) -> Any:
    """The bench config of a sample with Open Images-sized pictures (``profile.large_*``)."""
    if profile.large_images_per_subset is None:
        raise ValueError(f"profile {profile.name!r} has no large_images_per_subset")
    low, high = profile.large_image_side
    base = bench_config(workdir, profile)
    return bench_config(
        workdir,
        replace(profile, images_per_subset=profile.large_images_per_subset),
        [
            f"data.root={Path(base.paths.data_dir) / 'sample_large'}",
            f"data.sample.min_image_side={low}",
            f"data.sample.max_image_side={high}",
            f"preprocess.output={Path(base.paths.datasets_dir) / 'sample_large'}",
        ],
    )
