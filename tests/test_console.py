"""The console: a report on stdout by default, every library's detail with ``verbose``."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bigcat_ml.runtime import console

# An entry point's console (configure_logging as Hydra's job logging leaves it: a handler
# on stdout), then what a step says: a summary, a log line, progress, a warning, and the
# libraries' known harmless warnings.
_STEP = """
import logging, sys, warnings
logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="[%(name)s][%(levelname)s] - %(message)s")
from bigcat_ml.runtime.console import KNOWN_HARMLESS_WARNINGS, configure_logging
from bigcat_ml.runtime.progress import progress
configure_logging()
print("evaluate mobilenet: 18 chips")
logging.getLogger("bigcat_ml.scoring.inference.classifier").info("predicted 18 chips")
logging.getLogger("bigcat_ml.scoring.inference.classifier").warning("model 'mobilenet' has random-init weights")
logging.getLogger("tensorflow").warning("5 out of the last 5 calls to <function f> triggered tf.function retracing.")
with progress("predict mobilenet", 18, "chip") as done:
    done.update(18)
for message, category, _ in KNOWN_HARMLESS_WARNINGS:
    warnings.warn(message + " (as the library says it)", category)
"""


def _run(verbose: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTHONWARNINGS")}
    done = subprocess.run([sys.executable, "-c", _STEP], capture_output=True, text=True, timeout=120,
                          env={**env, console.VERBOSE_ENV: verbose})
    assert done.returncode == 0, done.stderr
    return done


def test_by_default_stdout_holds_summaries_and_progress_and_stderr_only_the_warnings():
    done = _run("0")
    assert done.stdout.splitlines() == [
        "evaluate mobilenet: 18 chips",
        "[bigcat_ml.runtime.progress][INFO] - predict mobilenet: 18 chips…",
        done.stdout.splitlines()[-1],
    ] and "predict mobilenet: 18 chips in" in done.stdout.splitlines()[-1]
    assert done.stderr.splitlines() == ["WARNING bigcat_ml.scoring.inference.classifier: model 'mobilenet' has random-init weights"]


def test_verbose_shows_the_log_lines_and_the_libraries_warnings():
    done = _run("1")
    assert "[bigcat_ml.scoring.inference.classifier][INFO] - predicted 18 chips" in done.stdout
    assert "triggered tf.function retracing" in done.stdout
    assert all(message in done.stderr for message, _, _ in console.KNOWN_HARMLESS_WARNINGS)


@pytest.mark.parametrize("verbose", ["0", "1"])
def test_spark_python_workers_ignore_the_known_harmless_warnings_unless_verbose(monkeypatch, verbose):
    monkeypatch.setenv(console.VERBOSE_ENV, verbose)
    monkeypatch.setenv("PYTHONWARNINGS", "error::ResourceWarning")
    filters = console.worker_env().get("PYTHONWARNINGS", "")
    code = "import warnings\nfrom bigcat_ml.runtime.console import KNOWN_HARMLESS_WARNINGS as known\n" \
           "for message, category, _ in known:\n    warnings.warn(message, category)\n"
    env = {**os.environ, "PYTHONWARNINGS": filters}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert (done.stderr == "") == (verbose == "0")
    if verbose == "0":
        assert filters.startswith("error::ResourceWarning,")  # the user's own filters are kept


_DOWNLOAD = """
import sys
import mlflow
from bigcat_ml.runtime.console import set_verbose
set_verbose(sys.argv[1] == "1")
mlflow.set_tracking_uri(sys.argv[2])
with mlflow.start_run() as run:
    mlflow.log_text("x", "a.txt")
mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="a.txt", dst_path=sys.argv[3])
"""


@pytest.mark.parametrize("verbose", ["0", "1"])
def test_mlflow_draws_its_artifact_download_bars_only_when_verbose(tmp_path, verbose):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    done = subprocess.run([sys.executable, "-c", _DOWNLOAD, verbose, f"sqlite:///{tmp_path}/mlflow.db", str(tmp_path)],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert ("Downloading artifacts" in done.stderr) == (verbose == "1")
