"""Write the results: the full JSON, and a Markdown summary docs/benchmarks.md embeds."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, List, Sequence

from benchmarks.timing import fastest

JSON_FILE = "latest.json"
MARKDOWN_FILE = "latest.md"
RESULTS_START = "<!-- make bench: benchmarks/results/latest.md -->"
RESULTS_END = "<!-- end of benchmark results -->"


def _write_atomic(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".tmp")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def write_json(results: Dict[str, Any], path: Path) -> Path:
    """``results`` as JSON at ``path`` (its folder created if needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(path, json.dumps(results, indent=2) + "\n")
    return path


def write_results(results: Dict[str, Any], folder: Path) -> Dict[str, Path]:
    """``latest.json`` and ``latest.md`` in ``folder`` (created if needed)."""
    paths = {"json": write_json(results, folder / JSON_FILE), "markdown": folder / MARKDOWN_FILE}
    _write_atomic(paths["markdown"], render_markdown(results))
    return paths


def embed_in_doc(doc: Path, markdown: str) -> None:
    """Put ``markdown`` between the :data:`RESULTS_START` and :data:`RESULTS_END` lines of
    ``doc`` (docs/benchmarks.md), so the measurements page always shows the committed results."""
    text = doc.read_text(encoding="utf-8")
    start, end = text.find(RESULTS_START), text.find(RESULTS_END)
    if start < 0 or end < start:
        raise ValueError(f"{doc} has no '{RESULTS_START}' ... '{RESULTS_END}' section to put the results in")
    _write_atomic(doc, f"{text[:start]}{RESULTS_START}\n{markdown.rstrip()}\n{text[end:]}")


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> List[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join("" if cell is None else str(cell) for cell in row) + " |" for row in rows]


def _mb(value: float) -> str:
    return f"{value:,.0f}"


def _met(met: bool) -> str:
    return "yes" if met else "**no**"


def _inference_rows(results: Dict[str, Any]) -> List[List[Any]]:
    rows: List[List[Any]] = []
    for model in results["inference"]["models"]:
        for size in model["sizes"]:
            rates = size["chips_per_s"]
            rows.append([model["model"], size["chips"], rates["spark"], rates["numpy"], rates["tf_data"],
                         size["spark_vs_best_plain"], f">= {size['target']['min']}", _met(size["target"]["met"])])
    return rows


def _model_rows(results: Dict[str, Any]) -> List[List[Any]]:
    rows: List[List[Any]] = []
    for model in results["inference"]["models"]:
        fit, precision, cold = model["spark_fixed_cost"], model["precision"], model["cold_call"]
        rows.append([model["model"], fit["fixed_s"], fit["ms_per_chip"], len(fit["points"]), cold["extra_s_over_warm"],
                     model["after_idle_call"]["extra_s_over_warm"],
                     precision["speedup"], f"{precision['top1_agreement']:.2%} of {precision['agreement_chips']}",
                     precision["max_abs_prob_diff"], _met(precision["target"]["met"])])
    return rows


def _auto_line(results: Dict[str, Any]) -> str:
    auto = results["inference"]["auto_path"]
    per_model = ", ".join(f"{m}: {'never' if n is None else n}" for m, n in auto["per_model"].items())
    return (f"`evaluate.path=auto` threshold: Spark local[2] (a cold call, model built in each worker) overtakes one "
            f"process from {auto['threshold']} chips in this run (per model: {per_model}; the smallest counts). "
            "`evaluate.auto_local_max_chips` takes the median over runs, as the crossover moves from run to run "
            "(docs/decisions.md).")


def _throughput_rows(results: Dict[str, Any]) -> List[List[Any]]:
    rows: List[List[Any]] = []
    pre = results["preprocess"]
    extraction, speed, target = pre["extraction"], pre["speedups"], pre["target"]
    pillow = f"{extraction['pillow_loop']['boxes_per_s']} boxes/s"
    rows.append([f"`build_chip_dataset`, {pre['selected_boxes']} boxes, warm", f"{pre['build_chip_dataset']['warm_boxes_per_s']} boxes/s",
                 pillow, speed["build_chip_dataset_vs_pillow"], f">= {target['min']}", _met(target["build_chip_dataset_met"])])
    rows.append([f"`extract_chips` on attached images (reads the files), {extraction['boxes']} boxes",
                 f"{extraction['from_files']['warm_boxes_per_s']} boxes/s", pillow,
                 speed["extract_chips_from_files_vs_pillow"], f">= {target['min']}", _met(target["extract_chips_from_files_met"])])
    rows.append(["`extract_chips` on images cached in Spark", f"{extraction['from_cache']['warm_boxes_per_s']} boxes/s", pillow,
                 speed["extract_chips_from_cache_vs_pillow"], "", ""])
    growth = results["growth"]
    default, last = growth["default_file_packing_extract"], growth["rows"][-1]
    rows.append([f"`extract_chips` from files at {last['factor']}x rows, {last['attached_boxes']} boxes",
                 f"{round(last['attached_boxes'] / last['extract_seconds'], 1)} boxes/s",
                 f"{round(last['attached_boxes'] / last['pillow_seconds'], 1)} boxes/s", last["extract_speedup_vs_pillow"], "", ""])
    rows.append([f"same, Spark's default file packing ({default['image_partitions']} read tasks)",
                 f"{round(last['attached_boxes'] / default['seconds'], 1)} boxes/s",
                 f"{round(last['attached_boxes'] / last['pillow_seconds'], 1)} boxes/s",
                 round(last["pillow_seconds"] / default["seconds"], 3), "", ""])
    large = results.get("large_images_extraction")
    if large:
        low, high = large["image_side_px"]
        large_pillow = f"{large['pillow_loop']['boxes_per_s']} boxes/s"
        rows.append([f"`extract_chips` from files, {low}-{high} px images, {large['boxes']} boxes",
                     f"{large['from_files']['warm_boxes_per_s']} boxes/s", large_pillow,
                     large["speedups"]["extract_chips_from_files_vs_pillow"], f">= {large['target']['min']}",
                     _met(large["target"]["met"])])
        rows.append([f"`extract_chips` cached, {low}-{high} px images", f"{large['from_cache']['warm_boxes_per_s']} boxes/s",
                     large_pillow, large["speedups"]["extract_chips_from_cache_vs_pillow"], "", ""])
    return rows


def _memory_rows(results: Dict[str, Any]) -> List[List[Any]]:
    def row(label: str, resources: Dict[str, Any], batching: str) -> List[Any]:
        peak = resources["peak_mb"]
        workers = f"{_mb(peak['python_workers'])} / {_mb(resources['python_worker_max_mb'])}"
        return [label, _mb(peak["driver_python"]), _mb(peak["jvm"]), workers, batching, resources["foreign_cpu_cores"]]

    pre = results["preprocess"]
    extraction = pre["extraction"]
    arrow = f"Arrow {extraction['arrow_max_records_per_batch']} images"
    rows = [
        row("`build_chip_dataset`", fastest(pre["build_chip_dataset"]["warm_runs"] or [pre["build_chip_dataset"]["cold"]])["resources"], arrow),
        row("`extract_chips` (files)", fastest(extraction["from_files"]["runs"][1:] or extraction["from_files"]["runs"])["resources"], arrow),
    ]
    for model in results["inference"]["models"]:
        batching = f"{model['batch_size']} chips per predict, Arrow {model['arrow_max_records_per_batch']} rows"
        for size in model["sizes"]:
            rows.append(row(f"{model['model']} `predict_spark`, {size['chips']} chips", fastest(size["runs"]["spark"])["resources"], batching))
    return rows


def _growth_rows(results: Dict[str, Any]) -> List[List[Any]]:
    rows = []
    for g in results["growth"]["rows"]:
        peak = g["resources"]["peak_mb"]
        rows.append([f"{g['factor']}x", g["annotation_rows"], g["selected_boxes"], g["seconds"], g["ms_per_box"],
                     g.get("marginal_ms_per_box"), g["extract_ms_per_box"], g.get("marginal_extract_ms_per_box"),
                     g["pillow_ms_per_box"], g["extract_speedup_vs_pillow"], _mb(peak["driver_python"]), _mb(peak["jvm"]),
                     _mb(peak["python_workers"])])
    return rows


def render_markdown(results: Dict[str, Any]) -> str:
    """Throughput and ratio table, memory table, growth table, and the measured explanations."""
    machine, versions, config = results["machine"], results["versions"], results["config"]
    lines = [
        f"Measured by `make bench` ({results['profile']} profile, {results['wall_s']:.0f} s) on {machine['cpu_model']}, "
        f"{machine['logical_cores']} cores, {machine['ram_gib']} GiB RAM; Spark `{config['spark_master']}`; Python {versions['python']}, "
        f"PySpark {versions['pyspark']}, TensorFlow {versions['tensorflow']}, Keras {versions['keras']}, Petastorm {versions['petastorm']}, "
        f"pyarrow {versions['pyarrow']}, numpy {versions['numpy']}. Models are random-init (`model.weights=null`): speed only. "
        "Spark and plain runs alternate in one process, not nice'd, on a machine shared with other work: ratios hold "
        "within one run, and each cell shows the best run of its kind.",
        "",
        "Inference, warm, chips/s end to end from JPEG (plain: one process; numpy = decode + `predict_on_batch`, "
        "tf.data = parallel decode/resize + `model.predict`):",
        "",
        *_table(["Model", "Chips", "Spark local[2]", "numpy", "tf.data", "Spark / best plain", "Target", "Met"], _inference_rows(results)),
        "",
        "Spark call fixed cost (least-squares line of the best time against chips), cold-call extra, the extra of a "
        "call after more than a minute without Python tasks (Spark has stopped its workers), and bfloat16 "
        "(numpy idiom; speed over all the chips, top-1 agreement on the half the model was not trained on) against float32:",
        "",
        *_table(["Model", "Fixed s", "ms/chip", "Sizes", "Cold extra s", "After-idle extra s", "bf16 speedup", "bf16 top-1 agreement",
                 "Max prob diff", "Met"], _model_rows(results)),
        "",
        _auto_line(results),
        "",
        "Preprocessing:",
        "",
        *_table(["Measurement", "Spark local[2]", "Plain, 1 process", "Spark / plain", "Target", "Met"], _throughput_rows(results)),
        "",
        "Peak RSS (MiB) during the best warm run; Python workers as sum / largest (forked workers share pages, "
        "so the sum is an upper bound); other programs' CPU use in cores:",
        "",
        *_table(["Spark run", "Driver Python", "JVM", "Python workers", "Batching", "Other load"], _memory_rows(results)),
        "",
        f"Growth of `build_chip_dataset` and `extract_chips` with {config['growth_method']} (ms per selected box; "
        "marginal = added time / added boxes from the row above; peak RSS in MiB):",
        "",
        *_table(["Rows", "Annotation rows", "Boxes", "Build s", "Build ms/box", "Marginal", "Extract ms/box", "Marginal",
                 "Pillow ms/box", "Extract / Pillow", "Driver", "JVM", "Workers"], _growth_rows(results)),
    ]
    if results.get("notes"):
        lines += ["", *[f"- {note}" for note in results["notes"]]]
    return "\n".join(lines) + "\n"
