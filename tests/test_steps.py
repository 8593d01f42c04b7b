"""The step registry is the one list of steps that main, the launcher and MLproject read."""
from __future__ import annotations

import pytest
import yaml

from bigcat_ml.cli import mlproject
from bigcat_ml.main import STEPS, chain, get


def test_mlproject_file_is_the_one_the_registry_writes():
    on_disk = mlproject.MLPROJECT_FILE.read_text()
    assert on_disk == mlproject.render(), "MLproject is stale: run `python -m bigcat_ml.cli.mlproject`"


def test_every_registered_step_is_an_mlflow_entry_point_run_through_the_launcher():
    entry_points = yaml.safe_load(mlproject.MLPROJECT_FILE.read_text())["entry_points"]
    assert set(entry_points) == set(STEPS)
    for name, entry in entry_points.items():
        assert entry["command"] == f"python -m bigcat_ml.cli.launch {name} {{overrides}}"


def test_main_chains_the_generator_only_for_generated_data(make_cfg):
    assert [step.name for step in chain(make_cfg())] == ["sample_data", "preprocess", "evaluate"]
    assert [step.name for step in chain(make_cfg(["data=oid"]))] == ["preprocess", "evaluate"]


def test_a_reuse_key_covers_the_step_sections_and_nothing_else(make_cfg):
    preprocess = get("preprocess")
    base = preprocess.key(make_cfg())
    assert preprocess.key(make_cfg(["model=resnet50"])) == base
    assert preprocess.key(make_cfg(["preprocess.overwrite=true"])) == base
    assert preprocess.key(make_cfg(["preprocess.padding=0.1"])) != base


def test_an_unknown_step_name_lists_the_steps_there_are():
    with pytest.raises(KeyError, match="sample_data, preprocess, train, evaluate, main, compare"):
        get("trian")
