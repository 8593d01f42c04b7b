"""Progress: a bar with ETA on a terminal (run through a pty), one line per stage when piped."""
from __future__ import annotations

import os
import pty
import subprocess
import sys

import pytest

_LOOP = """
import logging
from bigcat_ml.runtime.console import configure_logging
from bigcat_ml.runtime.progress import progress
configure_logging()
with progress("predict mobilenet", 40, "chip") as done:
    for _ in range(4):
        done.update(10)
"""


def _env(**extra):
    """The test's environment less CI and the TensorFlow log level the test session sets."""
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "TF_CPP_MIN_LOG_LEVEL")}
    return {**env, **extra}


def _run_on_a_terminal(code: str, env) -> str:
    """Output of ``python -c code`` with stdout and stderr on a pseudo-terminal."""
    parent, child = pty.openpty()
    process = subprocess.Popen([sys.executable, "-c", code], stdout=child, stderr=child, env=env)
    os.close(child)
    chunks = []
    while True:
        try:
            chunk = os.read(parent, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(parent)
    assert process.wait(timeout=120) == 0
    return b"".join(chunks).decode("utf-8", "replace")


def test_a_terminal_gets_a_bar_with_rate_and_eta():
    out = _run_on_a_terminal(_LOOP, _env())
    assert "predict mobilenet:" in out and "40/40" in out and "chip/s" in out
    assert "<00:00" in out  # tqdm's elapsed<remaining (the ETA)
    assert "\r" in out


def test_piped_output_gets_one_line_at_the_start_and_end_of_a_stage_and_no_bar():
    done = subprocess.run([sys.executable, "-c", _LOOP], capture_output=True, text=True, env=_env(), timeout=120)
    assert "\r" not in done.stderr and "chip/s" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if "predict mobilenet" in line]
    assert len(lines) == 2
    assert lines[0].endswith("predict mobilenet: 40 chips…") and "predict mobilenet: 40 chips in" in lines[1]


def test_ci_gets_no_bar_even_on_a_terminal():
    out = _run_on_a_terminal(_LOOP, _env(CI="true"))
    assert "chip/s" not in out and "predict mobilenet: 40 chips in" in out


_SESSION = """
from bigcat_ml.stepkit.step import compose
from bigcat_ml.runtime.spark import get_spark
spark = get_spark(compose(["spark.master='local[1]'", "spark.conf.spark.driver.memory=1g"]).spark)
print("PROGRESS=" + spark.conf.get("spark.ui.showConsoleProgress"))
print("WORKERS=" + spark.conf.get("spark.executorEnv.BIGCAT_VERBOSE") + "," + spark.conf.get("spark.executorEnv.TF_CPP_MIN_LOG_LEVEL"))
spark.stop()
"""


@pytest.mark.spark
@pytest.mark.parametrize("verbose", ["0", "1"])
def test_spark_start_up_notices_only_show_when_verbose(verbose):
    done = subprocess.run(
        [sys.executable, "-c", _SESSION], capture_output=True, text=True, env=_env(BIGCAT_VERBOSE=verbose), timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "PROGRESS=false" in done.stdout  # piped: no console progress bar
    assert ("NativeCodeLoader" in done.stderr) == (verbose == "1")
    # Python workers on any cluster get the same choice (they import TensorFlow)
    assert f"WORKERS={verbose},{'0' if verbose == '1' else '2'}" in done.stdout


@pytest.mark.spark
def test_spark_draws_its_console_progress_bar_on_a_terminal():
    out = _run_on_a_terminal(_SESSION, _env(BIGCAT_VERBOSE="0"))
    assert "PROGRESS=true" in out and "NativeCodeLoader" not in out


_PHASES = """
from bigcat_ml.runtime.console import configure_logging
from bigcat_ml.runtime.progress import phases
configure_logging()
with phases("preprocess", ["select classes", "cut and write chips"]) as begin:
    begin("select classes")
    begin("cut and write chips")
"""


def test_piped_output_gets_a_line_per_phase_of_a_long_step_and_one_at_its_end():
    done = subprocess.run([sys.executable, "-c", _PHASES], capture_output=True, text=True, env=_env(), timeout=120)
    lines = [line.split(" - ", 1)[-1].split(": ", 1)[-1] for line in done.stderr.splitlines()]
    assert lines[:3] == ["preprocess: 2 phases…", "preprocess 1/2: select classes…", "preprocess 2/2: cut and write chips…"]
    assert lines[3].startswith("preprocess: 2 phases in ") and len(lines) == 4


def test_a_terminal_gets_a_bar_over_the_phases_with_the_current_one():
    out = _run_on_a_terminal(_PHASES, _env())
    assert "preprocess:" in out and "2/2" in out and "cut and write chips" in out and "\r" in out
