"""benchmarks.run: a tiny run records the machine, the versions and every Spark/plain ratio.

No timing is asserted (the machine is shared); the test checks that each measurement
ran on the data it claims and that the JSON and Markdown carry what docs/benchmarks.md needs.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict

import pytest

from benchmarks.checkpoint import Checkpoint
from benchmarks.profiles import PROFILES
from benchmarks.report import RESULTS_END, RESULTS_START, embed_in_doc, write_results
from benchmarks.run import run_benchmarks

PROJECT = Path(__file__).resolve().parents[1]
PACKAGES = {"python", "pyspark", "tensorflow", "keras", "petastorm", "pyarrow", "numpy"}


@pytest.mark.spark
@pytest.mark.slow
def test_tiny_benchmark_writes_machine_versions_ratios_and_targets(spark, tmp_path):
    results = run_benchmarks(spark, PROFILES["tiny"], tmp_path / "work")
    paths = write_results(results, tmp_path / "results")
    saved = json.loads(paths["json"].read_text())

    machine = saved["machine"]
    assert machine["cpu_model"] and machine["logical_cores"] >= 1 and machine["ram_gib"] > 0
    assert PACKAGES <= set(saved["versions"]) and saved["versions"]["pyspark"].startswith("3.5")

    [model] = saved["inference"]["models"]
    spark_runs = [run for size in model["sizes"] for run in size["runs"]["spark"]]
    assert all(run["predictions"] + run["rejects"] == size["chips"] > 0 for size in model["sizes"] for run in size["runs"]["spark"])
    assert [size["chips"] for size in model["sizes"]] == [8, 16]  # a few and more, each from its own dataset
    assert all(sum(size["partition_rows"]) == size["chips"] for size in model["sizes"])
    assert all(set(size["chips_per_s"]) == {"spark", "numpy", "tf_data"} for size in model["sizes"])
    assert len(model["spark_fixed_cost"]["points"]) == 3
    assert 0 <= model["precision"]["top1_agreement"] <= 1 and model["precision"]["max_abs_prob_diff"] >= 0
    assert spark_runs[0]["resources"]["peak_mb"]["jvm"] > 0
    assert spark_runs[0]["resources"]["python_workers_max_count"] >= 1
    assert saved["inference"]["auto_path"]["local_path_run"]["chips"] == saved["preprocess"]["chips"]
    after_idle = model["after_idle_call"]  # a pause shorter than Spark's idle limit keeps the daemon and a worker per slot
    assert after_idle["predictions"] + after_idle["rejects"] == after_idle["chips"] == 8
    assert after_idle["python_processes_before"] >= 2 and after_idle["workers_replaced"] == 0

    pre = saved["preprocess"]
    pillow = pre["extraction"]["pillow_loop"]["runs"][0]
    assert pillow["chips"] + pillow["rejects"] == pre["extraction"]["boxes"]
    assert pillow["chips"] == pre["chips"]  # the loop cut what build_chip_dataset wrote
    assert set(pre["speedups"]) == {
        "build_chip_dataset_vs_pillow", "extract_chips_from_files_vs_pillow", "extract_chips_from_cache_vs_pillow"
    }

    one, two = saved["growth"]["rows"]
    assert two["selected_boxes"] == 2 * one["selected_boxes"]  # rows replicated exactly
    assert two["marginal_ms_per_box"] is not None

    assert len(saved["targets"]) == 6 and all(isinstance(t["met"], bool) for t in saved["targets"])
    kept = json.loads((tmp_path / "work" / "tiny" / "partial.json").read_text())  # what a stopped run would keep
    assert set(kept["stages"]) == {"preprocess", "growth", "large_images_extraction", "inference_mobilenet", "local_path"}
    assert saved["stages_kept_from_a_stopped_run"] == []
    markdown = paths["markdown"].read_text()
    assert "| Measurement |" in markdown and machine["cpu_model"] in markdown


def test_a_preprocessing_only_run_measures_those_stages_and_counts_each_call_s_spark_jobs(spark, tmp_path):
    results = run_benchmarks(spark, PROFILES["tiny"], tmp_path / "work", only="preprocess")

    assert results["inference"] is None and results["preprocess"]["chips"] > 0
    assert results["targets"] and all(t["name"].startswith("preprocess") for t in results["targets"])
    for row in results["growth"]["rows"]:  # read from the status tracker: no UI server needed
        work = row["spark_work"]
        assert work["jobs"] >= 1 and work["tasks"] >= work["stages"] >= 1
    assert any("Spark jobs" in note for note in results["notes"])


def test_a_stopped_benchmark_keeps_its_finished_stages_for_a_resumed_run_of_the_same_kind(tmp_path):
    path, identity, ran = tmp_path / "partial.json", {"profile": "full", "code_version": "abc"}, []

    def measure(name: str) -> Dict[str, Any]:
        ran.append(name)
        return {"seconds": len(ran)}

    first = Checkpoint(path, identity, resume=False)
    assert first.stage("preprocess", lambda: measure("preprocess")) == {"seconds": 1}
    # the run is stopped here: its next stage never finished

    resumed = Checkpoint(path, identity, resume=True)
    assert resumed.kept == ["preprocess"]
    assert resumed.stage("preprocess", lambda: measure("preprocess")) == {"seconds": 1}
    assert resumed.stage("inference_mobilenet", lambda: measure("inference")) == {"seconds": 2}
    assert ran == ["preprocess", "inference"]  # the kept stage did not run again

    other_code = Checkpoint(path, {**identity, "code_version": "def"}, resume=True)
    fresh = Checkpoint(path, identity, resume=False)
    assert other_code.kept == [] and fresh.kept == []  # other code, or no --resume: everything runs again
    assert fresh.stage("preprocess", lambda: measure("preprocess")) == {"seconds": 3}


def test_results_replace_only_the_section_of_the_measurements_page_between_the_markers(tmp_path):
    page = tmp_path / "benchmarks.md"
    page.write_text(f"# Manual\n\n## Measurements\n{RESULTS_START}\nold table\n{RESULTS_END}\n\n## After\n")
    embed_in_doc(page, "| new | table |\n")
    assert page.read_text() == f"# Manual\n\n## Measurements\n{RESULTS_START}\n| new | table |\n{RESULTS_END}\n\n## After\n"


def test_a_measurements_page_without_the_markers_is_refused_naming_them(tmp_path):
    page = tmp_path / "benchmarks.md"
    page.write_text("# Manual\n")
    with pytest.raises(ValueError, match="has no '<!-- make bench"):
        embed_in_doc(page, "| new | table |\n")
    assert page.read_text() == "# Manual\n"


@pytest.mark.spark
def test_the_scale_benchmark_selects_every_generated_big_cat_box_and_records_its_anchor(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_scale", "--scale", "0.002",
         "--data-dir", str(tmp_path / "data"), "--results-dir", str(tmp_path / "results")],
        cwd=PROJECT, capture_output=True, text=True, timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "results" / "scale-0.002.json").read_text())

    first = result["first_run"]["value"]
    assert first["selected_boxes"] == result["sizes"]["bigcat_boxes"]
    assert first["chips"] + first["rejects"] == first["selected_boxes"]
    # Spark lists every file of the folder but reads (and counts) only the non-empty ones:
    # the JPEGs of the big-cat images, beside the empty files that make the folder full size.
    assert result["listing_not_done"]["value"] == result["sizes"]["bigcat_images"]
    assert "duplicate_box" not in first["rejects_by_reason"]  # every generated box has its own coordinates
    second = result["second_selection"]["value"]
    assert 0 < second["selected_boxes"] < first["selected_boxes"]  # a real selection among the big cats
    # DuckDB counts the box rows whose class is positive on their image: ours less the filter's rejects.
    kept = second["selected_boxes"] - second["rejects_by_reason"].get("image_label_filter", 0)
    assert result["duckdb_second_selection"]["value"] == kept == result["second_selection_only"]["value"]
    assert result["first_from_cache"]["value"] == first
    csv_rows = sum(len(path.read_text().splitlines()) - 1 for path in (tmp_path / "data" / "oid").glob("*annotations-*.csv"))
    assert result["csv_parse"]["value"] == csv_rows  # every box and label row parsed
    assert first["chips"] > 0 and result["ratios"]["peak_total_pss_mb_max"] <= result["ratios"]["peak_total_mb_max"]
    assert result["ratios"]["second_selection_over_duckdb"] > 0 and result["machine"]["logical_cores"] >= 1
    assert result["versions"]


def test_the_parquet_bytes_benchmark_finds_every_needed_image_and_counts_what_it_read(tmp_path):
    needed, per_group, image_bytes = 8, 4, 8192
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_parquet_bytes", "--images", "64", "512", "--needed", str(needed),
         "--image-bytes", str(image_bytes), "--images-per-row-group", str(per_group), "--results-dir", str(tmp_path)],
        cwd=PROJECT, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "parquet_bytes.json").read_text())

    assert [s["found"] for s in result["sizes"]] == [needed, needed]
    assert [s["row_groups"] for s in result["sizes"]] == [16, 128]
    for size in result["sizes"]:
        # the needed rows cost their row groups' Data, whatever the table's size, plus the
        # footer (pyarrow reads the file's last 64 KiB to find it)
        footer = max(size["footer_bytes"], 65536)
        assert 0 < size["rows_bytes"] <= 1.05 * size["row_groups_touched"] * per_group * image_bytes + footer
        assert size["bytes_read_needed"] < size["bytes_read_whole_data_column"]
    largest = result["sizes"][-1]
    assert largest["rows_bytes"] < 0.25 * largest["bytes_read_whole_data_column"]
    assert result["ratios"]["table_growth"] > 7
