"""Every command the README shows is run: by a named test, by ``make demo``, or here.

A command added to the README without a row below fails the first test, so what is not
tested is not advertised.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import readme
from helpers.runs import TINY_SAMPLE

PROJECT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent

# Runs here, word for word, on the tiny sample with random weights (no internet): the test
# appends its own data size, weights and output folder, which win as Hydra's last word.
RUN_HERE = "run here"
COVERED = {
    "make demo": "Makefile demo (.ci/run)",
    "make test": "Makefile test (.ci/run)",
    "make test-e2e": "Makefile test-e2e (.ci/run)",
    "make mlflow-ui": "tests/test_mlflow_project.py::test_the_printed_ui_url_is_the_experiments_runs_in_model_training_mode",
    "export MLFLOW_TRACKING_URI=sqlite:///$PWD/outputs/mlflow/mlflow.db":
        "tests/test_mlflow_project.py::test_readme_mlflow_run_without_experiment_name_logs_under_the_handed_over_experiment",
    'mlflow run . --env-manager local -P overrides="model=resnet50 model.weights=null"':
        "tests/test_mlflow_project.py::test_readme_mlflow_run_without_experiment_name_logs_under_the_handed_over_experiment",
    'mlflow run . --env-manager local -P overrides="-m model=mobilenet,resnet50 model.weights=null"':
        "tests/test_mlflow_project.py::test_a_readme_sweep_keeps_the_project_run_as_parent_of_every_job",
    "mlflow run . --env-manager local -e compare":
        "tests/test_mlflow_project.py::test_the_server_shows_the_runs_dataset_inputs_figures_and_tables_of_evaluate",
    'mlflow run . --env-manager local -e preprocess -P overrides="preprocess.padding=0.1 preprocess.overwrite=true"':
        "tests/test_mlflow_project.py::test_readme_mlflow_run_without_experiment_name_logs_under_the_handed_over_experiment",
    'mlflow run . --env-manager local -e train -P overrides="model.weights=null model.input_size=64 train.epochs=2"':
        "tests/test_mlflow_project.py::test_readme_mlflow_run_without_experiment_name_logs_under_the_handed_over_experiment",
    'mlflow run . --env-manager local --experiment-name bigcat_ml -P overrides="model.weights=null"':
        "tests/test_mlflow_project.py::test_readme_mlflow_run_with_experiment_name_logs_there",
    "python -m bigcat_ml.main model=resnet50 preprocess.padding=0.1": RUN_HERE,
    "python -m bigcat_ml.main -m model=mobilenet,mobilenet_v2,resnet50": RUN_HERE,
    "python -m bigcat_ml.main spark.conf.spark.driver.memory=8g": RUN_HERE,
    "python -m bigcat_ml.main 'classes.names=[Tiger,Lion]' classes.name=two_cats": RUN_HERE,
    "python -m bigcat_ml.main --cfg job": RUN_HERE,
    "export OID_ROOT=/data/open-images-v6": RUN_HERE,
    "python -m bigcat_ml.main data=oid model.weights=imagenet": RUN_HERE,
    # quoted in the prose
    "make demo DEMO_WEIGHTS=imagenet": "tests/test_readme_commands.py::test_make_demo_passes_demo_weights_to_every_model",
    "make venv": "Makefile test and demo (.ci/run), whose prerequisite it is",
    "make cluster-test": "Makefile cluster-test (.ci/run)",
    "make bench": "tests/test_benchmarks.py::test_tiny_benchmark_writes_machine_versions_ratios_and_targets",
    "make bench-scale": "tests/test_benchmarks.py::test_the_scale_benchmark_selects_every_generated_big_cat_box_and_records_its_anchor",
    "make imagenet-map": "tests/test_wordnet_map.py::test_deriving_from_wordnet_reproduces_the_shipped_table",
    "python -m bigcat_ml.sample_data": "tests/test_sample_data.py::test_entry_point_writes_the_sample_and_logs_an_mlflow_run",
    "python -m bigcat_ml.preprocess":
        "tests/test_faults.py::test_a_chip_extraction_task_that_fails_once_is_retried_and_the_dataset_is_unchanged",
    "python -m bigcat_ml.evaluate model=resnet50": "tests/test_main.py::test_verbose_shows_tensorflow_start_up_logs",
    "python -m bigcat_ml.train model=mobilenet":
        "tests/test_cluster.py::test_data_parallel_training_on_the_cluster_logs_validation_and_registers_the_model",
    "python -m bigcat_ml.main": "Makefile demo (.ci/run)",
    "python -m bigcat_ml.compare": "Makefile demo (.ci/run)",
    ".venv/bin/python -m bigcat_ml.cli.ui":
        "tests/test_mlflow_project.py::test_the_printed_ui_url_is_the_experiments_runs_in_model_training_mode",
}


def test_every_readme_command_is_covered():
    assert readme.bash_commands() and readme.inline_commands()
    assert set(readme.commands()) == set(COVERED)


@pytest.mark.parametrize("where", sorted({w for w in COVERED.values() if "::" in w}))
def test_the_covering_tests_exist(where):
    path, name = where.split("::")
    assert re.search(rf"^def {name}\(", (PROJECT / path).read_text(), re.M), where


def test_the_make_targets_run_what_the_readme_says():
    makefile = (PROJECT / "Makefile").read_text()
    assert re.search(r"^mlflow-ui:.*\n\t\$\(PY\) -m bigcat_ml\.cli\.ui$", makefile, re.M)
    assert re.search(r"^demo:.*\n\t\$\(PY\) -m bigcat_ml\.main -m model=mobilenet,resnet50", makefile, re.M)
    ci = (PROJECT / ".ci" / "run").read_text()
    assert all(f"make {target}\n" in ci for target in ("test", "test-e2e", "cluster-test", "demo"))
    assert re.search(r"^test: \$\(STAMP\)$", makefile, re.M) and re.search(r"^venv: \$\(STAMP\)$", makefile, re.M)
    assert re.search(r"^test-e2e: \$\(STAMP\)\n\t\$\(PY\) -m pytest -m e2e$", makefile, re.M)


def test_make_demo_passes_demo_weights_to_every_model():
    """Online, ``make demo DEMO_WEIGHTS=imagenet`` uses the ImageNet weights in every run that
    builds a model (the download itself needs internet: make's dry run shows the commands)."""
    done = subprocess.run(["make", "-n", "demo", "DEMO_WEIGHTS=imagenet"], cwd=PROJECT, capture_output=True, text=True, check=True)
    runs = [line for line in done.stdout.splitlines() if "-m bigcat_ml.main" in line]
    assert len(runs) == 2 and all("model.weights=imagenet" in line for line in runs)


def _env(out: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    return {**env, "BIGCAT_OUTPUT_DIR": str(out), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"}


@pytest.mark.spark
@pytest.mark.slow
@pytest.mark.e2e
def test_readme_python_commands_run_on_the_tiny_sample(tmp_path):
    """In README order on one output folder, so later commands reuse earlier steps."""
    out = tmp_path / "outputs"
    commands = [c for c, where in COVERED.items() if where == RUN_HERE and c in readme.bash_commands()]
    test_words = " ".join(shlex.quote(word) for word in [*TINY_SAMPLE, "model.weights=null"])
    oid_root = None
    for command in commands:
        if command.startswith("export OID_ROOT="):
            # the generated sample is in the Open Images layout, with its images one level down
            oid_root = out / "data" / "sample"
            continue
        if "data=oid" in command:
            # data=oid has no data.sample.* keys; the images are where the sample put them
            words = " ".join(shlex.quote(w) for w in (TINY_SAMPLE[1], "model.weights=null", f"data.images_path={oid_root}/images"))
        else:
            words = test_words
        env = _env(out) if oid_root is None else {**_env(out), "OID_ROOT": str(oid_root)}
        done = subprocess.run(["bash", "-c", f"{command} {words}"], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=1800)
        assert done.returncode == 0, f"{command}\n{done.stderr[-4000:]}"
        if command.endswith("--cfg job"):
            assert "model:" in done.stdout
        else:
            assert "workflowType=machine_learning" in done.stdout  # main says where the UI shows it


GUARANTEES = PROJECT / "docs" / "guarantees.md"


def _guarantee_tests() -> list:
    """Every ``tests/<file>.py::<name>`` the guarantees page names (``::name`` and a bare
    ``<file>.py::`` take the file named before them on the row)."""
    named = []
    for row in GUARANTEES.read_text().splitlines():
        if not row.startswith("| ") or row.startswith("| guarantee"):
            continue
        current = None
        for path, name in re.findall(r"`(?:tests/)?((?:test_\w+\.py)?)(?:::(\w+))?`", row.split(" | ")[-1]):
            current = path or current
            named.append((current, name))
    return named


def test_every_test_the_guarantees_page_names_exists():
    named = _guarantee_tests()
    assert len(named) > 40
    missing = [f"{path}::{name}" for path, name in named
               if not (TESTS / path).is_file() or (name and not re.search(rf"^def {name}\(", (TESTS / path).read_text(), re.M))]
    assert not missing
