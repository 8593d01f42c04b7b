"""Items 2 and 4: cutting chips on Spark vs a single-process Pillow loop, and how cost grows.

Spark is timed three ways: the whole ``build_chip_dataset`` (CSV scans, selection,
joins, extraction, counts and digest, Petastorm write), ``extract_chips`` on
the images ``attach_images`` returns (joins the found files to their boxes, then reads and
crops each file in the cropping task; output discarded with the ``noop`` writer), and
``extract_chips`` on those image rows cached in Spark's memory (the join skipped: the rows
hold paths, so the files are still read where they are cropped). The plain loop reads the
same files and calls ``crop_image_boxes`` per image with the same boxes and settings.
Rates count boxes: every box becomes one chip or one reject. CPU seconds are those of
this process tree (driver, JVM, Python workers), so they show what each box costs
whatever the parallelism.
"""
from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Sequence, Tuple

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession

from bigcat_ml.chips.extract import crop_settings, extract_chips
from bigcat_ml.chips.crop import crop_image_boxes
from bigcat_ml.oid.classes import load_selected_classes
from bigcat_ml.oid.selection import select_images
from bigcat_ml.chips.build import build_chip_dataset
from bigcat_ml.chips.summary import ChipSummary
from bigcat_ml.runtime.spark import ARROW_BATCH_ROWS_KEY, FILE_OPEN_COST_KEY, session_conf

from benchmarks.data import SPARK_DEFAULT_OPEN_COST_BYTES
from benchmarks.spark_stages import group_counts
from benchmarks.timing import fastest, per_second, timed

log = logging.getLogger(__name__)

TARGET_SPEEDUP = 1.7  # Spark boxes/s over the Pillow loop's, on 2 cores
ImageWork = List[Tuple[Path, List[Dict[str, Any]]]]


@contextmanager
def attached_images(spark: SparkSession, cfg: Any) -> Iterator[DataFrame]:
    """The library's selection up to ``attach_images``: one row per found image with its
    boxes, for the block (the selection's cached frames are released after it)."""
    selected = load_selected_classes(spark, cfg.data, cfg.classes)
    with select_images(spark, cfg.data, cfg.preprocess, selected) as chosen:
        yield chosen.images


def image_work(images: DataFrame, images_path: str) -> ImageWork:
    """(file, boxes) per image of ``images``, for the plain loop to read and crop."""
    work = []
    for row in images.select("Subset", "ImageID", "boxes").collect():
        path = Path(images_path) / row.Subset / f"{row.ImageID}.jpg"
        if not path.is_file():
            raise FileNotFoundError(f"{path} is attached by Spark but not on disk: is data.images_path {images_path} right?")
        work.append((path, [box.asDict() for box in row.boxes]))
    return work


def pillow_loop(work: ImageWork, preprocess_cfg: Any) -> Dict[str, Any]:
    """Read each file and ``crop_image_boxes`` it; seconds reading, seconds cropping, outcome counts."""
    crop_args = crop_settings(preprocess_cfg)
    read_s = crop_s = 0.0
    chips = rejects = image_bytes = 0
    for path, boxes in work:
        t0 = time.perf_counter()
        data = path.read_bytes()
        t1 = time.perf_counter()
        results = crop_image_boxes(data, boxes, **crop_args)
        crop_s += time.perf_counter() - t1
        read_s += t1 - t0
        image_bytes += len(data)
        chips += sum(r.reason is None for r in results)
        rejects += sum(r.reason is not None for r in results)
    return {"read_s": round(read_s, 3), "crop_s": round(crop_s, 3), "chips": chips, "rejects": rejects,
            "image_mb": round(image_bytes / 1024**2, 1)}


def _timed_pillow(work: ImageWork, preprocess_cfg: Any, quiet_s: float) -> Dict[str, Any]:
    record, counts = timed(lambda: pillow_loop(work, preprocess_cfg), quiet_s)
    return {**record, **counts}


def _noop_write(df: DataFrame) -> None:
    df.write.format("noop").mode("overwrite").save()


def _warm(runs: Sequence[Dict[str, Any]]) -> Sequence[Dict[str, Any]]:
    return runs[1:] or runs


def _cpu_ms_per_box(run: Dict[str, Any], boxes: int) -> float:
    return round(1000 * run["resources"]["own_cpu_s"] / boxes, 3) if boxes else float("nan")


def _cached_rdds(spark: SparkSession) -> int:
    return int(spark.sparkContext._jsc.getPersistentRDDs().size())


def bench_extraction(spark: SparkSession, cfg: Any, warm_repeats: int, quiet_s: float, tag: str) -> Dict[str, Any]:
    """``extract_chips`` on the attached images (from the files, then cached) vs the Pillow loop.

    The first Spark run of each kind is a warm-up and is kept apart from the best.
    """
    with attached_images(spark, cfg) as images:
        work = image_work(images, cfg.data.images_path)
        boxes = sum(len(b) for _, b in work)
        extract = extract_chips(images, cfg.preprocess)
        from_files = [timed(lambda: _noop_write(extract), quiet_s, spark, f"{tag}-files-{i}")[0] for i in range(1 + warm_repeats)]
        images.persist(StorageLevel.MEMORY_AND_DISK).count()
        from_cache = [timed(lambda: _noop_write(extract), quiet_s, spark, f"{tag}-cached-{i}")[0] for i in range(1 + warm_repeats)]
        partitions = images.rdd.getNumPartitions()
        images.unpersist()
    plain = [_timed_pillow(work, cfg.preprocess, quiet_s) for _ in range(1 + warm_repeats)]
    best_plain, best_files, best_cache = fastest(plain), fastest(_warm(from_files)), fastest(_warm(from_cache))
    plain_rate = per_second(boxes, best_plain["seconds"], 1)
    files_rate, cache_rate = per_second(boxes, best_files["seconds"], 1), per_second(boxes, best_cache["seconds"], 1)
    return {
        "images": len(work),
        "boxes": boxes,
        "image_mb": plain[0]["image_mb"],
        "image_partitions": partitions,
        "arrow_max_records_per_batch": int(spark.conf.get(ARROW_BATCH_ROWS_KEY)),
        "from_files": {"runs": from_files, "warm_boxes_per_s": files_rate, "cpu_ms_per_box": _cpu_ms_per_box(best_files, boxes)},
        "from_cache": {"runs": from_cache, "warm_boxes_per_s": cache_rate, "cpu_ms_per_box": _cpu_ms_per_box(best_cache, boxes)},
        "pillow_loop": {"runs": plain, "boxes_per_s": plain_rate, "cpu_ms_per_box": _cpu_ms_per_box(best_plain, boxes)},
        "speedups": {
            "extract_chips_from_files_vs_pillow": round(files_rate / plain_rate, 3),
            "extract_chips_from_cache_vs_pillow": round(cache_rate / plain_rate, 3),
        },
    }


def bench_preprocess(spark: SparkSession, cfg: Any, warm_repeats: int, quiet_s: float) -> Dict[str, Any]:
    """Cold + warm ``build_chip_dataset``, then :func:`bench_extraction` on the same sample."""
    builds = []
    for i in range(1 + warm_repeats):
        run, result = timed(lambda: build_chip_dataset(spark, cfg.data, cfg.classes, cfg.preprocess, reuse_check=cfg.reuse_check), quiet_s, spark, f"build-{i}")
        builds.append({**run, "cached_rdds_left": _cached_rdds(spark)})
    summary = ChipSummary.from_dict(result.summary)
    extraction = bench_extraction(spark, cfg, warm_repeats, quiet_s, "extract")
    plain_rate = extraction["pillow_loop"]["boxes_per_s"]
    best_build = fastest(_warm(builds))
    best_build["spark_work"] = group_counts(spark, best_build["group"])
    build_rate = per_second(summary.selected_boxes, best_build["seconds"], 1)
    speedups = {"build_chip_dataset_vs_pillow": round(build_rate / plain_rate, 3), **extraction["speedups"]}
    return {
        "selected_boxes": summary.selected_boxes,
        "chips": summary.chips,
        "rejects_by_reason": summary.rejects_by_reason,
        "build_chip_dataset": {"cold": builds[0], "warm_runs": builds[1:], "warm_boxes_per_s": build_rate,
                               "cpu_ms_per_box": _cpu_ms_per_box(best_build, summary.selected_boxes)},
        "extraction": extraction,
        "speedups": speedups,
        "target": {
            "min": TARGET_SPEEDUP,
            "build_chip_dataset_met": speedups["build_chip_dataset_vs_pillow"] >= TARGET_SPEEDUP,
            "extract_chips_from_files_met": speedups["extract_chips_from_files_vs_pillow"] >= TARGET_SPEEDUP,
        },
    }


def _growth_row(spark: SparkSession, factor: int, cfg: Any, base_rows: int, quiet_s: float) -> Dict[str, Any]:
    run, result = timed(lambda: build_chip_dataset(spark, cfg.data, cfg.classes, cfg.preprocess, reuse_check=cfg.reuse_check), quiet_s, spark, f"growth-x{factor}")
    with attached_images(spark, cfg) as images:
        work = image_work(images, cfg.data.images_path)
        extract, _ = timed(lambda: _noop_write(extract_chips(images, cfg.preprocess)), quiet_s, spark, f"growth-extract-x{factor}")
        partitions = images.rdd.getNumPartitions()
    plain = _timed_pillow(work, cfg.preprocess, quiet_s)
    summary = ChipSummary.from_dict(result.summary)
    boxes = summary.selected_boxes
    attached = sum(len(b) for _, b in work)  # extraction and Pillow skip boxes of missing images
    return {
        "factor": factor,
        "annotation_rows": base_rows * factor,
        "selected_boxes": boxes,
        "attached_boxes": attached,
        "chips": summary.chips,
        "seconds": run["seconds"],
        "ms_per_box": round(1000 * run["seconds"] / boxes, 2),
        "cpu_ms_per_box": _cpu_ms_per_box(run, boxes),
        "extract_seconds": extract["seconds"],
        "image_partitions": partitions,
        "extract_ms_per_box": round(1000 * extract["seconds"] / attached, 3),
        "extract_cpu_ms_per_box": _cpu_ms_per_box(extract, attached),
        "pillow_seconds": plain["seconds"],
        "pillow_ms_per_box": round(1000 * plain["seconds"] / attached, 3),
        "build_speedup_vs_pillow": round((boxes / run["seconds"]) / (attached / plain["seconds"]), 3),
        "extract_speedup_vs_pillow": round(plain["seconds"] / extract["seconds"], 3),
        "spark_work": group_counts(spark, f"growth-x{factor}"),
        "resources": run["resources"],
        "extract_resources": extract["resources"],
    }


def _default_open_cost_extract(spark: SparkSession, cfg: Any, quiet_s: float) -> Dict[str, Any]:
    """``extract_chips`` from the files with Spark's default file packing (4 MB per file)."""
    with session_conf(spark, FILE_OPEN_COST_KEY, str(SPARK_DEFAULT_OPEN_COST_BYTES)), attached_images(spark, cfg) as images:
        run, _ = timed(lambda: _noop_write(extract_chips(images, cfg.preprocess)), quiet_s, spark, "growth-extract-default-open-cost")
        partitions = images.rdd.getNumPartitions()
    return {**run, "image_partitions": partitions, FILE_OPEN_COST_KEY: SPARK_DEFAULT_OPEN_COST_BYTES}


def bench_growth(spark: SparkSession, cfgs: Dict[int, Any], base_rows: int, quiet_s: float) -> Dict[str, Any]:
    """At each multiple of the annotation rows: ``build_chip_dataset``, ``extract_chips``
    from the files and the Pillow loop, one run each; at the largest, ``extract_chips``
    again with Spark's default file packing."""
    rows = [_growth_row(spark, factor, cfg, base_rows, quiet_s) for factor, cfg in sorted(cfgs.items())]
    for previous, row in zip(rows, rows[1:]):
        added, added_attached = row["selected_boxes"] - previous["selected_boxes"], row["attached_boxes"] - previous["attached_boxes"]
        row["marginal_ms_per_box"] = round(1000 * (row["seconds"] - previous["seconds"]) / added, 2) if added else None
        row["marginal_extract_ms_per_box"] = (
            round(1000 * (row["extract_seconds"] - previous["extract_seconds"]) / added_attached, 3) if added_attached else None
        )
    largest = max(cfgs)
    default = _default_open_cost_extract(spark, cfgs[largest], quiet_s)
    default["factor"] = largest
    default["tuned_" + FILE_OPEN_COST_KEY] = spark.conf.get(FILE_OPEN_COST_KEY)
    return {"rows": rows, "default_file_packing_extract": default}
