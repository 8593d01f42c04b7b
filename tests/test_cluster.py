"""The whole chain on a real Spark standalone cluster gives exactly the local results.

``make cluster-test`` runs these (``pytest -m cluster``). A master and two one-core
workers start on loopback; ``python -m bigcat_ml.main`` runs once with
``spark=standalone`` against them and once in local mode, each in a fresh driver
process, with the same generated sample and the same weights file. The executors run
this venv's Python and fetch the weights file from the driver by path (``addFile``).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pandas as pd
import pytest
from helpers.cluster import standalone_cluster
from helpers.evaluations import model_overrides, predictions, result_metrics, save_tiny_weights
from helpers.runs import SAMPLE, runs

from bigcat_ml.stepkit.step import compose

PROJECT = Path(__file__).resolve().parents[1]
CHAIN_SECONDS = 420
APP_NAME = "bigcat_ml"
# Within a 2-core, 24 GiB machine shared with other work: 1 GiB per executor JVM (the
# Python workers and TensorFlow live outside it), the driver at spark/standalone's 2g.
CLUSTER = ["spark=standalone", "spark.conf.spark.executor.memory=1g"]
# The executors' Python is read from PYSPARK_PYTHON when the driver is a plain Python
# process (pyspark's SparkContext.pythonExec); get_spark exports spark.pyspark.python to it.
DRIVER_ENV = {"SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable}
PROBE = """
import sys
from bigcat_ml.stepkit.step import compose
from bigcat_ml.runtime.spark import get_spark
spark = get_spark(compose(sys.argv[1:]).spark)
print(spark.sparkContext.parallelize([0], 1).map(lambda _: sys.executable).first())
spark.stop()
"""

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    return save_tiny_weights(tmp_path_factory.mktemp("weights"))


def chain_overrides(out: Path, weights: Path) -> List[str]:
    """The same sample and model in every mode; the spark settings are added per mode."""
    sample = [o for o in SAMPLE if not o.startswith("spark.")]
    return [f"paths.output_dir={out}", *sample, *model_overrides(weights)]


def run_chain(overrides: List[str], env: Dict[str, str]) -> subprocess.CompletedProcess:
    """``python -m bigcat_ml.main`` in its own process group, killed whole on a timeout."""
    env = {**{k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}, **env}
    command = [sys.executable, "-m", "bigcat_ml.main", *overrides]
    driver = subprocess.Popen(command, cwd=PROJECT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, start_new_session=True)
    try:
        stdout, stderr = driver.communicate(timeout=CHAIN_SECONDS)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()
    return subprocess.CompletedProcess(command, driver.returncode, stdout, stderr)


def step_run(out: Path, weights: Path, step: str) -> pd.Series:
    cfg = compose(chain_overrides(out, weights))
    found = runs(cfg, step)
    assert list(found["status"]) == ["FINISHED"], found[["run_id", "status"]]
    return found.iloc[0]


@pytest.fixture(scope="module")
def local_chain(weights, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("local") / "outputs"
    done = run_chain([*chain_overrides(out, weights), "spark.master='local[2]'", "spark.conf.spark.driver.memory=2g"], {})
    assert done.returncode == 0, done.stderr[-4000:]
    return out


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A master and two one-core workers for this module; stopped even when a test fails."""
    with standalone_cluster(tmp_path_factory.mktemp("cluster"), workers=2, cores=1, memory="2g") as running:
        yield running


@pytest.fixture(scope="module")
def cluster_chain(cluster, weights, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("standalone") / "outputs"
    done = run_chain([*chain_overrides(out, weights), *CLUSTER, f"spark.master={cluster.url}"], DRIVER_ENV)
    assert done.returncode == 0, done.stderr[-4000:] + cluster.log_tails()
    return out


def application_dir(cluster) -> Path:
    """The work folder of the one application the chain ran (finished, or just finishing)."""
    state = cluster.state()
    [app] = [app for app in state["activeapps"] + state["completedapps"] if app["name"] == APP_NAME]
    return cluster.work_dir / app["id"]


def test_the_chain_ran_on_the_cluster_executors(cluster_chain, cluster):
    executors = [p for p in application_dir(cluster).iterdir() if p.is_dir()]
    assert len(executors) == 2  # one per one-core worker


def test_the_weights_file_reached_every_executor_by_path(cluster_chain, cluster, weights):
    fetched = sorted(application_dir(cluster).glob(f"*/*-{weights.name}"))
    assert len(fetched) == 2
    assert all(f.read_bytes() == weights.read_bytes() for f in fetched)


def test_the_cluster_builds_the_same_chip_dataset_as_local_mode(local_chain, cluster_chain, weights):
    local = step_run(local_chain, weights, "preprocess")
    remote = step_run(cluster_chain, weights, "preprocess")
    assert remote["tags.bigcat.dataset_digest"] == local["tags.bigcat.dataset_digest"]
    assert remote["metrics.chips"] == local["metrics.chips"] > 0


def test_the_cluster_gives_the_same_predictions_and_metrics_as_local_mode(local_chain, cluster_chain, weights, tmp_path):
    results = {}
    for name, out in (("local", local_chain), ("cluster", cluster_chain)):
        cfg = compose(chain_overrides(out, weights))
        run_id = step_run(out, weights, "evaluate")["run_id"]
        results[name] = predictions(cfg, run_id, tmp_path / name), result_metrics(cfg, run_id)
    (local_predictions, local_metrics), (cluster_predictions, cluster_metrics) = results["local"], results["cluster"]
    assert local_predictions["top_k_indices"].map(lambda top: top[0]).nunique() > 1  # predictions depend on the chip
    pd.testing.assert_frame_equal(cluster_predictions, local_predictions)
    assert cluster_metrics == local_metrics


def test_the_spark_pyspark_python_setting_alone_chooses_the_executors_python(cluster, tmp_path):
    overrides = [*CLUSTER, f"spark.master={cluster.url}", "+spark.conf.spark.pyspark.python=" + sys.executable]
    env = {k: v for k, v in os.environ.items() if k not in ("PYSPARK_PYTHON", "MLFLOW_TRACKING_URI")}
    done = subprocess.run([sys.executable, "-c", PROBE, *overrides], cwd=tmp_path, capture_output=True, text=True,
                          env={**env, "SPARK_LOCAL_IP": "127.0.0.1"}, timeout=CHAIN_SECONDS)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == sys.executable


def test_data_parallel_training_on_the_cluster_logs_validation_and_registers_the_model(cluster, cluster_chain, weights):
    """``train`` with ``train.strategy=spark_barrier``: MultiWorkerMirroredStrategy over two barrier tasks."""
    overrides = [
        *chain_overrides(cluster_chain, weights), *CLUSTER, f"spark.master={cluster.url}",
        "model.weights=null", "train.strategy=spark_barrier", "train.num_workers=2", "train.epochs=2", "train.batch_size=8",
    ]
    env = {**{k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}, **DRIVER_ENV}
    done = subprocess.run([sys.executable, "-m", "bigcat_ml.train", *overrides], cwd=PROJECT, env=env,
                          capture_output=True, text=True, timeout=CHAIN_SECONDS)
    assert done.returncode == 0, done.stderr[-4000:] + cluster.log_tails()
    cfg = compose(overrides)
    [trained] = [row for _, row in runs(cfg, "train").iterrows()]
    assert trained["status"] == "FINISHED" and trained["tags.bigcat.training"].endswith("spark_barrier x2")
    assert trained["metrics.val_loss"] > 0 and trained["metrics.best_epoch"] >= 1
    import mlflow

    [version] = mlflow.MlflowClient().search_model_versions(f"name = '{cfg.train.registered_model_name}'")
    assert version.run_id == trained["run_id"]
