"""Plain-language explanations of a run, each sentence built from its measured numbers."""
from __future__ import annotations

from statistics import mean
from typing import Any, Dict, Iterator, List

import numpy as np


def _spark_runs(results: Dict[str, Any]) -> Iterator[Dict[str, Any]]:
    """Every timed Spark run (each has ``resources``)."""
    pre = results["preprocess"]
    yield from (pre["build_chip_dataset"]["cold"], *pre["build_chip_dataset"]["warm_runs"])
    extractions = [pre["extraction"], results.get("large_images_extraction") or {}]
    for extraction in extractions:
        for kind in ("from_files", "from_cache"):
            yield from extraction.get(kind, {}).get("runs", [])
    for model in results["inference"]:
        yield from (model["spark"]["cold"], *model["spark"]["warm_runs"])


def _inference_notes(model: Dict[str, Any]) -> List[str]:
    spark, plain, ratios = model["spark"], model["plain"], model["ratios"]
    best = min(spark["warm_runs"], key=lambda r: r["seconds"])
    builds = spark["worker_build_and_check"]
    worker_build = mean(b["seconds"] for b in builds) if builds else float("nan")
    threads = sorted({b["intra_op_threads"] for b in builds})
    stage = spark.get("predict_stage")
    name = model["model"]
    out = [
        f"{name}: the best warm `predict_spark` call took {best['seconds']:.1f} s for {model['chips']} chips "
        f"(other programs used {best['resources']['foreign_cpu_cores']:.2f} cores meanwhile; the best plain loop "
        f"{min(r['end_to_end_s'] for r in plain['runs']):.2f} s). Every call builds and checks the model on the driver "
        f"({spark['driver_build_and_check_s']:.1f} s) and again in each Python worker ({worker_build:.1f} s, TensorFlow "
        f"intra-op threads {threads}), costs a per-process model cache would skip on a warm call."
    ]
    if stage:
        out.append(
            f"{name}: {spark['outside_predict_stage_s']:.1f} s of that call ran outside the predict stage (driver model "
            f"check, count and reconciliation jobs); the stage's tasks took {stage['task_s']} s for partitions of "
            f"{model['partition_rows']} chips, so the stage lasts as long as its largest partition."
        )
    if "steady_state_chips_per_s" in spark:
        ratio = ratios["steady_state_spark_vs_plain_end_to_end"]
        verdict = (
            "per chip Spark keeps up, so the gap is the fixed cost per call"
            if ratio >= model["target"]["min"]
            else "so Spark is slower per chip as well, not only by its fixed cost per call"
        )
        out.append(
            f"{name}: with the model already built, the two single-threaded workers scored "
            f"{spark['steady_state_chips_per_s']} chips/s (derived: task times minus build time), "
            f"{ratio}x the plain loop's {plain['end_to_end_chips_per_s']} chips/s; {verdict}."
        )
    return out


def _preprocess_notes(results: Dict[str, Any]) -> List[str]:
    pre, growth = results["preprocess"], results["growth"]
    extraction = pre["extraction"]
    pillow_ms = 1000 / extraction["pillow_loop"]["boxes_per_s"]
    out = []
    if len(growth) > 1:
        boxes = np.array([row["selected_boxes"] for row in growth], float)
        seconds = np.array([row["seconds"] for row in growth], float)
        slope, intercept = np.polyfit(boxes, seconds, 1)
        last = growth[-1]
        out.append(
            f"A straight line through the {len(growth)} sizes gives `build_chip_dataset` {intercept:.1f} s of fixed cost "
            f"(its dozens of Spark jobs for selection, write and verification) plus {1000 * slope:.2f} ms per box. "
            f"`extract_chips` alone adds {last['marginal_extract_ms_per_box']} ms per box from {growth[-2]['factor']}x "
            f"to {last['factor']}x, while Pillow needs {last['pillow_ms_per_box']} ms per box: on these small images "
            f"(sample sides {results['config']['data_sample']['min_image_side']}-{results['config']['data_sample']['max_image_side']} px) "
            f"cropping is cheaper than moving a row through Spark (image bytes through a shuffle join, Arrow to pandas and back)."
        )
    large = results.get("large_images_extraction")
    if large:
        low, high = large["image_side_px"]
        large_ms = 1000 / large["pillow_loop"]["boxes_per_s"]
        large_speedup = large["speedups"]["extract_chips_from_files_vs_pillow"]
        trend = "closer to" if large_speedup > extraction["speedups"]["extract_chips_from_files_vs_pillow"] else "no closer to"
        out.append(
            f"With larger pictures ({low}-{high} px a side, {large['boxes']} boxes) Pillow needs {large_ms:.2f} ms per box "
            f"instead of {pillow_ms:.2f} ms, and `extract_chips` runs at {large_speedup}x the Pillow loop from the files "
            f"and {large['speedups']['extract_chips_from_cache_vs_pillow']}x cached: more work per box brings Spark "
            f"{trend} using both cores."
        )
    left = {run["cached_rdds_left"] for run in (pre["build_chip_dataset"]["cold"], *pre["build_chip_dataset"]["warm_runs"])}
    out.append(
        f"`build_chip_dataset` leaves {sorted(left)} cached DataFrames (its selection tables) in the session after each "
        f"call; the benchmark clears the cache between runs."
    )
    if growth:
        first, last = growth[0]["resources"], growth[-1]["resources"]
        out.append(
            f"Peak memory from {growth[0]['factor']}x to {growth[-1]['factor']}x rows: JVM {first['peak_mb']['jvm']:,.0f} -> "
            f"{last['peak_mb']['jvm']:,.0f} MiB (its heap is capped by spark.driver.memory="
            f"{results['config']['spark_conf'].get('spark.driver.memory', 'default')}), Python workers "
            f"{first['peak_mb']['python_workers']:,.0f} -> {last['peak_mb']['python_workers']:,.0f} MiB, driver Python "
            f"{first['peak_mb']['driver_python']:,.0f} -> {last['peak_mb']['driver_python']:,.0f} MiB."
        )
    return out


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
    out += _preprocess_notes(results)
    return out
