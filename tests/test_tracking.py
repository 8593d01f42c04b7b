"""The MLflow helper: store, experiment tag, logged config, FAILED runs, step keys."""
from __future__ import annotations

import json

import mlflow
import pytest

from bigcat_ml.tracking.names import (
    CODE_VERSION_TAG, ERROR_TAG, HEADLINE_METRICS, NOTE_TAG, STEP_KEY_TAG, STEP_TAG, THROUGHPUT_METRIC,
)
from bigcat_ml.tracking.reuse import find_finished_run, step_key
from bigcat_ml.tracking.runs import code_version, setup_tracking, step_run
from bigcat_ml.tracking.ui import DEFAULT_VIEW_KEY, SHARED_VIEW_TAG_PREFIX, experiment_url, how_to_open


def test_local_store_is_sqlite_under_the_output_dir(make_cfg, tmp_path):
    cfg = make_cfg()
    experiment_id = setup_tracking(cfg.mlflow)
    assert (tmp_path / "outputs" / "mlflow" / "mlflow.db").exists()
    experiment = mlflow.get_experiment(experiment_id)
    assert experiment.name == "bigcat_ml"
    assert experiment.artifact_location == (tmp_path / "outputs" / "mlflow" / "artifacts").as_uri()


def test_the_experiment_handed_over_by_mlflow_run_wins_over_the_configured_name(make_cfg, monkeypatch):
    cfg = make_cfg()
    setup_tracking(cfg.mlflow)
    handed_over = mlflow.create_experiment("chosen by mlflow run")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", handed_over)
    assert setup_tracking(cfg.mlflow) == handed_over
    with step_run(cfg, "sample_data") as run:
        assert run.info.experiment_id == handed_over


def test_the_first_step_run_under_mlflow_run_is_the_project_run(make_cfg, monkeypatch):
    cfg = make_cfg()
    experiment_id = setup_tracking(cfg.mlflow)
    project_run = mlflow.MlflowClient().create_run(experiment_id).info.run_id  # what `mlflow run` makes
    monkeypatch.setenv("MLFLOW_RUN_ID", project_run)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", experiment_id)
    with step_run(cfg, "preprocess") as run:
        assert run.info.run_id == project_run
    assert mlflow.get_run(project_run).data.tags[STEP_TAG] == "preprocess"


def test_every_step_run_carries_the_code_version(make_cfg):
    with step_run(make_cfg(), "main") as run:
        run_id = run.info.run_id
    assert mlflow.get_run(run_id).data.tags[CODE_VERSION_TAG] == code_version()


def test_printed_ui_urls_open_the_experiment_s_runs_on_model_training_in_the_default_view():
    view = "workflowType=machine_learning&viewStateShareKey=bigcat_default"
    assert experiment_url("http://127.0.0.1:5000", "3") == f"http://127.0.0.1:5000/#/experiments/3/runs?{view}"
    assert f"http://tracker:5000/#/experiments/7/runs?{view}" in how_to_open("http://tracker:5000", "7")
    local = how_to_open("sqlite:////tmp/x/mlflow.db", "1")
    assert "python -m bigcat_ml.cli.ui --backend-store-uri sqlite:////tmp/x/mlflow.db" in local
    assert f"http://127.0.0.1:5000/#/experiments/1/runs?{view}" in local


def test_every_experiment_holds_the_default_view_its_url_opens_with_the_headline_metric_columns(make_cfg):
    experiment_id = setup_tracking(make_cfg().mlflow)
    tags = mlflow.get_experiment(experiment_id).tags
    view = json.loads(tags[SHARED_VIEW_TAG_PREFIX + DEFAULT_VIEW_KEY])
    assert view["selectedColumns"][:2] == ["metrics.`top1_accuracy`", "metrics.`top5_accuracy`"]
    assert "params.`model.name`" in view["selectedColumns"]
    assert [chart["metricKey"] for chart in view["compareRunCharts"]] == [*HEADLINE_METRICS, THROUGHPUT_METRIC]


def test_step_run_logs_flattened_config_yaml_and_step_tag(make_cfg):
    cfg = make_cfg(["model=resnet50"])
    with step_run(cfg, "evaluate", key="k1") as run:
        run_id = run.info.run_id
    finished = mlflow.get_run(run_id)
    assert finished.data.params["model.keras_class"] == "ResNet50"
    assert finished.data.params["data.sample.images_per_subset.train"] == "12"
    assert finished.data.tags[STEP_TAG] == "evaluate"
    assert finished.data.tags[STEP_KEY_TAG] == "k1"
    assert "keras_class: ResNet50" in mlflow.artifacts.load_text(f"runs:/{run_id}/config.yaml")


def test_a_step_that_raises_leaves_a_failed_run_that_is_never_reused(make_cfg):
    cfg = make_cfg()
    with pytest.raises(RuntimeError, match="boom"):
        with step_run(cfg, "preprocess", key="k2") as run:
            run_id = run.info.run_id
            raise RuntimeError("boom")
    assert mlflow.get_run(run_id).info.status == "FAILED"
    experiment_id = setup_tracking(cfg.mlflow)
    assert find_finished_run(experiment_id, "preprocess", "k2") is None
    with step_run(cfg, "preprocess", key="k2") as run:
        ok_id = run.info.run_id
    assert find_finished_run(experiment_id, "preprocess", "k2") == ok_id


def test_params_hold_config_values_as_typed_not_enum_reprs(make_cfg):
    with step_run(make_cfg(), "evaluate") as run:
        run_id = run.info.run_id
    params = mlflow.get_run(run_id).data.params
    assert (params["evaluate.path"], params["model.precision"], params["train.strategy"]) == ("auto", "float32", "single")


def test_a_failing_step_s_run_is_failed_with_the_error_s_first_line_as_tag_and_description(make_cfg):
    with pytest.raises(ValueError):
        with step_run(make_cfg(), "main") as parent, step_run(make_cfg(), "preprocess") as child:
            raise ValueError("class 'Jagur' not found in class-descriptions-boxable.csv\nrow 3: ...")
    for run_id in (child.info.run_id, parent.info.run_id):  # the chain's parent says why too
        run = mlflow.get_run(run_id)
        assert run.info.status == "FAILED"
        assert run.data.tags[ERROR_TAG] == "ValueError: class 'Jagur' not found in class-descriptions-boxable.csv"
        assert run.data.tags[NOTE_TAG] == f"FAILED: {run.data.tags[ERROR_TAG]}"


def test_step_key_depends_only_on_the_named_sections(make_cfg):
    base = make_cfg()
    sections = ["data", "classes", "preprocess"]
    ignore = ["preprocess.overwrite"]
    assert step_key(base, sections, ignore) == step_key(make_cfg(["model=resnet50"]), sections, ignore)
    assert step_key(base, sections, ignore) == step_key(make_cfg(["preprocess.overwrite=true"]), sections, ignore)
    assert step_key(base, sections, ignore) != step_key(make_cfg(["preprocess.padding=0.1"]), sections, ignore)
