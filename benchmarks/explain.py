"""Plain-language explanations of a run, each sentence built from its measured numbers."""
from __future__ import annotations

from statistics import mean
from typing import Any, Dict, Iterator, List

import numpy as np

from benchmarks.timing import fastest


def _models(results: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The inference measurements per model; none when the run measured preprocessing only."""
    return (results.get("inference") or {}).get("models", [])


def _spark_runs(results: Dict[str, Any]) -> Iterator[Dict[str, Any]]:
    """Every timed Spark run of the preprocessing and inference benchmarks."""
    pre = results["preprocess"]
    yield from (pre["build_chip_dataset"]["cold"], *pre["build_chip_dataset"]["warm_runs"])
    for extraction in (pre["extraction"], results.get("large_images_extraction") or {}):
        for kind in ("from_files", "from_cache"):
            yield from extraction.get(kind, {}).get("runs", [])
    for model in _models(results):
        yield model["cold_call"]
        yield model["after_idle_call"]
        for size in model["sizes"]:
            yield from size["runs"]["spark"]


def _inference_notes(model: Dict[str, Any]) -> List[str]:
    name, fit, cold, precision = model["model"], model["spark_fixed_cost"], model["cold_call"], model["precision"]
    out = []
    for size in model["sizes"]:
        best = fastest(size["runs"]["spark"])
        verdict = "meets" if size["target"]["met"] else "misses"
        out.append(
            f"{name}, {size['chips']} chips (partitions {size['partition_rows']}): the best warm `predict_spark` call took "
            f"{best['seconds']:.2f} s, {size['spark_vs_best_plain']}x the faster plain idiom ({size['best_plain']}), "
            f"which {verdict} the {size['target']['min']} target; other programs used "
            f"{best['resources']['foreign_cpu_cores']:.2f} cores during that call."
        )
    out.append(
        f"{name}: a line through {len(fit['points'])} sizes gives each Spark call {fit['fixed_s']:.2f} s of fixed cost plus "
        f"{fit['ms_per_chip']} ms per chip; the cold call (first of the session for this model: TensorFlow and the "
        f"model built in each Python worker) adds {cold['extra_s_over_warm']:.2f} s."
    )
    idle = model["after_idle_call"]
    replaced = (f"Spark had replaced {idle['workers_replaced']} Python workers, which loaded TensorFlow and the model again"
                if idle["workers_replaced"] else "the workers were still up")
    out.append(f"{name}: a call after {idle['idle_s']:.0f} s without Python tasks took "
               f"{idle['extra_s_over_warm']:.2f} s more than a warm one on the same {idle['chips']} chips ({replaced}).")
    out.append(
        f"{name}: bfloat16 ran {precision['speedup']}x float32 over {precision['chips']} chips. Trained for "
        f"{precision['training_epochs']} epochs on half of them, the model's top-1 was equal in both precisions on "
        f"{precision['top1_agreement']:.2%} of the other {precision['agreement_chips']} (largest probability difference "
        f"{precision['max_abs_prob_diff']}; float32 was right on {precision['fp32_accuracy_on_those_chips']:.0%} of them and "
        f"chose {precision['fp32_top1_distinct_classes']} distinct classes)."
    )
    return out


def _jobs_per_call(row: Dict[str, Any]) -> str:
    work = row.get("spark_work")
    return f" (each call runs {work['jobs']} Spark jobs at {row['factor']}x: selection, counts, writes)" if work else ""


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
            f"cost{_jobs_per_call(rows[0])} plus "
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
        if extra_tasks > 0:
            per_task = (default["seconds"] - tuned["extract_seconds"]) * slots / extra_tasks
            effect = f"about {per_task:.2f} s of fixed cost per task (Python worker stream, Arrow setup), which small image files must share."
        else:
            effect = "the same number of read tasks either way, so the packing changed nothing at this size."
        out.append(
            f"File packing: with Spark's default spark.sql.files.openCostInBytes (4 MB) the images of {tuned['attached_boxes']} "
            f"boxes were read in {default['image_partitions']} tasks and `extract_chips` took {default['seconds']:.1f} s; with "
            f"{default[tuned_key]} bytes (the project's default, set in bigcat_ml.runtime.spark) in {tuned['image_partitions']} tasks, "
            f"{tuned['extract_seconds']:.1f} s: {effect}"
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
        f"per box) adds selection, counting and the Parquet writes{_work(pre)}."
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
    for model in _models(results):
        out += _inference_notes(model)
    return out + _preprocess_notes(results)
