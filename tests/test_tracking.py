"""The MLflow helper: store, experiment tag, logged config, FAILED runs, step keys."""
from __future__ import annotations

import mlflow
import pytest

from bigcat_ml.tracking.names import STEP_KEY_TAG, STEP_TAG
from bigcat_ml.tracking.reuse import find_finished_run, step_key
from bigcat_ml.tracking.runs import EXPERIMENT_KIND_TAG, setup_tracking, step_run


def test_local_store_is_sqlite_under_the_output_dir_with_runs_view(make_cfg, tmp_path):
    cfg = make_cfg()
    experiment_id = setup_tracking(cfg.mlflow)
    assert (tmp_path / "outputs" / "mlflow" / "mlflow.db").exists()
    experiment = mlflow.get_experiment(experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == EXPERIMENT_KIND_TAG["mlflow.experimentKind"]
    assert experiment.artifact_location == (tmp_path / "outputs" / "mlflow" / "artifacts").as_uri()


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


def test_step_key_depends_only_on_the_named_sections(make_cfg):
    base = make_cfg()
    sections = ["data", "classes", "preprocess"]
    ignore = ["preprocess.overwrite"]
    assert step_key(base, sections, ignore) == step_key(make_cfg(["model=resnet50"]), sections, ignore)
    assert step_key(base, sections, ignore) == step_key(make_cfg(["preprocess.overwrite=true"]), sections, ignore)
    assert step_key(base, sections, ignore) != step_key(make_cfg(["preprocess.padding=0.1"]), sections, ignore)
