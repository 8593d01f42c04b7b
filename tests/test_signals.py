"""SIGTERM stops a running ``main`` cleanly: its MLflow runs end as KILLED, the half-written
dataset's staging folder is deleted and Spark is stopped."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest

from bigcat_ml.stepkit.step import compose
from bigcat_ml.tracking.names import STEP_TAG
from bigcat_ml.tracking.runs import setup_tracking

PROJECT = Path(__file__).resolve().parents[1]
CHAIN = ["model.weights=null", "data.sample.images_per_subset={train:8,validation:3,test:3}", "spark.master='local[2]'"]
STAGING_LINE = "writing the chip dataset to"

pytestmark = [pytest.mark.spark, pytest.mark.slow]


def test_sigterm_ends_runs_as_killed_deletes_staging_and_stops_spark(tmp_path):
    out = tmp_path / "outputs"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    main = subprocess.Popen(
        # verbose: the step's own log lines say when the staging folder exists
        [sys.executable, "-m", "bigcat_ml.main", f"paths.output_dir={out}", *CHAIN, "verbose=true"],
        cwd=PROJECT, env={**env, "PYTHONPATH": str(PROJECT)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    seen = []
    try:
        for line in main.stdout:  # the step's own log (Hydra's, on stdout) says when the staging folder exists
            seen.append(line)
            if STAGING_LINE in line:
                main.send_signal(signal.SIGTERM)
                break
        rest = main.communicate(timeout=600)[0]
    finally:
        if main.poll() is None:
            main.kill()
    log = "".join(seen) + rest

    assert any(STAGING_LINE in line for line in seen), log[-3000:]
    assert main.returncode == 128 + signal.SIGTERM, log[-3000:]
    staging = log.split(STAGING_LINE, 1)[1].split(",", 1)[0].strip()
    assert ".tmp-" in staging and not Path(staging).exists()
    assert not [p.name for p in Path(staging).parent.iterdir() if ".tmp-" in p.name or ".lock-" in p.name]
    assert "Spark stopped" in log and "stopped Spark" in log
    cfg = compose([f"paths.output_dir={out}", *CHAIN])
    runs = mlflow.search_runs([setup_tracking(cfg.mlflow)])
    status = dict(zip(runs[f"tags.{STEP_TAG}"], runs["status"]))
    assert status == {"sample_data": "FINISHED", "preprocess": "KILLED", "main": "KILLED"}
