"""Plain-language explanations of a run, each sentence built from its measured numbers."""
from __future__ import annotations

from statistics import mean
from typing import Any, Dict, Iterator, List

import numpy as np


def _spark_runs(results: Dict[str, Any]) -> Iterator[Dict[str, Any]]:
    """Every timed Spark run of the preprocessing and inference benchmarks."""
    pre = results["preprocess"]
    yield from (pre["build_chip_dataset"]["cold"], *pre["build_chip_dataset"]["warm_runs"])
    for extraction in (pre["extraction"], results.get("large_images_extraction") or {}):
        for kind in ("from_files", "from_cache"):
            yield from extraction.get(kind, {}).get("runs", [])
    for model in results["inference"]:
        yield from (model["spark"]["cold"], *model["spark"]["warm_runs"], *model["spark"]["balanced_runs"])


def _inference_notes(model: Dict[str, Any]) -> List[str]:
    spark, plain, ratios, target = model["spark"], model["plain"], model["ratios"], model["target"]["min"]
    name = model["model"]
    best = min(spark["warm_runs"], key=lambda r: r["seconds"])
    builds = spark["worker_build_and_check"]
    worker_build = mean(b["seconds"] for b in builds) if builds else float("nan")
    threads = sorted({b["intra_op_threads"] for b in builds})
    out = [
        f"{name}: the best warm `predict_spark` call took {best['seconds']:.2f} s for {model['chips']} chips, the best "
        f"plain loop {min(r['end_to_end_s'] for r in plain['runs']):.2f} s (other programs used "
        f"{best['resources']['foreign_cpu_cores']:.2f} cores during that call). Each call builds and checks the model "
        f"on the driver ({spark['driver_build_and_check_s']:.2f} s) and again in each Python worker "
        f"({worker_build:.2f} s, TensorFlow intra-op threads {threads}); without those builds the call would run at "
        f"{ratios['warm_without_model_builds_vs_plain_end_to_end']}x the plain loop (derived)."
    ]
    stage = spark.get("predict_stage")
    if stage:
        out.append(
            f"{name}: {spark['outside_predict_stage_s']:.2f} s ran outside the predict stage (the driver's model check, "
            f"then count and reconciliation jobs); inside it the tasks took {stage['task_s']} s for partitions of "
            f"{model['partition_rows']} chips. Spread evenly over the cores ({spark['balanced_partition_rows']}), the "
            f"warm call ran at {ratios['balanced_warm_spark_vs_plain_end_to_end']}x the plain loop."
        )
    if "steady_state_chips_per_s" in spark:
        ratio = ratios["steady_state_spark_vs_plain_end_to_end"]
        verdict = (
            "per chip Spark keeps up; the gap is the fixed cost of each call"
            if ratio >= target
            else "Spark is slower per chip too, not only by the fixed cost of each call"
        )
        out.append(
            f"{name}: once built, the two single-threaded workers together scored {spark['steady_state_chips_per_s']} "
            f"chips/s (derived: task time less build time), {ratio}x the plain loop's {plain['end_to_end_chips_per_s']} "
            f"chips/s on two threads: {verdict}. CPU per chip: Spark {spark['warm_cpu_ms_per_chip']} ms, plain "
            f"{plain['cpu_ms_per_chip']} ms."
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
            f"{default[tuned_key]} bytes (the project's default, set in bigcat_ml.spark) in {tuned['image_partitions']} tasks, "
            f"{tuned['extract_seconds']:.1f} s: about {per_task:.2f} s of fixed cost per task (Python worker stream, Arrow "
            f"setup), which small image files must share."
        )
    return out


def _work(pre: Dict[str, Any]) -> str:
    best = min(pre["build_chip_dataset"]["warm_runs"] or [pre["build_chip_dataset"]["cold"]], key=lambda r: r["seconds"])
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
