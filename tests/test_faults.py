"""Faults while running: retried tasks, a killed driver, and repeated runs.

Each step runs once, unfaulted, in this process (the reference); faulted runs go to a
subprocess with a Spark session of their own, because local-mode task retries are set
by the master URL (``local[N,maxFailures]``) and the shared test session has none.
A retried or repeated run must give the reference's dataset digest, predictions and
metrics exactly.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

import pandas as pd
import pytest
from helpers.evaluations import model_overrides, predictions, result_metrics, save_tiny_weights
from helpers.runs import SAMPLE, cfg_for, runs

from helpers.faults import fail_once_in_workers, marker

from bigcat_ml import evaluate, preprocess
from bigcat_ml.stepkit.step import compose
from bigcat_ml.chips.manifest import read_summary
from bigcat_ml.synthetic.write import generate_sample

PROJECT = Path(__file__).resolve().parents[1]
RETRYING = "spark.master='local[2,2]'"  # two threads, each task tried up to twice
STAGED = "STAGED"
# Runs the preprocess entry point, but stops for good once the chips and rejects are in
# the staging folder and before it is moved to the output: the test kills it there.
STOP_BEFORE_MOVE = f"""
import sys
import bigcat_ml.chips.writer as writer
from bigcat_ml import preprocess

measure = writer.stored_counts

def measure_then_wait(folder):
    counts = measure(folder)
    print("{STAGED}", folder, flush=True)
    sys.stdin.read()  # blocks until the test kills this process
    return counts

writer.stored_counts = measure_then_wait
preprocess.main()
"""

pytestmark = [pytest.mark.spark, pytest.mark.slow]





@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    return save_tiny_weights(tmp_path_factory.mktemp("weights"))





@pytest.fixture(scope="module")
def reference(weights, spark, tmp_path_factory) -> Dict[str, Any]:
    """The sample, one unfaulted preprocess and one unfaulted evaluate, in this process."""
    out = tmp_path_factory.mktemp("reference") / "outputs"
    cfg = cfg_for(out, *model_overrides(weights))
    generate_sample(Path(cfg.data.root), cfg.data.sample)
    summary = preprocess.run(cfg)["summary"]
    run_id = evaluate.run(cfg)["run_id"]
    return {"out": out, "weights": weights, "cfg": cfg, "summary": summary, "evaluate_run": run_id}


def reference_overrides(reference, *overrides: str) -> List[str]:
    """The reference's config (same sample, same MLflow store) plus ``overrides``."""
    return [f"paths.output_dir={reference['out']}", *SAMPLE, *model_overrides(reference["weights"]), *overrides]


def python(args: List[str], extra_env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    env = {**{k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}, **(extra_env or {})}
    return subprocess.run([sys.executable, *args], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=600)


def newest_run(cfg, step: str, other_than: str) -> str:
    found = runs(cfg, step)
    found = found[found["run_id"] != other_than].sort_values("start_time", ascending=False)
    assert list(found["status"][:1]) == ["FINISHED"], found[["run_id", "status"]]
    return str(found["run_id"].iloc[0])





# ----------------------------------------------------------------------- retried tasks


def test_a_chip_extraction_task_that_fails_once_is_retried_and_the_dataset_is_unchanged(reference, tmp_path):
    output = tmp_path / "retried"
    fault, env = fail_once_in_workers("bigcat_ml.chips.extract", "_extract_partition", tmp_path)
    done = python(["-m", "bigcat_ml.preprocess", *reference_overrides(reference, RETRYING, f"preprocess.output={output}", *fault)], env)
    assert done.returncode == 0, done.stderr[-4000:]
    assert marker(tmp_path, "_extract_partition").exists()  # an attempt failed...
    assert "injected fault: _extract_partition fails once" in done.stderr  # ...and Spark logged the lost task
    retried, expected = read_summary(str(output)), reference["summary"]
    assert retried["content_digest"] == expected["content_digest"]
    assert (retried["chips"], retried["rejects_by_reason"]) == (expected["chips"], expected["rejects_by_reason"])


def test_an_inference_task_that_fails_once_is_retried_and_the_predictions_are_unchanged(reference, tmp_path):
    cfg = reference["cfg"]
    fault, env = fail_once_in_workers("bigcat_ml.scoring.inference.spark", "make_predict_fn", tmp_path)
    done = python(["-m", "bigcat_ml.evaluate", *reference_overrides(reference, RETRYING, "evaluate.path=spark", *fault)], env)
    assert done.returncode == 0, done.stderr[-4000:]
    assert marker(tmp_path, "make_predict_fn").exists()
    assert "injected fault: make_predict_fn fails once" in done.stderr
    retried = newest_run(cfg, "evaluate", other_than=reference["evaluate_run"])
    expected = predictions(cfg, reference["evaluate_run"], tmp_path / "expected")
    assert len(expected) == reference["summary"]["chips"]
    pd.testing.assert_frame_equal(predictions(cfg, retried, tmp_path / "retried"), expected)
    assert result_metrics(cfg, retried) == result_metrics(cfg, reference["evaluate_run"])


# --------------------------------------------------------------------- a killed driver


def test_a_preprocess_killed_before_its_output_is_moved_leaves_no_output_and_a_rerun_succeeds(reference, spark, tmp_path):
    output = tmp_path / "chips_dataset"
    script = tmp_path / "stop_before_move.py"
    script.write_text(STOP_BEFORE_MOVE)
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    with open(tmp_path / "stderr.log", "w") as stderr:
        driver = subprocess.Popen(
            [sys.executable, str(script), *reference_overrides(reference, f"preprocess.output={output}")],
            cwd=PROJECT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True,
            start_new_session=True,  # its own process group: the JVM and Python workers die with it
        )
        try:
            staged = next((line for line in driver.stdout if line.startswith(STAGED)), None)  # EOF: it died
            assert staged, (tmp_path / "stderr.log").read_text()[-4000:]
            staging = Path(staged.split(maxsplit=1)[1].strip())
            assert (staging / "chips").is_dir() and (staging / "rejects").is_dir()
            assert not output.exists()
        finally:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait(timeout=60)
    assert driver.returncode == -signal.SIGKILL
    assert not output.exists()
    with pytest.raises(FileNotFoundError, match="no summary.json"):
        read_summary(str(output))

    cfg = compose(reference_overrides(reference, f"preprocess.output={output}"))
    rerun = preprocess.run(cfg)["summary"]
    assert rerun["content_digest"] == reference["summary"]["content_digest"]
    assert read_summary(str(output)) == rerun


# -------------------------------------------------------------------- repeatable runs


def test_the_same_config_gives_the_same_dataset_digest_twice(reference, tmp_path):
    cfg = compose(reference_overrides(reference, f"preprocess.output={tmp_path / 'again'}"))
    again = preprocess.run(cfg)["summary"]
    assert again["content_digest"] == reference["summary"]["content_digest"]
    assert again["chips"] == reference["summary"]["chips"] > 0


def test_the_same_config_gives_identical_predictions_and_metrics_twice(reference, tmp_path):
    cfg = reference["cfg"]
    again = evaluate.run(cfg)["run_id"]
    first = predictions(cfg, reference["evaluate_run"], tmp_path / "first")
    pd.testing.assert_frame_equal(predictions(cfg, again, tmp_path / "again"), first)
    assert first["top_k_indices"].map(lambda top: top[0]).nunique() > 1  # predictions depend on the chip
    metrics = result_metrics(cfg, again)
    assert {"top1_accuracy", "top5_accuracy", "ece"} <= set(metrics)
    assert metrics == result_metrics(cfg, reference["evaluate_run"])
