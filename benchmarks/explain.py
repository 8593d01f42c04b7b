"""Plain-language explanations of a run, each sentence built from its measured numbers."""
from __future__ import annotations

from statistics import mean
from typing import Any, Dict, Iterator, List

import numpy as np

from benchmarks.timing import fastest


def _spark_runs(results: Dict[str, Any]) -> Iterator[Dict[str, Any]]:
    """Every timed Spark run of the preprocessing and inference benchmarks."""
    pre = results["preprocess"]
    yield from (pre["build_chip_dataset"]["cold"], *pre["build_chip_dataset"]["warm_runs"])
    for extraction in (pre["extraction"], results.get("large_images_extraction") or {}):
        for kind in ("from_files", "from_cache"):
            yield from extraction.get(kind, {}).get("runs", [])
    for model in results["inference"]:
        yield from (model["spark"]["cold"], *model["spark"]["warm_runs"])


def _inference_notes(model: Dict[str, Any]) -> List[str]:
    spark, plain, ratios, target = model["spark"], model["plain"], model["ratios"], model["target"]
    name = model["model"]
    best = fastest(spark["warm_runs"])
    verdict = "meets" if target["met"] else "misses"
    out = [
        f"{name}: the best warm `predict_spark` call took {best['seconds']:.2f} s for {model['chips']} chips, the best "
        f"plain loop {min(r['end_to_end_s'] for r in plain['runs']):.2f} s: {ratios['warm_spark_vs_plain_end_to_end']}x, "
        f"which {verdict} the {target['min']} target (other programs used {best['resources']['foreign_cpu_cores']:.2f} "
        f"cores during that call). The chips were spread over the task slots as {model['task_rows']} (the files "
        f"held {model['file_partition_rows']}).",
        f"{name}: the cold call, the first of the session, ran at {ratios['cold_spark_vs_plain_end_to_end']}x: it "
        f"builds and checks the model on the driver and in each Python worker ({spark['model_build_and_check_s']:.2f} s "
        f"per build here); warm calls find it built, as later calls of a sweep or a notebook do.",
    ]
    stage = spark.get("predict_stage")
    if stage:
        out.append(
            f"{name}: {spark['outside_predict_stage_s']:.2f} s of the warm call ran outside the predict stage (the "
            f"driver's checks, reading and spreading the chips, count and reconciliation jobs); the predict stage alone "
            f"ran at {ratios['predict_stage_vs_plain_end_to_end']}x the plain loop, its tasks taking {stage['task_s']} s. "
            f"CPU per chip: Spark {spark['warm_cpu_ms_per_chip']} ms (all processes), plain {plain['cpu_ms_per_chip']} ms."
        )
    return out


def _growth_notes(results: Dict[str, Any]) -> List[str]:
    growth = results["growth"]
    rows, default = growth["rows"], growth["default_file_packing_extract"]
    out = []
    if len(rows) > 1:
        boxes = np.array([row["selected_boxes"] for row in rows], float)
        seconds = np.array([row["seconds"] for row in rows], float)
        slope, intercept = np.polyfit(boxes, seconds, 1)
        last = rows[-1]
        out.append(
            f"Growth: a straight line through the {len(rows)} sizes gives `build_chip_dataset` {intercept:.1f} s of fixed "
            f"cost (its dozens of small Spark jobs: selection, write, read-back counts and digest) plus "
            f"{1000 * slope:.2f} ms per box. At {last['factor']}x, `extract_chips` costs {last['extract_ms_per_box']} ms "
            f"per box ({last['extract_cpu_ms_per_box']} CPU-ms on all processes) and Pillow {last['pillow_ms_per_box']} ms: "
            f"{last['extract_speedup_vs_pillow']}x."
        )
        first = rows[0]["resources"]["peak_mb"]
        peak = rows[-1]["resources"]["peak_mb"]
        out.append(
            f"Memory from {rows[0]['factor']}x to {last['factor']}x rows: driver Python {first['driver_python']:,.0f} -> "
            f"{peak['driver_python']:,.0f} MiB, JVM {first['jvm']:,.0f} -> {peak['jvm']:,.0f} MiB (heap capped by "
            f"spark.driver.memory={results['config']['spark_conf'].get('spark.driver.memory', 'default')}), Python workers "
            f"{first['python_workers']:,.0f} -> {peak['python_workers']:,.0f} MiB."
        )
    tuned_key = "tuned_spark.sql.files.openCostInBytes"
    if tuned_key in default and rows:
        tuned = rows[-1]
        extra_tasks = default["image_partitions"] - tuned["image_partitions"]
        slots = 2 if results["machine"]["logical_cores"] >= 2 else 1
        per_task = (default["seconds"] - tuned["extract_seconds"]) * slots / extra_tasks if extra_tasks > 0 else float("nan")
        out.append(
            f"File packing: with Spark's default spark.sql.files.openCostInBytes (4 MB) the images of {tuned['attached_boxes']} "
            f"boxes were read in {default['image_partitions']} tasks and `extract_chips` took {default['seconds']:.1f} s; with "
            f"{default[tuned_key]} bytes (the project's default, set in bigcat_ml.runtime.spark) in {tuned['image_partitions']} tasks, "
            f"{tuned['extract_seconds']:.1f} s: about {per_task:.2f} s of fixed cost per task (Python worker stream, Arrow "
            f"setup), which small image files must share."
        )
    return out


def _work(pre: Dict[str, Any]) -> str:
    best = fastest(pre["build_chip_dataset"]["warm_runs"] or [pre["build_chip_dataset"]["cold"]])
    work = best.get("spark_work")
    return f" in {work['jobs']} Spark jobs, {work['stages']} stages and {work['tasks']} tasks" if work else ""


def _preprocess_notes(results: Dict[str, Any]) -> List[str]:
    pre = results["preprocess"]
    extraction = pre["extraction"]
    pillow = extraction["pillow_loop"]
    files = extraction["from_files"]
    out = [
        f"Preprocessing at 1x: Pillow needs {1000 / pillow['boxes_per_s']:.2f} ms per box on these small sample images "
        f"(sides {results['config']['data_sample']['min_image_side']}-{results['config']['data_sample']['max_image_side']} px, "
        f"{extraction['image_mb']} MB for {extraction['images']} images); `extract_chips` spends {files['cpu_ms_per_box']} "
        f"CPU-ms per box against Pillow's {pillow['cpu_ms_per_box']}, so two cores cannot make up for the JVM and Arrow "
        f"work around each row, and the whole `build_chip_dataset` ({pre['build_chip_dataset']['cpu_ms_per_box']} CPU-ms "
        f"per box) adds selection, Parquet write and read-back verification{_work(pre)}."
    ]
    large = results.get("large_images_extraction")
    if large:
        low, high = large["image_side_px"]
        speedup = large["speedups"]["extract_chips_from_files_vs_pillow"]
        trend = "closer to" if speedup > extraction["speedups"]["extract_chips_from_files_vs_pillow"] else "no closer to"
        out.append(
            f"With larger pictures ({low}-{high} px a side; {large['boxes']} boxes, {large['image_mb']} MB) Pillow needs "
            f"{1000 / large['pillow_loop']['boxes_per_s']:.2f} ms per box and `extract_chips` runs at {speedup}x the Pillow "
            f"loop from the files ({large['speedups']['extract_chips_from_cache_vs_pillow']}x cached; CPU-ms per box "
            f"{large['from_files']['cpu_ms_per_box']} vs {large['pillow_loop']['cpu_ms_per_box']}): more work per box "
            f"brings Spark {trend} using both cores."
        )
    left = sorted({run["cached_rdds_left"] for run in (pre["build_chip_dataset"]["cold"], *pre["build_chip_dataset"]["warm_runs"])})
    out.append(f"Cached RDDs left in the session after each `build_chip_dataset` call: {left} (it releases what it caches).")
    return out + _growth_notes(results)


def notes(results: Dict[str, Any]) -> List[str]:
    """Explanations for the Markdown summary, from the numbers in ``results``."""
    foreign = [run["resources"]["foreign_cpu_cores"] for run in _spark_runs(results)]
    out = [
        f"The machine is shared: during the timed Spark runs other programs used {mean(foreign):.2f} of the "
        f"{results['machine']['logical_cores']} cores on average (max {max(foreign):.2f}). Each timed run first waited up to "
        f"{results['config']['profile']['quiet_wait_s']:.0f} s for a quiet moment; the best run of each kind is reported."
    ]
    for model in results["inference"]:
        out += _inference_notes(model)
    return out + _preprocess_notes(results)
